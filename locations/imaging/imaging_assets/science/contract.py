"""What a pipeline step function promises the engine (imaging_assets.engine): the memory
type of its arrays, what it returns, what it sees and which components its output drops.

A step function takes a stack ``(N, H, W)`` of 2-D planes as its first argument: the planes
of one well (or, at plate scope, of every well) that differ only in the step's
``variable_components`` (``site``, ``channel``, ``z``). It returns one of:

- ``image``: a stack of N planes, or of one plane per value left after ``reduces``
  (``project_z`` reduces ``z``: one plane; ``stitch`` reduces ``site``: one mosaic);
- ``labels``: an integer stack (0 = background), one plane per input plane, or per value
  left after ``reduces``;
- ``table``: a ``pandas.DataFrame``, one row per object.

No Dagster here: user step modules decorate their functions with ``step_contract`` (or not:
an undecorated function is an ``image`` step at well scope over sites).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

Component = Literal["site", "channel", "z"]
COMPONENTS: tuple[Component, ...] = ("site", "channel", "z")
Output = Literal["image", "labels", "table"]
Memory = Literal["numpy"]  # the only memory type here (no GPU); the contract names it
Scope = Literal["well", "plate"]
CONTRACT_ATTRIBUTE = "step_contract"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class StepContract:
    """``output``: what the function returns; ``memory``: the array type it takes and
    returns; ``scope``: the default scope of a step calling it; ``variable_components``:
    the default components stacked in one call; ``reduces``: components its output drops."""

    output: Output = "image"
    memory: Memory = "numpy"
    scope: Scope = "well"
    variable_components: tuple[Component, ...] = ("site",)
    reduces: tuple[Component, ...] = ()


def step_contract(
    output: Output = "image",
    memory: Memory = "numpy",
    scope: Scope = "well",
    variable_components: tuple[Component, ...] = ("site",),
    reduces: tuple[Component, ...] = (),
) -> Callable[[F], F]:
    """Decorator recording a step function's contract on it (``func.step_contract``)."""
    contract = StepContract(output, memory, scope, variable_components, reduces)

    def record(function: F) -> F:
        setattr(function, CONTRACT_ATTRIBUTE, contract)
        return function

    return record


def contract_of(function: Callable[..., Any]) -> StepContract:
    """The contract a function declares, or the default one."""
    found = getattr(function, CONTRACT_ATTRIBUTE, None)
    return found if isinstance(found, StepContract) else StepContract()
