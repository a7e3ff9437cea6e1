"""The Python API of the omics location (the CLI, the inbox and scripts call it; no Dagster).

- :class:`WorkflowDefinition`: a workflow as its component declared it (the loaded
  Definitions carry every workflow's, ``components.workflow.workflows_of``), with its
  definition resolved once (defaults + its YAML): which steps it builds;
- :func:`resolve_run`: a run's config through the five layers (see :mod:`omics_assets.config`),
  once per run;
- :func:`plan`: what a run would do per step, and why (reuse a step with the same
  fingerprint, run it, or skip it); where a step's files live.

A run's registration (its resolved config, recorded once) is in :mod:`omics_assets.inputs`.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from omics_assets import config as cfg
from omics_assets.science.domains import STEPS, UPSTREAM_STEPS, Domain, Step, wiring
from platform_core.checkpoint import fingerprint
from platform_core.datastore import DataStore
from platform_core.inbox import signature

RESULT_FILE = "result.json"  # in a step's folder once the step completed


@dataclass(frozen=True)
class WorkflowDefinition:
    """A workflow: its component YAML, the attributes written there and the steps its
    definition enables (the workflow's assets)."""

    name: str
    domain: Domain
    file: Path
    attributes: dict[str, Any]
    steps: tuple[str, ...]

    def layer(self) -> cfg.Layer:
        return cfg.Layer(f"workflow {self.name}", self.attributes, self.file, ("attributes",))

    @property
    def partitions_name(self) -> str:
        """Its DynamicPartitionsDefinition: a workflow fed by another shares that one's runs."""
        return f"omics_{self.attributes.get('input') or self.name}"

    @property
    def upstream_steps(self) -> tuple[str, ...]:
        """Steps of the ``input:`` workflow (a simulation) this one reads; none without."""
        return UPSTREAM_STEPS["simulation"] if self.attributes.get("input") else ()

    def as_record(self) -> dict[str, Any]:
        """JSON-able (the workflow's job carries it as metadata)."""
        return {**self.__dict__, "file": str(self.file), "steps": list(self.steps)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> WorkflowDefinition:
        return cls(**{**record, "file": Path(record["file"]), "steps": tuple(record["steps"])})


def load_definition(attributes: Mapping[str, Any], file: Path) -> WorkflowDefinition:
    """A workflow from its component's attributes, its definition resolved once (ConfigError
    naming the file and key if it does not validate)."""
    layer = cfg.Layer(f"workflow {attributes['name']}", dict(attributes), file, ("attributes",))
    config = cfg.resolve(attributes["domain"], [layer]).config
    if attributes.get("input") and attributes["domain"] != "gwas":
        raise cfg.ConfigError(f"{file}: only a gwas workflow takes an input: workflow")
    steps = tuple(step for step, toggle in config["steps"].items() if toggle["enabled"])
    return WorkflowDefinition(
        attributes["name"], attributes["domain"], file, dict(attributes), steps
    )


def check_inputs(definitions: Mapping[str, WorkflowDefinition]) -> None:
    """Every ``input:`` names a simulation workflow of the location (ConfigError if not)."""
    for definition in definitions.values():
        source = definition.attributes.get("input")
        if source and getattr(definitions.get(source), "domain", None) != "simulation":
            raise cfg.ConfigError(
                f"{definition.file}: input {source!r} is not a simulation workflow of this "
                f"location (simulation workflows: "
                f"{', '.join(n for n, d in definitions.items() if d.domain == 'simulation')})"
            )


def workflow(definitions: Mapping[str, WorkflowDefinition], name: str) -> WorkflowDefinition:
    if name not in definitions:
        raise cfg.ConfigError(f"no workflow named {name!r} (known: {', '.join(definitions)})")
    return definitions[name]


def resolve_run(
    definitions: Mapping[str, WorkflowDefinition],
    name: str | None,
    config_file: Path | None = None,
    params: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    user: cfg.Layer | None = None,
) -> cfg.Resolved:
    """A run's config: defaults, the workflow's definition, ``OMICS_*``, the user's file (or
    ``user``, that file already read: what was checked is what is used) and ``--param``s. The
    workflow is ``name`` or the file's ``name:``; a file may not change a workflow's domain or
    name."""
    if user is None and config_file:
        user = cfg.yaml_file(config_file)
    name = name or (user.data.get("name") if user else None)
    if not name:
        raise cfg.ConfigError(f"{config_file}: name the workflow to run (`name:` in the file)")
    definition = workflow(definitions, str(name))
    for key in ("name", "domain", "input"):
        if user and key in user.data and user.data[key] != definition.attributes.get(key):
            raise cfg.ConfigError(
                f"{config_file} line {cfg.yaml_line(user.file, (key,))}: {key} "
                f"{user.data[key]!r} differs from workflow {definition.name}'s "
                f"{definition.attributes.get(key)!r} ({definition.file})"
            )
    layers = [definition.layer(), cfg.env_layer(environ)] + ([user] if user else [])
    if params:
        base = cfg.resolve(definition.domain, layers).config
        layers.append(cfg.param_layer(params, base))
    resolved = cfg.resolve(definition.domain, layers)
    extra = [
        s for s, t in resolved.config["steps"].items() if t["enabled"] and s not in definition.steps
    ]
    if extra:  # a run may disable a step, not enable one that is not an asset of the workflow
        raise cfg.ConfigError(
            f"steps {', '.join(extra)} are disabled in workflow {definition.name}'s definition "
            f"({definition.file}): enable them there, not in a run's config"
        )
    return resolved


def default_run_key(resolved: cfg.Resolved, config_file: Path | None) -> str:
    """``<config file stem or 'default'>-<hash of the resolved config>``: the same config is
    the same run; a changed one is a new run (whose unchanged steps are reused)."""
    stem = config_file.stem if config_file else "default"
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in stem).lstrip("._-")
    return f"{safe or 'run'}-{fingerprint(resolved.config)[:10]}"


def input_files(path: Path) -> list[Path]:
    """The files an input names: itself, or the files of a prefix (PLINK ``prefix.bed``,
    ``.bim``, ``.fam``)."""
    return [path] if path.exists() else sorted(path.parent.glob(f"{glob.escape(path.name)}.*"))


def input_signatures(domain_specific: Mapping[str, Any]) -> dict[str, str]:
    """Names, sizes and mtimes of the files ``domain_specific`` points at (a PLINK prefix: its
    files), so a changed input file is a new fingerprint without hashing gigabytes."""
    out = {}
    for key, value in domain_specific.items():
        if not isinstance(value, str):
            continue
        members = input_files(Path(value))
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


def step_folder(store: DataStore, config: Mapping[str, Any], step: str, fp: str) -> Path:
    """Where a step's files live: ``<work_dir>/steps/<step>/<fingerprint>``, the work_dir
    under the location's folder unless absolute."""
    return store.resolve(config["work_dir"]) / "steps" / step / fp


@dataclass(frozen=True)
class PlannedStep:
    step: str
    action: Literal["run", "reuse", "skip", "not built"]
    reads: tuple[str, ...]
    why: str
    fingerprint: str = ""


def plan(
    store: DataStore,
    definitions: Mapping[str, WorkflowDefinition],
    definition: WorkflowDefinition,
    config: Mapping[str, Any],
) -> list[PlannedStep]:
    """What a run of ``config`` would do, step by step, and why: reuse a completed step with
    the same fingerprint, run it, skip it (disabled by the run, or after a skipped step), or
    nothing (not built: disabled in the definition; its readers are rewired past it). The
    steps of an ``input:`` workflow are planned with that workflow's own config."""
    enabled = {s: s in definition.steps for s in config["steps"]}
    wired = wiring(definition.domain, enabled)
    fps: dict[str, str] = {}
    skipped: set[str] = set()
    out = []
    upstream = {}
    if definition.upstream_steps:
        source = definitions[definition.attributes["input"]]
        source_config = resolve_run(definitions, source.name).config
        source_plan = {p.step: p for p in plan(store, definitions, source, source_config)}
        upstream = {s: source_plan[s].fingerprint for s in definition.upstream_steps}
    for spec in STEPS[definition.domain]:
        if spec.name not in definition.steps:
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
        done = (step_folder(store, config, spec.name, fp) / RESULT_FILE).exists()
        action: Literal["run", "reuse"] = "reuse" if done else "run"
        why = "completed before with the same code, config and inputs" if done else "new"
        out.append(PlannedStep(spec.name, action, reads, why, fp))
    return out
