"""The Python API of the omics location (the CLI and scripts both call it; no Dagster here).

- :func:`definitions`: the shipped workflows, read from their component YAMLs under
  ``omics_assets/defs/`` (the same files ``load_from_defs_folder`` builds the assets from);
- :func:`resolve_run`: a run's config through the five layers (see :mod:`omics_assets.config`);
- :func:`register_run` / :func:`registered_config`: a run is a partition of its workflow,
  keyed by name; its resolved config is stored once and never changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from omics_assets import config as cfg
from omics_assets.science.domains import STEPS, UPSTREAM_STEPS, Domain, Step, wiring
from platform_core.checkpoint import fingerprint
from platform_core.inbox import signature
from platform_core.io import data_root, write_json
from platform_core.keys import validate_partition_key

DEFS_DIR = Path(__file__).parent / "defs"
COMPONENT_TYPE = "omics_assets.components.OmicsWorkflow"
RESULT_FILE = "result.json"  # in a step's folder once the step completed


@dataclass(frozen=True)
class WorkflowDefinition:
    """A shipped workflow: its component YAML and the attributes written there."""

    name: str
    domain: Domain
    file: Path
    attributes: dict[str, Any]

    def layer(self) -> cfg.Layer:
        return cfg.Layer(f"workflow {self.name}", self.attributes, self.file, ("attributes",))

    @property
    def partitions_name(self) -> str:
        """Its DynamicPartitionsDefinition: a workflow fed by another shares that one's runs."""
        return f"omics_{self.attributes.get('input') or self.name}"


def definition_from(attributes: Mapping[str, Any], file: Path) -> WorkflowDefinition:
    return WorkflowDefinition(attributes["name"], attributes["domain"], file, dict(attributes))


@cache
def definitions() -> dict[str, WorkflowDefinition]:
    """Every workflow under ``defs/`` by name."""
    found: dict[str, WorkflowDefinition] = {}
    for file in sorted(DEFS_DIR.glob("*/defs.yaml")):
        document = yaml.safe_load(file.read_text()) or {}
        if document.get("type") == COMPONENT_TYPE:
            definition = definition_from(document.get("attributes") or {}, file)
            found[definition.name] = definition
    return found


def workflow(name: str) -> WorkflowDefinition:
    known = definitions()
    if name not in known:
        raise cfg.ConfigError(f"no workflow named {name!r} (known: {', '.join(known)})")
    return known[name]


def resolve_run(
    name: str | None,
    config_file: Path | None = None,
    params: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> cfg.Resolved:
    """A run's config: defaults, the workflow's definition, ``OMICS_*``, the user's file and
    ``--param``s. The workflow is ``name`` or the file's ``name:``; a file may not change a
    workflow's domain or name."""
    user = cfg.yaml_file(config_file) if config_file else None
    name = name or (user.data.get("name") if user else None)
    if not name:
        raise cfg.ConfigError(f"{config_file}: name the workflow to run (`name:` in the file)")
    definition = workflow(str(name))
    for key in ("name", "domain", "input"):
        if user and key in user.data and user.data[key] != definition.attributes.get(key):
            raise cfg.ConfigError(
                f"{config_file} line {cfg.yaml_line(config_file, (key,))}: {key} "
                f"{user.data[key]!r} differs from workflow {definition.name}'s "
                f"{definition.attributes.get(key)!r} ({definition.file})"
            )
    layers = [definition.layer(), cfg.env_layer(environ)] + ([user] if user else [])
    if params:
        base = cfg.resolve(definition.domain, layers).config
        layers.append(cfg.param_layer(params, base))
    resolved = cfg.resolve(definition.domain, layers)
    _check_steps(definition, resolved.config)
    return resolved


def built_steps(definition: WorkflowDefinition) -> list[str]:
    """The steps the workflow's definition enables (those that are assets)."""
    config = cfg.resolve(definition.domain, [definition.layer()]).config
    return [step for step, toggle in config["steps"].items() if toggle["enabled"]]


def _check_steps(definition: WorkflowDefinition, config: Mapping[str, Any]) -> None:
    """A run may disable a step (it is skipped, with those after it) but not enable one the
    definition leaves out: that step is not an asset of the workflow."""
    built = set(built_steps(definition))
    extra = [s for s, toggle in config["steps"].items() if toggle["enabled"] and s not in built]
    if extra:
        raise cfg.ConfigError(
            f"steps {', '.join(extra)} are disabled in workflow {definition.name}'s definition "
            f"({definition.file}): enable them there, not in a run's config"
        )


def default_run_key(resolved: cfg.Resolved, config_file: Path | None) -> str:
    """``<config file stem or 'default'>-<hash of the resolved config>``: the same config is
    the same run; a changed one is a new run (whose unchanged steps are reused)."""
    stem = config_file.stem if config_file else "default"
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in stem).lstrip("._-")
    return f"{safe or 'run'}-{fingerprint(resolved.config)[:10]}"


def _registry(partitions_name: str) -> Path:
    return data_root() / "omics" / "runs" / partitions_name


