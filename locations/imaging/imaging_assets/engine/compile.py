"""Compiling pipelines for a plate: every step function resolved (shipped, or a registered
``module:function``; none from a dropped file), its signature checked against the kwargs,
the steps it reads and what the engine gives it, and its contract read, all before any pixel
is processed: a pipeline that compiles does not fail half-way on how it was written."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imaging_assets.engine.shipped import SHIPPED_STEPS
from imaging_assets.engine.spec import FunctionStep, Pipeline, PipelineError
from imaging_assets.science.contract import (
    COMPONENTS,
    Component,
    Output,
    Scope,
    contract_of,
)
from platform_core.checkpoint import fingerprint
from platform_core.keys import InvalidNameError, validate_name
from platform_core.steps import resolve_step

# what the engine passes a step function that declares a parameter of this name
INJECTED = {
    "channels": "the channel number of each plane of the stack",
    "sites": "the site number of each plane (None: a mosaic)",
    "zs": "the z plane of each plane",
    "well": "the well name (A01)",
    "channel_names": "the plate's channel number -> name",
    "pixel_size_um": "pixel size, micrometres (None when unknown)",
    "site_grid": "the well's sites: site, grid_row, grid_col",
    "tile_step_px": "stage distance between neighbouring sites (y, x), pixels",
}


@dataclass(frozen=True)
class CompiledCall:
    """One function of a step's chain, with what it is given."""

    function: Callable[..., Any]
    kwargs: Mapping[str, Any]
    reads: Mapping[str, str]  # parameter -> output key (pipeline.step) given to it
    injected: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.function.__module__}:{self.function.__qualname__}"


@dataclass(frozen=True)
class CompiledStep:
    pipeline: str
    name: str
    calls: Mapping[int | None, tuple[CompiledCall, ...]]
    scope: Scope
    variable_components: tuple[Component, ...]
    group_by: Component | None
    output: Output
    reduces: tuple[Component, ...]
    materialize: bool
    input: str | None  # the output key whose planes are stacked; None: the plate's tiles
    selectors: Mapping[Component, tuple[int, ...]]
    fingerprint: str  # code, kwargs and settings of this step and every step it depends on

    @property
    def key(self) -> str:
        return f"{self.pipeline}.{self.name}"

    @property
    def functions(self) -> str:
        return ", ".join(sorted({c.label for calls in self.calls.values() for c in calls}))


@dataclass(frozen=True)
class CompiledPipeline:
    name: str
    steps: tuple[CompiledStep, ...]
    source: str
    description: str = ""

    @property
    def outputs(self) -> tuple[CompiledStep, ...]:
        """The steps stored as assets: the materialized ones and the last."""
        return tuple(s for s in self.steps if s.materialize or s is self.steps[-1])

    @property
    def external(self) -> tuple[str, ...]:
        """Other pipelines' steps this one reads (pipeline.step)."""
        own = {s.key for s in self.steps}
        found = {s.input for s in self.steps if s.input and s.input not in own}
        for s in self.steps:
            found |= {k for cs in s.calls.values() for c in cs for k in c.reads.values()} - own
        return tuple(sorted(found))

    @property
    def has_plate_scope(self) -> bool:
        return any(s.scope == "plate" for s in self.steps)


