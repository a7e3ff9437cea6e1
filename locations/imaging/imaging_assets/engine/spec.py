"""Pipelines as data: a ``Pipeline`` of ``FunctionStep``s, from Python or from a YAML file.

A YAML pipeline (``imaging_assets/defs/pipelines/`` shipped, ``IMAGING_PIPELINES_DIR`` the
operator's) is either the pipeline itself or the same mapping under ``attributes:`` with
``type: imaging_assets.components.ImagingPipeline`` (a Dagster component)::

    name: nuclei_count
    steps:
      - name: nuclei
        func: segment_nuclei          # shipped, or "package.module:function"
        kwargs: {channel: 1}
        materialize: true

``func`` takes the seed's four patterns: a function; ``[function, {kwargs}]``; a list of
those (a chain, each fed the previous one's output); a mapping from a value of ``group_by``
to one of those (e.g. one function per channel; groups not named pass through unchanged).
Nothing here imports a step function: compile.py resolves them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imaging_assets.science.contract import COMPONENTS, Component, Output, Scope
from platform_core.yamldoc import yaml_line

FuncRef = str | Callable[..., Any]
Call = tuple[FuncRef, dict[str, Any]]
MAX_PIPELINE_BYTES = 1_000_000
COMPONENT_TYPE = "imaging_assets.components.ImagingPipeline"
PIPELINE_KEYS = frozenset({"name", "steps", "description"})
STEP_KEYS = frozenset(
    {
        "name",
        "func",
        "kwargs",
        "scope",
        "variable_components",
        "group_by",
        "materialize",
        "reads",
        "output",
    }
)


class PipelineError(ValueError):
    """A pipeline that cannot be built or run as written (the message says where)."""


@dataclass(frozen=True)
class FunctionStep:
    """One step: ``func`` (any of the four patterns) called on stacks of the well's planes.

    ``scope``, ``variable_components`` and ``output`` default to the function's contract;
    ``reads`` defaults to the previous step (``"pipeline.step"`` names another pipeline's
    materialized step); a kwarg whose value names a step in ``reads`` is given that step's
    output; a kwarg named ``site``, ``channel`` or ``z`` that the function does not take
    selects the planes the step sees (``channel: 1``)."""

    name: str
    func: Any
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    scope: Scope | None = None
    variable_components: Sequence[Component] | None = None
    group_by: Component | None = None
    materialize: bool = False
    reads: Sequence[str] | None = None
    output: Output | None = None

    def calls(self) -> dict[int | None, list[Call]]:
        """The func pattern as the calls each group gets: key None = every group, else the
        value of ``group_by`` a group must have."""
        if isinstance(self.func, Mapping):
            if self.group_by is None:
                raise PipelineError(
                    f"step {self.name!r}: func is a mapping keyed by component value, which "
                    "needs group_by (site, channel or z)"
                )
            calls: dict[int | None, list[Call]] = {}
            for value, pattern in self.func.items():
                if isinstance(value, bool) or not isinstance(value, int):
                    raise PipelineError(
                        f"step {self.name!r}: func key {value!r} is not a {self.group_by} number"
                    )
                calls[value] = _chain(pattern, self.name)
            return calls
        return {None: _chain(self.func, self.name)}


@dataclass(frozen=True)
class Pipeline:
    """Steps run in order on every well of a plate; ``source`` is where it was declared."""

    steps: Sequence[FunctionStep]
    name: str = "pipeline"
    description: str = ""
    source: str = ""  # the file it was read from (empty: built in Python)

    @property
    def where(self) -> str:
        """How messages name it: its file, or ``pipeline <name>``."""
        return self.source or f"pipeline {self.name}"


def _call(pattern: Any, step: str) -> Call:
    if isinstance(pattern, str) or callable(pattern):
        return pattern, {}
    if (
        isinstance(pattern, Sequence)
        and len(pattern) == 2
        and (isinstance(pattern[0], str) or callable(pattern[0]))
        and isinstance(pattern[1], Mapping)
    ):
        return pattern[0], dict(pattern[1])
    raise PipelineError(
        f"step {step!r}: func {pattern!r} is not a function, [function, {{kwargs}}], a list "
        "of those or a mapping of those"
    )


def _chain(pattern: Any, step: str) -> list[Call]:
    """A list of (function, kwargs); a two-item [function, {kwargs}] is one call."""
    if isinstance(pattern, list | tuple) and not (
        len(pattern) == 2 and isinstance(pattern[1], Mapping)
    ):
        if not pattern:
            raise PipelineError(f"step {step!r}: func is an empty chain")
        return [_call(p, step) for p in pattern]
    return [_call(pattern, step)]


def _unknown(keys: Any, known: frozenset[str], where: str, file: Path | None, path: tuple) -> None:
    unknown = sorted(str(k) for k in keys if k not in known)
    if unknown:
        line = yaml_line(file, (*path, unknown[0])) if file else None
        raise PipelineError(
            f"{where}{f' line {line}' if line else ''}: unknown key {unknown[0]!r} (known: "
            f"{', '.join(sorted(known))})"
        )


def _choice(value: Any, choices: Sequence[str], what: str, where: str) -> Any:
    if value is not None and (not isinstance(value, str) or value not in choices):
        raise PipelineError(f"{where}: {what} {value!r} is not one of {', '.join(choices)}")
    return value


def _names(value: Any, what: str, where: str) -> list[str] | None:
    """A list of names (one name alone is a list of one); None when not given."""
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise PipelineError(f"{where}: {what} must be a name or a list of names, not {value!r}")
    return values


def _step(item: Mapping[str, Any], where: str) -> FunctionStep:
    """One step of a YAML pipeline, every value of the type its key needs."""
    components = _names(item.get("variable_components"), "variable_components", where)
    for component in components or []:
        _choice(component, COMPONENTS, "variable component", where)
    kwargs = item.get("kwargs") or {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise PipelineError(f"{where}: kwargs must be a mapping of parameter names")
    materialize = item.get("materialize", False)
    if not isinstance(materialize, bool):
        raise PipelineError(f"{where}: materialize must be true or false, not {materialize!r}")
    return FunctionStep(
        name=str(item["name"]),
        func=item["func"],
        kwargs=dict(kwargs),
        scope=_choice(item.get("scope"), ("well", "plate"), "scope", where),
        variable_components=tuple(components) if components is not None else None,
        group_by=_choice(item.get("group_by"), COMPONENTS, "group_by", where),
        materialize=materialize,
        reads=_names(item.get("reads"), "reads", where),
        output=_choice(item.get("output"), ("image", "labels", "table"), "output", where),
    )


def pipeline_from_document(document: Any, file: Path | None = None) -> Pipeline:
    """A pipeline from a parsed YAML document; errors name the file, line and key."""
    where = str(file) if file else "pipeline"
    path: tuple[str, ...] = ()
    if isinstance(document, Mapping) and "attributes" in document:
        _unknown(document, frozenset({"type", "attributes"}), where, file, path)
        if document.get("type") != COMPONENT_TYPE:
            raise PipelineError(f"{where}: type {document.get('type')!r} is not {COMPONENT_TYPE}")
        document, path = document["attributes"], ("attributes",)
    if not isinstance(document, Mapping):
        raise PipelineError(f"{where}: a pipeline is a mapping with name and steps")
    _unknown(document, PIPELINE_KEYS, where, file, path)
    steps = document.get("steps")
    if not isinstance(steps, list) or not steps:
        raise PipelineError(f"{where}: steps must be a non-empty list")
    parsed = []
    for index, item in enumerate(steps):
        if not isinstance(item, Mapping) or "name" not in item or "func" not in item:
            raise PipelineError(f"{where}: steps[{index}] needs at least name and func")
        step_where = f"{where} step {item['name']!r}"
        _unknown(item, STEP_KEYS, where, file, (*path, "steps", str(index)))
        parsed.append(_step(item, step_where))
    return Pipeline(
        parsed,
        name=document.get("name", file.stem if file else "pipeline"),
        description=str(document.get("description", "")),
        source=str(file) if file else "",
    )


def read_pipeline_file(file: Path) -> Pipeline:
    """A pipeline YAML file (at most 1 MB, safe loader)."""
    try:
        text = file.read_bytes()
    except OSError as error:
        raise PipelineError(f"{file}: cannot be read ({error})") from None
    if len(text) > MAX_PIPELINE_BYTES:
        raise PipelineError(f"{file}: {len(text)} bytes, over the {MAX_PIPELINE_BYTES} limit")
    try:
        document = yaml.safe_load(text.decode())
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as error:
        raise PipelineError(f"{file}: not valid YAML ({error})") from None
    return pipeline_from_document(document, file)