def register_run(definition: WorkflowDefinition, key: str, resolved: cfg.Resolved) -> str:
    """Store the run's resolved config under its key (validated as a path component); the
    same config again is a no-op, a different one under a used key is refused."""
    key = validate_partition_key(key)
    entry = _registry(definition.partitions_name) / f"{key}.{definition.name}.json"
    if entry.exists():
        if json.loads(entry.read_text()) != resolved.config:
            raise cfg.ConfigError(
                f"run {key!r} of workflow {definition.name} exists with another config "
                f"({entry}); pass a new --run name"
            )
        return key
    write_json(entry, resolved.config)
    return key


def registered_config(definition: WorkflowDefinition, key: str) -> dict[str, Any]:
    """The config a run was registered with; a run added in the UI (never registered) gets
    the workflow's own config (defaults, definition, environment), registered now."""
    entry = _registry(definition.partitions_name) / f"{key}.{definition.name}.json"
    if entry.exists():
        return json.loads(entry.read_text())
    resolved = resolve_run(definition.name)
    register_run(definition, key, resolved)
    return resolved.config


def upstream_steps(definition: WorkflowDefinition) -> tuple[str, ...]:
    """Steps of the ``input:`` workflow this one reads (none without ``input:``)."""
    if not definition.attributes.get("input"):
        return ()
    upstream = workflow(definition.attributes["input"])
    if definition.domain != "gwas" or upstream.domain != "simulation":
        raise cfg.ConfigError(
            f"{definition.file}: input {upstream.name!r} is a {upstream.domain} workflow; "
            "a gwas workflow takes a simulation workflow as input"
        )
    return UPSTREAM_STEPS[upstream.domain]


def input_signatures(domain_specific: Mapping[str, Any]) -> dict[str, str]:
    """Names, sizes and mtimes of the files ``domain_specific`` points at (a PLINK prefix: its
    files), so a changed input file is a new fingerprint without hashing gigabytes."""
    out = {}
    for key, value in domain_specific.items():
        if not isinstance(value, str):
            continue
        path = Path(value)
        members = [path] if path.exists() else sorted(path.parent.glob(f"{path.name}.*"))
        out[key] = fingerprint([signature(m)[0] for m in members if m.is_file()])
    return out


def step_fingerprint(step: Step, config: Mapping[str, Any], upstream: Mapping[str, str]) -> str:
    """What a step's result depends on: its code, its config, the workflow's inputs (their
    files' signatures) and the fingerprints of the steps it reads (``upstream``, by name)."""
    return fingerprint(
        step.code_version,
        config["steps"][step.name]["config"],
        config["domain_specific"],
        input_signatures(config["domain_specific"]),
        dict(sorted(upstream.items())),
    )


def step_folder(config: Mapping[str, Any], step: str, fp: str) -> Path:
    """Where a step's files live: ``<work root>/steps/<step>/<fingerprint>``."""
    return cfg.work_root(config, data_root()) / "steps" / step / fp


@dataclass(frozen=True)
class PlannedStep:
    step: str
    action: Literal["run", "reuse", "skip", "not built"]
    reads: tuple[str, ...]
    why: str
    fingerprint: str = ""


def plan(definition: WorkflowDefinition, config: Mapping[str, Any]) -> list[PlannedStep]:
    """What a run of ``config`` would do, step by step, and why: reuse a completed step with
    the same fingerprint, run it, skip it (disabled by the run, or after a skipped step), or
    nothing (not built: disabled in the definition; its readers are rewired past it)."""
    built = set(built_steps(definition))
    enabled = {s: s in built for s in config["steps"]}
    wired = wiring(definition.domain, enabled)
    fps: dict[str, str] = {}
    skipped: set[str] = set()
    out = []
    upstream = {}
    if definition.attributes.get("input"):
        source = workflow(definition.attributes["input"])
        source_plan = {p.step: p for p in plan(source, resolve_run(source.name).config)}
        upstream = {s: source_plan[s].fingerprint for s in upstream_steps(definition)}
    for spec in STEPS[definition.domain]:
        if spec.name not in built:
            out.append(PlannedStep(spec.name, "not built", (), f"disabled in {definition.file}"))
            continue
        reads = wired[spec.name]
        if not config["steps"][spec.name]["enabled"] or skipped & set(reads):
            skipped.add(spec.name)
            why = (
                "disabled by the run's config"
                if not config["steps"][spec.name]["enabled"]
                else f"reads skipped {', '.join(sorted(skipped & set(reads)))}"
            )
            out.append(PlannedStep(spec.name, "skip", reads, why))
            continue
        first = spec is STEPS[definition.domain][0]  # the step that reads the input workflow
        inputs = {r: fps[r] for r in reads} | (upstream if first else {})
        fp = fps[spec.name] = step_fingerprint(spec, config, inputs)
        done = (step_folder(config, spec.name, fp) / RESULT_FILE).exists()
        action: Literal["run", "reuse"] = "reuse" if done else "run"
        why = "completed before with the same code, config and inputs" if done else "new"
        out.append(PlannedStep(spec.name, action, reads, why, fp))
    return out


def is_registered(definition: WorkflowDefinition, key: str) -> bool:
    return (_registry(definition.partitions_name) / f"{key}.{definition.name}.json").exists()