def code_fingerprint(function: Callable[..., Any]) -> str:
    """A function's module, name and source: a change of code redoes the wells it made."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        source = ""
    return f"{function.__module__}:{function.__qualname__}:{source}"


def _resolve(ref: Any, step: str, where: str, user_code: bool | None) -> Callable[..., Any]:
    if callable(ref):  # the Python API: the user's own function object
        return ref
    return resolve_step(str(ref), SHIPPED_STEPS, step, where, user_code)


def _parameters(
    function: Callable[..., Any], step: str, where: str
) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(function).parameters
    except (TypeError, ValueError):
        label = f"{function.__module__}:{function.__qualname__}"
        raise PipelineError(f"{where} step {step!r}: {label} has no readable signature") from None


def _check_call(
    function: Callable[..., Any],
    kwargs: Mapping[str, Any],
    reads: Mapping[str, str],
    step: str,
    where: str,
) -> CompiledCall:
    """The call of ``function`` with ``kwargs``, or PipelineError naming what does not fit;
    ``reads``: the step's reads by name -> output key (a kwarg naming one is given it)."""
    label = f"{function.__module__}:{function.__qualname__}"
    parameters = list(_parameters(function, step, where).values())
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not positional:
        raise PipelineError(
            f"{where} step {step!r}: {label} takes no argument; a step function takes the "
            "stack of planes first"
        )
    named = {p.name: p for p in parameters[1:] if p.kind != p.VAR_POSITIONAL}
    open_kwargs = any(p.kind == p.VAR_KEYWORD for p in parameters)
    unexpected = [k for k in kwargs if k not in named and not open_kwargs]
    if unexpected:
        raise PipelineError(
            f"{where} step {step!r}: {label} takes no parameter {unexpected[0]!r} (it takes: "
            f"{', '.join(n for n, p in named.items() if p.kind != p.VAR_KEYWORD) or 'none'})"
        )
    given_reads = {k: reads[v] for k, v in kwargs.items() if isinstance(v, str) and v in reads}
    injected = tuple(n for n in INJECTED if n in named and n not in kwargs)
    missing = [
        n
        for n, p in named.items()
        if p.default is p.empty
        and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        and n not in kwargs
        and n not in injected
    ]
    if missing:
        raise PipelineError(
            f"{where} step {step!r}: {label} needs {missing[0]!r}, which neither kwargs nor the "
            f"engine give (the engine gives: {', '.join(INJECTED)})"
        )
    plain = {k: v for k, v in kwargs.items() if k not in given_reads}
    return CompiledCall(function, plain, given_reads, injected)


def _step_reads(
    step: FunctionStep, before: list[CompiledStep], known: Mapping[str, CompiledStep], where: str
) -> dict[str, str]:
    """What a step reads: each name in its reads (in order) -> the output key it names."""
    own = {s.name: s for s in before}
    names = list(step.reads) if step.reads is not None else ([before[-1].name] if before else [])
    keys = {}
    for name in names:
        if name in own:
            keys[name] = own[name].key
        elif name in known:
            if known[name].output == "table":
                raise PipelineError(
                    f"{where} step {step.name!r} reads {name!r}, a table: another pipeline's "
                    "images and labels can be read, its tables are read from its asset"
                )
            if not known[name].materialize:
                raise PipelineError(
                    f"{where} step {step.name!r} reads {name!r}, which that pipeline does not "
                    "materialize (set materialize: true on it)"
                )
            keys[name] = name
        else:
            raise PipelineError(
                f"{where} step {step.name!r} reads {name!r}, which is not a step before it "
                f"(steps before it: {', '.join(own) or 'none'}; another pipeline's step is "
                "named pipeline.step)"
            )
    return keys


def _calls(
    functions: Mapping[int | None, list[tuple[Callable[..., Any], dict[str, Any]]]],
    step: FunctionStep,
    keys: Mapping[str, str],
    where: str,
) -> dict[int | None, tuple[CompiledCall, ...]]:
    """Each group's chain of calls, checked; a kwarg naming a component (site, channel, z)
    that a function does not take is the step's selector, not the function's."""
    calls = {}
    for value, chain in functions.items():
        built = []
        for function, extra in chain:
            takes = _parameters(function, step.name, where)
            picked = [k for k in extra if k in COMPONENTS and k not in takes]
            if picked:
                raise PipelineError(
                    f"{where} step {step.name!r}: {picked[0]!r} selects planes; give it in the "
                    "step's kwargs, not a function's"
                )
            merged = {**step.kwargs, **extra}
            own = {k: v for k, v in merged.items() if k not in COMPONENTS or k in takes}
            built.append(_check_call(function, own, keys, step.name, where))
        calls[value] = tuple(built)
    return calls


