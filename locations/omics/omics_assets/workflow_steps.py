"""A workflow's steps: its domain's shipped steps and the user's own (a step of the workflow's
``steps:`` with ``func: package.module:function``), in an order where every step comes after
the steps it reads.

A step reads steps of its workflow and, as ``workflow.step``, steps of the workflows its
``inputs:`` names. What the step names is checked when the workflow loads: the function
imports (and may be loaded here: ``platform_core.steps.resolve_step``), takes the step
context, and every read names a step; a cycle is refused. A multiomics view read from a
workflow's step (``view_reads``) is such an input and a read of the ``views`` step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from omics_assets.config import ConfigError
from omics_assets.science.domains import STEPS, Domain, Open, Step
from omics_assets.science.steps import ContractError, check_step_signature, standard_step
from platform_core.keys import InvalidKeyError, validate_name
from platform_core.steps import resolve_step

LATEST = "latest"  # in inputs: the newest run of the upstream workflow with every step read
VIEWS_STEP = "views"  # the step that reads a workflow's views (multiomics)


def view_source(view: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """What a view read from a workflow reads: the workflow, its step, the run."""
    return view.get("workflow"), view.get("step"), view.get("run", LATEST)


def view_reads(attributes: Mapping[str, Any], file: Path) -> dict[str, Any]:
    """``attributes`` with each view read from a workflow's step (``domain_specific.views:
    {name: {workflow, step, run}}``) made an input of the workflow (``inputs: {workflow:
    run}``) and a read of its ``views`` step (``workflow.step``): the graph's dep, and the
    upstream run the step reads, as any ``inputs:``."""
    views = (attributes.get("domain_specific") or {}).get("views")
    if not isinstance(views, Mapping):
        return dict(attributes)
    inputs, reads = dict(attributes.get("inputs") or {}), []
    for name, view in views.items():
        if not isinstance(view, Mapping) or "workflow" not in view:
            continue
        upstream, step, run = map(str, view_source(view))
        if inputs.setdefault(upstream, run) != run:
            raise ConfigError(
                f"{file}: views.{name} reads run {run} of workflow {upstream}, but another "
                f"view or inputs: reads its run {inputs[upstream]}: one run per workflow"
            )
        reads.append(f"{upstream}.{step}")
    if not reads:
        return dict(attributes)
    steps = dict(attributes.get("steps") or {})
    toggle = dict(steps.get(VIEWS_STEP) or {})
    toggle["reads"] = list(dict.fromkeys([*(toggle.get("reads") or []), *reads]))
    return {**attributes, "inputs": inputs, "steps": {**steps, VIEWS_STEP: toggle}}


def custom_names(attributes: Mapping[str, Any]) -> tuple[str, ...]:
    """The user's own steps of a workflow's definition: those that name a ``func``."""
    steps = attributes.get("steps") or {}
    if not isinstance(steps, Mapping):
        return ()
    return tuple(str(n) for n, t in steps.items() if isinstance(t, Mapping) and "func" in t)


def _custom_step(name: str, toggle: Mapping[str, Any], file: Path, user_code: bool | None) -> Step:
    where = f"{file}: steps.{name}"
    try:
        validate_name(name, "step name")
        for check in toggle.get("checks") or []:
            validate_name(check, "check name")
    except InvalidKeyError as error:
        raise ConfigError(f"{where}: {error}") from None
    func = str(toggle["func"])
    function = resolve_step(func, {}, name, str(file), user_code)
    try:
        check_step_signature(function, func)
    except ContractError as error:
        raise ConfigError(f"{where}: {error}") from None
    checks = [(str(c), f"{c}: the verdict step {name} records") for c in toggle.get("checks") or []]
    step = Step(
        name,
        standard_step(function, func),
        tuple(toggle.get("reads") or ()),
        Open,
        checks=tuple(checks),
        func=func,
    )
    try:
        step.code_version  # noqa: B018 - its fingerprint needs the module's source
    except (OSError, TypeError):
        raise ConfigError(
            f"{where}: func {func!r}: its module has no source to read (compiled only?), so "
            "a change of its code could not be told from a rerun"
        ) from None
    return step


def _ordered(steps: list[Step], file: Path) -> tuple[Step, ...]:
    """``steps`` with each after the steps of the workflow it reads (declared order kept
    where free); ConfigError naming the steps of a cycle."""
    pending = {s.name: s for s in steps}
    done: list[Step] = []
    while pending:
        ready = next((s for s in pending.values() if all(n not in pending for n in s.needs)), None)
        if ready is None:
            cycle = ", ".join(sorted(pending))
            raise ConfigError(f"{file}: the reads of steps {cycle} form a cycle")
        done.append(pending.pop(ready.name))
    return tuple(done)


def workflow_steps(
    domain: Domain,
    toggles: Mapping[str, Mapping[str, Any]],
    inputs: Mapping[str, str],
    file: Path,
    user_code: bool | None = None,
) -> tuple[Step, ...]:
    """The workflow's steps, ordered: its domain's (with any ``reads`` a toggle adds) and
    its own. ``toggles``: the resolved ``steps:``; ``inputs``: its upstream workflows."""
    shipped = {s.name: s for s in STEPS[domain]}
    steps: list[Step] = []
    for name, toggle in toggles.items():
        if "func" in toggle:
            if name in shipped:
                raise ConfigError(
                    f"{file}: steps.{name} names a func, but {name} is a shipped step of the "
                    f"{domain} domain: give your own step a name of its own"
                )
            steps.append(_custom_step(name, toggle, file, user_code))
        else:
            spec = shipped[name]
            extra = tuple(r for r in toggle.get("reads") or () if r not in spec.needs)
            steps.append(replace(spec, needs=spec.needs + extra) if extra else spec)
    if not steps:
        raise ConfigError(f"{file}: a {domain} workflow needs at least one step (func: ...)")
    names = {s.name for s in steps}
    for spec in steps:
        bare = [r.rpartition(".")[2] for r in spec.needs]
        if len(set(bare)) < len(bare):
            raise ConfigError(
                f"{file}: step {spec.name} reads {', '.join(spec.needs)}: two of them have "
                "the same step name, which the step could not tell apart"
            )
        for read in spec.needs:
            workflow, dot, _ = read.rpartition(".")
            if not dot and read not in names:
                raise ConfigError(
                    f"{file}: step {spec.name} reads {read!r}: no such step in the workflow "
                    f"(its steps: {', '.join(sorted(names))}; another workflow's: "
                    "workflow.step, that workflow named in inputs:)"
                )
            if dot and workflow not in inputs:
                raise ConfigError(
                    f"{file}: step {spec.name} reads {read!r}, but {workflow!r} is not in the "
                    f"workflow's inputs: ({', '.join(inputs) or 'none'})"
                )
    return _ordered(steps, file)
