"""The omics location's workflows without Dagster (the CLI, the inbox and the API call it).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from omics_assets import config as cfg
from omics_assets.science.domains import Domain, Step, input_paths, wiring
from omics_assets.science.reads import SHEET_FILE_COLUMNS, samplesheet_table, sheet_file
from omics_assets.science.steps import InputError
from omics_assets.workflow_steps import (
    LATEST,
    custom_names,
    view_reads,
    view_source,
    workflow_steps,
)
from platform_core.checkpoint import fingerprint
from platform_core.datastore import DataStore
from platform_core.inbox import signature
from platform_core.keys import InvalidKeyError, validate_name, validate_partition_key

RESULT_FILE = "result.json"  # in a step's folder once the step completed


@dataclass(frozen=True)
class WorkflowDefinition:
    """A workflow: its YAML file, the attributes written there (``prefix``: where they sit
    in the file, ``attributes`` in a component's) and the steps its definition enables (the
    workflow's assets)."""

    name: str
    domain: Domain
    file: Path
    attributes: dict[str, Any]
    steps: tuple[str, ...]
    prefix: tuple[str, ...] = ("attributes",)

    def layer(self) -> cfg.Layer:
        return cfg.Layer(f"workflow {self.name}", self.attributes, self.file, self.prefix)

    @property
    def partitions_name(self) -> str:
        """Its DynamicPartitionsDefinition: a partition is a run of its config."""
        return f"omics_{self.name}"

    @property
    def custom(self) -> tuple[str, ...]:
        """The user's own steps of the workflow."""
        return custom_names(self.attributes)

    @property
    def inputs(self) -> dict[str, str]:
        """The upstream workflows it reads, each ``latest`` or a run key."""
        return dict(self.attributes.get("inputs") or {})

    def specs(self, config: Mapping[str, Any], user_code: bool | None = None) -> tuple[Step, ...]:
        """Every step of the workflow (shipped and its own, ordered) under ``config``."""
        return workflow_steps(
            self.domain, config["steps"], config.get("inputs") or {}, self.file, user_code
        )

    def as_record(self) -> dict[str, Any]:
        """JSON-able (the workflow's job carries it as metadata)."""
        return {
            **self.__dict__,
            "file": str(self.file),
            "steps": list(self.steps),
            "prefix": list(self.prefix),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> WorkflowDefinition:
        return cls(
            **{
                **record,
                "file": Path(record["file"]),
                "steps": tuple(record["steps"]),
                "prefix": tuple(record.get("prefix", ("attributes",))),
            }
        )


def load_definition(
    attributes: Mapping[str, Any],
    file: Path,
    prefix: tuple[str, ...] = ("attributes",),
    user_code: bool | None = None,
) -> tuple[WorkflowDefinition, tuple[Step, ...]]:
    """A workflow from its attributes, its definition resolved once, and its steps
    (ConfigError naming the file and key if it does not validate; StepNotAllowedError if a
    step's function may not be loaded here)."""
    if "input" in attributes:
        raise cfg.ConfigError(
            f"{file}: input: is now inputs: {{{attributes['input']}: latest}} (or a run key "
            "instead of latest), and the step that reads it names what it reads "
            f"(reads: [{attributes['input']}.<step>])"
        )
    try:
        validate_name(attributes.get("name"), "workflow name")
    except InvalidKeyError as error:
        raise cfg.ConfigError(f"{file}: {error}") from None
    attributes = view_reads(attributes, file)
    layer = cfg.Layer(f"workflow {attributes['name']}", dict(attributes), file, prefix)
    custom = custom_names(attributes)
    config = cfg.resolve(attributes.get("domain"), [layer], custom).config  # type: ignore[arg-type]
    check_inputs(config["inputs"], layer.where)
    steps = tuple(step for step, toggle in config["steps"].items() if toggle["enabled"])
    definition = WorkflowDefinition(
        attributes["name"], attributes["domain"], file, dict(attributes), steps, prefix
    )
    specs = definition.specs(config, user_code)
    for spec in specs:
        if spec.required and spec.name not in steps:
            raise cfg.ConfigError(
                f"{file}: step {spec.name} cannot be disabled: the steps after it all read it"
            )
    return definition, specs


def check_inputs(inputs: Mapping[str, str], where: Callable[[tuple[str, ...]], str]) -> None:
    """ConfigError naming ``where`` the key was set unless each upstream workflow of
    ``inputs`` has a valid name and each choice is ``latest`` or a valid run key."""
    for upstream, choice in inputs.items():
        try:
            validate_name(upstream, "workflow name")
            if choice != LATEST:
                validate_partition_key(choice)
        except InvalidKeyError as error:
            key = ("inputs", upstream)
            raise cfg.ConfigError(f"inputs.{upstream} ({where(key)}): {error}") from None


def workflow_error(name: str, definitions: Mapping[str, WorkflowDefinition]) -> str:
    return (
        f"no workflow named {name!r} (known: {', '.join(definitions)}). A workflow of your "
        "own: a config with name: and domain: runs with `omics run --config FILE` (add --save "
        "to keep it in the operator's workflows folder, which the UI, daemon and inbox load)"
    )


def workflow(definitions: Mapping[str, WorkflowDefinition], name: str) -> WorkflowDefinition:
    if name not in definitions:
        raise cfg.ConfigError(workflow_error(name, definitions))
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
    if user:
        _check_run_layer(definition, user)
    layers = [definition.layer(), cfg.env_layer(definition.domain, environ)]
    layers += [user] if user else []
    if params:
        base = cfg.resolve(definition.domain, layers, definition.custom).config
        layers.append(cfg.param_layer(params, base))
    resolved = cfg.resolve(definition.domain, layers, definition.custom)
    check_inputs(
        resolved.config["inputs"],
        lambda key: resolved.setters[key].where(key) if key in resolved.setters else "defaults",
    )
    extra = [
        s for s, t in resolved.config["steps"].items() if t["enabled"] and s not in definition.steps
    ]
    if extra:  # a run may disable a step, not enable one that is not an asset of the workflow
        raise cfg.ConfigError(
            f"steps {', '.join(extra)} are disabled in workflow {definition.name}'s definition "
            f"({definition.file}): enable them there, not in a run's config"
        )
    return resolved


STRUCTURE = ("func", "reads", "checks")  # a step's keys only its workflow's definition sets


def _check_run_layer(definition: WorkflowDefinition, user: cfg.Layer) -> None:
    """ConfigError where a run's config would change what the workflow is: its name, domain,
    upstream workflows or a step's function, reads or checks."""

    def refuse(path: tuple[str, ...], what: str) -> None:
        line = cfg.yaml_line(user.file, path) if user.file else None
        raise cfg.ConfigError(
            f"{user.file or user.source}{f' line {line}' if line else ''}: {'.'.join(path)} "
            f"{what}: set by workflow {definition.name}'s definition ({definition.file}), not "
            "by a run's config"
        )

    for key in ("name", "domain"):
        if key in user.data and user.data[key] != definition.attributes.get(key):
            refuse((key,), f"{user.data[key]!r} differs from {definition.attributes.get(key)!r}")
    for upstream in user.data.get("inputs") or {}:
        if upstream not in definition.inputs:
            refuse(("inputs", str(upstream)), "is not an input of the workflow")
    views = (user.data.get("domain_specific") or {}).get("views")
    defined_views = (definition.attributes.get("domain_specific") or {}).get("views") or {}
    for name, view in views.items() if isinstance(views, Mapping) else ():
        defined_view = defined_views.get(name) or {}
        if (
            isinstance(view, Mapping)
            and view.get("workflow")
            and view_source(view) != view_source(defined_view)
        ):
            refuse(("domain_specific", "views", str(name)), "reads a workflow's step")
    defined = definition.attributes.get("steps") or {}
    for step, toggle in (user.data.get("steps") or {}).items():
        for key in STRUCTURE if isinstance(toggle, Mapping) else ():
            if key in toggle and toggle[key] != (defined.get(step) or {}).get(key):
                refuse(("steps", str(step), key), f"{toggle[key]!r} differs")


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


def input_signatures(domain: Domain, domain_specific: Mapping[str, Any]) -> dict[str, str]:
    """Names, sizes and mtimes of the files ``domain_specific`` points at (its domain's path
    keys, a view's ``path`` too; a PLINK prefix: its files; a samplesheet: the files it
    lists), so a changed input file is a new fingerprint without hashing gigabytes. A custom
    workflow's keys are its own: each string that names a file is signed."""
    paths = (
        {(k,): v for k, v in domain_specific.items()}
        if domain == "custom"
        else input_paths(domain, domain_specific)
    )
    out = {}
    for keys, value in paths.items():
        if not isinstance(value, str) or not value:
            continue
        members = [m for m in input_files(Path(value)) if m.is_file()]
        if keys[-1] == "samplesheet" and members:
            members += sheet_files(members[0])
        out[".".join(keys)] = fingerprint([signature(m)[0] for m in members])
    return out


def sheet_files(sheet: Path) -> list[Path]:
    """The files a samplesheet lists that exist (relative: to the sheet)."""
    try:
        table = samplesheet_table(sheet)
    except InputError:
        return []  # the step that reads it says what is wrong
    values = [v for c in SHEET_FILE_COLUMNS if c in table for v in table[c] if isinstance(v, str)]
    paths = [sheet_file(sheet, v) for v in values if v]
    return [p for p in paths if p.is_file()]


def step_fingerprint(step: Step, config: Mapping[str, Any], upstream: Mapping[str, str]) -> str:
    """What a step's result depends on: its code, its config, the workflow's inputs (their
    files' signatures) and the fingerprints of the steps it reads (``upstream``, by name)."""
    return fingerprint(
        step.code_version,
        *([step.func] if step.func else []),  # a user's step: which function of its module
        config["steps"][step.name]["config"],
        config["domain_specific"],
        input_signatures(config["domain"], config["domain_specific"]),
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
    definition: WorkflowDefinition,
    config: Mapping[str, Any],
    upstream: Mapping[str, tuple[str, str]],
) -> list[PlannedStep]:
    """What a run of ``config`` would do, step by step, and why: reuse a completed step with
    the same fingerprint, run it, skip it (disabled by the run, after a skipped step, or
    reading an upstream workflow that has no run yet), or nothing (not built: disabled in
    the definition; its readers are rewired past it). ``upstream``: per ``workflow.step``
    read, the upstream run it would read and that step's fingerprint there."""
    specs = definition.specs(config)
    enabled = {s.name: s.name in definition.steps for s in specs}
    wired = wiring(specs, enabled)
    fps: dict[str, str] = {}
    skipped: set[str] = set()
    out = []
    for spec in specs:
        if spec.name not in definition.steps:
            out.append(PlannedStep(spec.name, "not built", (), f"disabled in {definition.file}"))
            continue
        reads = wired[spec.name]
        missing = [r for r in reads if "." in r and r not in upstream]
        if not config["steps"][spec.name]["enabled"] or skipped & set(reads) or missing:
            skipped.add(spec.name)
            why = (
                "disabled by the run's config"
                if not config["steps"][spec.name]["enabled"]
                else f"{', '.join(missing)}: no completed run to read"
                if missing
                else f"reads skipped {', '.join(sorted(skipped & set(reads)))}"
            )
            out.append(PlannedStep(spec.name, "skip", reads, why))
            continue
        inputs = {r: upstream[r][1] if "." in r else fps[r] for r in reads}
        fp = fps[spec.name] = step_fingerprint(spec, config, inputs)
        done = (step_folder(store, config, spec.name, fp) / RESULT_FILE).exists()
        action: Literal["run", "reuse"] = "reuse" if done else "run"
        why = "completed before with the same code, config and inputs" if done else "new"
        runs = sorted({f"{r.rpartition('.')[0]} run {upstream[r][0]}" for r in reads if "." in r})
        why += f" (reads {', '.join(runs)})" if runs else ""
        out.append(PlannedStep(spec.name, action, reads, why, fp))
    return out
