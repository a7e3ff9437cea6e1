"""The omics location's workflows, read when the location (re)loads: the shipped ones
(``omics_assets/defs/workflows/``) and the operator's (``OMICS_WORKFLOWS_DIR``, default
``<data root>/omics/workflows/``: the UI's Reload picks up a new file), plus, in the user's
own process, the workflow files the CLI or the API was given.

A file is a workflow in the seed's config shape (``name``, ``domain``, ``steps`` ...) or the
same mapping as an ``OmicsWorkflow`` component (``type:`` / ``attributes:``). One that cannot
be built is refused with its reason and builds nothing, and the others still load
(``refused_workflows``, ``omics workflows``): YAML that does not parse, a name that breaks
Dagster's rule or is taken (by a shipped workflow of another domain, or by a file before it),
a config that does not validate, a step function that does not import or may not be loaded
here, a read of a step that does not exist, an input workflow that is not loaded, or a cycle
between workflows.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from omics_assets.components.workflow import REFUSED_METADATA, build_workflow_defs
from omics_assets.config import ConfigError, yaml_file
from omics_assets.science.domains import Step
from omics_assets.workflows import WorkflowDefinition, load_definition
from platform_core.datastore import operator_root
from platform_core.keys import InvalidKeyError
from platform_core.steps import StepNotAllowedError

WORKFLOWS_ENV = "OMICS_WORKFLOWS_DIR"
SHIPPED_FOLDER = Path(__file__).parents[1] / "defs" / "workflows"
COMPONENT_TYPE = "omics_assets.components.OmicsWorkflow"
log = logging.getLogger(__name__)
_warned: set[str] = set()


def _warn(message: str) -> None:
    """Log a refusal once per process (the CLI loads the Definitions more than once)."""
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


# a workflow file: (file, its attributes, where they sit in it)
Source = tuple[Path, Mapping[str, Any], tuple[str, ...]]
Built = tuple[WorkflowDefinition, tuple[Step, ...]]


def workflows_folder() -> Path:
    """The operator's folder of user workflows."""
    configured = os.environ.get(WORKFLOWS_ENV)
    return Path(configured).resolve() if configured else operator_root() / "omics" / "workflows"


def read_workflow_file(path: Path) -> Source:
    """A workflow file's attributes and where they sit in it (ConfigError naming the file)."""
    data = yaml_file(path).data
    if "type" not in data:
        return path, data, ()
    if data["type"] != COMPONENT_TYPE or set(data) - {"type", "attributes"}:
        raise ConfigError(
            f"{path}: a workflow file is the config itself (name, domain, steps ...) or "
            f"type: {COMPONENT_TYPE} with attributes:, nothing else"
        )
    if not isinstance(data.get("attributes"), Mapping):
        raise ConfigError(f"{path}: attributes: is the workflow's config, a mapping")
    return path, data["attributes"], ("attributes",)


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(f for f in folder.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())


def _read(files: Sequence[Path], refused: dict[str, str]) -> list[Source]:
    sources = []
    for file in files:
        try:
            sources.append(read_workflow_file(file))
        except ConfigError as error:
            refused[str(file)] = str(error)
    return sources


def _build(
    sources: Sequence[Source],
    refused: dict[str, str],
    built: dict[str, Built],
    user_code: bool | None,
    replace: bool = False,
) -> None:
    """Build each source's workflow into ``built`` (by name) or say why not in ``refused``;
    with ``replace`` (the user's own files), a source replaces a loaded workflow of its name
    unless that one is shipped."""
    for file, attributes, prefix in sources:
        shipped = {n: d for n, (d, _) in built.items() if d.file.is_relative_to(SHIPPED_FOLDER)}
        try:
            name = attributes.get("name")
            if name in shipped:
                taken = shipped[name]
                same = attributes.get("domain") == taken.domain
                raise ConfigError(
                    f"{file}: the name {name!r} is the shipped {taken.domain} workflow's"
                    + (
                        ": a file with its name is a run config of it (run it with "
                        "`omics run --config`, or drop it into the inbox)"
                        if same
                        else "; give your workflow a name of its own"
                    )
                )
            if name in built and not replace:
                raise ConfigError(f"{file}: the name {name!r} is taken by {built[name][0].file}")
            built[str(name)] = load_definition(attributes, file, prefix, user_code)
        except (ConfigError, StepNotAllowedError, InvalidKeyError) as error:
            refused[str(file)] = str(error)
            _warn(f"omics workflow {file} refused: {error}")