def _compile_step(
    step: FunctionStep,
    pipeline: Pipeline,
    compiled: list[CompiledStep],
    known: Mapping[str, CompiledStep],
    user_code: bool | None,
) -> CompiledStep:
    where = pipeline.where
    try:
        validate_name(step.name, "step name")
    except InvalidNameError as error:
        raise PipelineError(f"{where}: {error}") from None
    if any(s.name == step.name for s in compiled):
        raise PipelineError(f"{where}: two steps are named {step.name!r}")
    keys = _step_reads(step, compiled, known, where)
    functions = {
        value: [(_resolve(f, step.name, where, user_code), k) for f, k in chain]
        for value, chain in step.calls().items()
    }
    chains = [c for chain in functions.values() for c in chain]
    contracts = [contract_of(f) for f, _ in chains]
    if any(c.memory != "numpy" for c in contracts):
        raise PipelineError(f"{where} step {step.name!r}: only numpy memory runs here")
    variable = tuple(step.variable_components or contracts[0].variable_components)
    if step.group_by in variable:
        raise PipelineError(
            f"{where} step {step.name!r}: group_by {step.group_by} makes one call per "
            f"{step.group_by}, so it cannot also vary inside a call (variable_components)"
        )
    calls = _calls(functions, step, keys, where)
    selectors = {
        k: tuple(v if isinstance(v, list | tuple) else [v])
        for k, v in step.kwargs.items()
        if k in COMPONENTS and all(k not in _parameters(f, step.name, where) for f, _ in chains)
    }
    by_kwargs = {k for cs in calls.values() for c in cs for k in c.reads.values()}
    streams = [k for k in keys.values() if k not in by_kwargs]
    if len(streams) > 1:
        raise PipelineError(
            f"{where} step {step.name!r} reads {len(streams)} steps as its stack "
            f"({', '.join(streams)}); give the others to parameters in kwargs"
        )
    images = [s for s in compiled if s.output == "image"]
    source = streams[0] if streams else (images[-1].key if images else None)
    upstream = [known[k].fingerprint for k in sorted({source, *by_kwargs} - {None}) if k in known]
    output = step.output or contracts[-1].output
    return CompiledStep(
        pipeline=pipeline.name,
        name=step.name,
        calls=calls,
        scope=step.scope or contracts[0].scope,
        variable_components=variable,
        group_by=step.group_by,
        output=output,
        reduces=tuple(sorted({r for c in contracts for r in c.reduces}, key=COMPONENTS.index)),
        materialize=step.materialize,
        input=source,
        selectors=selectors,
        fingerprint=fingerprint(
            [code_fingerprint(f) for f, _ in chains],
            step.kwargs,
            [k for _, k in chains],
            variable,
            step.scope,
            step.group_by,
            output,
            step.materialize,
            source,
            sorted(by_kwargs),
            upstream,
        ),
    )


def compile_pipeline(
    pipeline: Pipeline,
    known: Mapping[str, CompiledStep] | None = None,
    user_code: bool | None = None,
) -> CompiledPipeline:
    """One pipeline compiled; ``known``: other pipelines' steps by key (pipeline.step) it may
    read; ``user_code``: whether unregistered step modules may load (default: in the user's
    own process only)."""
    try:
        validate_name(pipeline.name, "pipeline name")
    except InvalidNameError as error:
        raise PipelineError(f"{pipeline.where}: {error}") from None
    known = dict(known or {})
    compiled: list[CompiledStep] = []
    for step in pipeline.steps:
        compiled.append(_compile_step(step, pipeline, compiled, known, user_code))
        known[compiled[-1].key] = compiled[-1]
    return CompiledPipeline(pipeline.name, tuple(compiled), pipeline.where, pipeline.description)


def compile_pipelines(
    pipelines: Sequence[Pipeline], user_code: bool | None = None
) -> list[CompiledPipeline]:
    """Pipelines compiled in order: each may read the materialized steps of those before it."""
    known: dict[str, CompiledStep] = {}
    compiled = []
    names: set[str] = set()
    for pipeline in pipelines:
        if pipeline.name in names:
            raise PipelineError(f"{pipeline.where}: a second pipeline named {pipeline.name!r}")
        names.add(pipeline.name)
        done = compile_pipeline(pipeline, known, user_code)
        known |= {s.key: s for s in done.steps}
        compiled.append(done)
    return compiled