def _check_upstream(built: dict[str, Built], refused: dict[str, str]) -> None:
    """Drop (into ``refused``) each workflow whose inputs are not loaded workflows, whose
    ``workflow.step`` reads name no step of them, or that reads itself through a cycle."""
    for name in [n for n in built if n in _ancestors(n, built)]:
        definition = built[name][0]
        refused[str(definition.file)] = (
            f"{definition.file}: inputs: {', '.join(definition.inputs)} read {name} in turn: "
            "a cycle between workflows"
        )
    for name in [n for n in built if str(built[n][0].file) in refused]:
        del built[name]
    changed = True
    while changed:
        changed = False
        for name, (definition, specs) in list(built.items()):
            why = _upstream_problem(definition, specs, built)
            if why:
                refused[str(definition.file)] = f"{definition.file}: {why}"
                del built[name]
                changed = True


def _upstream_problem(
    definition: WorkflowDefinition, specs: tuple[Step, ...], built: dict[str, Built]
) -> str:
    for upstream in definition.inputs:
        if upstream not in built:
            return f"inputs: {upstream!r} is not a loaded workflow (loaded: {', '.join(built)})"
    for spec in specs:
        for read in spec.needs:
            upstream, dot, step = read.rpartition(".")
            if dot and step not in built[upstream][0].steps:
                return (
                    f"step {spec.name} reads {read!r}: workflow {upstream} has no enabled step "
                    f"{step!r} (its steps: {', '.join(built[upstream][0].steps)})"
                )
    return ""


def _ancestors(name: str, built: dict[str, Built]) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        for upstream in built[current][0].inputs if current in built else ():
            if upstream not in seen:
                seen.add(upstream)
                todo.append(upstream)
    return seen


def workflows_defs(
    sources: Sequence[Source],
    own: Sequence[Path] = (),
    refused: dict[str, str] | None = None,
) -> dg.Definitions:
    """Definitions of the workflows of ``sources`` and the user's ``own`` files (built as
    the user's code), and why each refused one (``refused``: files refused before) was not
    built."""
    refused = {} if refused is None else refused
    built: dict[str, Built] = {}
    _build(sources, refused, built, user_code=False)
    _build(_read(own, refused), refused, built, True, replace=True)
    _check_upstream(built, refused)
    return dg.Definitions.merge(
        *(build_workflow_defs(d, specs) for d, specs in built.values()),
        dg.Definitions(metadata={f"{REFUSED_METADATA}{f}": why for f, why in refused.items()}),
    )


def load_workflows(own: Sequence[Path] = ()) -> dg.Definitions:
    """Every workflow file's definitions (the location's ``data_defs``): shipped, then the
    operator's folder, then the user's ``own`` files."""
    refused: dict[str, str] = {}
    mine = {f.resolve() for f in own}  # a folder file given as the user's own: built as theirs
    folder = [f for f in _files(workflows_folder()) if f.resolve() not in mine]
    sources = _read(_files(SHIPPED_FOLDER), refused) + _read(folder, refused)
    return workflows_defs(sources, own, refused)


def daemon_refusal(path: Path) -> str:
    """Why the daemon, its code server or the UI would refuse the workflow file (a step
    function from a module not registered in this process's ``PLATFORM_STEP_MODULES``, which
    is the daemon's when both read the same environment), or ""."""
    try:
        file, attributes, prefix = read_workflow_file(path)
        load_definition(attributes, file, prefix, user_code=False)
    except (ConfigError, StepNotAllowedError, InvalidKeyError) as error:
        return str(error)
    return ""
