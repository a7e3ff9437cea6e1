"""Applying one compiled step: the well's planes grouped and stacked as the step declares,
its function pattern called on each stack, the results keyed back to their planes.

Planes are keyed ``(well, site, channel, z)``; a component a step reduced is None (a
mosaic has no site, labels no channel). A plate-scope step stacks every well's planes too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from imaging_assets.engine.compile import CompiledCall, CompiledStep
from imaging_assets.science.contract import Output

Key = tuple[str, int | None, int | None, int | None]
AXES = ("well", "site", "channel", "z")
TILES = "plate.tiles"  # the output key of the plate's own planes


class StepFailed(RuntimeError):
    """A step function that raised or returned what its contract does not allow."""


@dataclass
class StepResult:
    kind: Output
    planes: dict[Key, np.ndarray] = field(default_factory=dict)
    table: pd.DataFrame | None = None

    def of_wells(self, wells: set[str]) -> StepResult:
        planes = {k: v for k, v in self.planes.items() if k[0] in wells}
        table = self.table[self.table["well"].isin(wells)] if self.table is not None else None
        return StepResult(self.kind, planes, table)


@dataclass(frozen=True)
class PlateContext:
    """What the engine gives step functions besides their planes (compile.INJECTED)."""

    channel_names: Mapping[int, str]
    pixel_size_um: float | None
    site_grid: pd.DataFrame
    tile_step_px: tuple[float, float]


def _matches(key: Key, other: Key) -> bool:
    """Whether two planes belong together: equal wherever both name a component."""
    return all(a is None or b is None or a == b for a, b in zip(key, other, strict=True))


def _given(result: StepResult, keys: Sequence[Key]) -> Any:
    """What a parameter reading another step gets for a call on ``keys``: that step's planes
    belonging to them (one plane: 2-D), or its table rows of these wells (and site)."""
    if result.kind == "table":
        table = result.table if result.table is not None else pd.DataFrame()
        wells = {k[0] for k in keys}
        rows = table[table["well"].isin(wells)] if "well" in table else table
        sites = {k[1] for k in keys}
        if len(sites) == 1 and None not in sites and "site" in rows:
            rows = rows[rows["site"] == next(iter(sites))]
        return rows.reset_index(drop=True)
    found = [k for k in result.planes if any(_matches(k, key) for key in keys)]
    if not found:
        raise StepFailed(f"no plane for {_where(keys)}")
    planes = [result.planes[k] for k in found]
    return planes[0] if len(planes) == 1 else np.stack(planes)


def _where(keys: Sequence[Key]) -> str:
    wells = sorted({k[0] for k in keys})
    sites = sorted({k[1] for k in keys if k[1] is not None})
    text = f"well {wells[0]}" if len(wells) == 1 else f"{len(wells)} wells"
    return text + (f" site {sites[0]}" if len(sites) == 1 else "")


def _call(
    call: CompiledCall,
    stack: np.ndarray,
    keys: Sequence[Key],
    outputs: Mapping[str, StepResult],
    context: PlateContext,
) -> Any:
    injected = {
        "channels": [k[2] for k in keys],
        "sites": [k[1] for k in keys],
        "zs": [k[3] for k in keys],
        "well": keys[0][0],
        "channel_names": dict(context.channel_names),
        "pixel_size_um": context.pixel_size_um,
        "site_grid": context.site_grid,
        "tile_step_px": context.tile_step_px,
    }
    kwargs = {**call.kwargs, **{name: injected[name] for name in call.injected}}
    for parameter, key in call.reads.items():
        kwargs[parameter] = _given(outputs[key], keys)
    return call.function(stack, **kwargs)


def _groups(step: CompiledStep, planes: Mapping[Key, np.ndarray]) -> dict[tuple, list[Key]]:
    """Plane keys by the components a call holds fixed (every component not varying inside a
    call, and ``group_by``), each group sorted; only the planes the selectors keep."""
    varying = set(step.variable_components) | ({"well"} if step.scope == "plate" else set())
    fixed = [i for i, axis in enumerate(AXES) if axis not in varying or axis == step.group_by]
    groups: dict[tuple, list[Key]] = {}
    for key in sorted(planes, key=lambda k: tuple((v is None, v) for v in k)):
        if all(key[AXES.index(a)] in values for a, values in step.selectors.items()):
            groups.setdefault(tuple(key[i] for i in fixed), []).append(key)
    if planes and not groups:
        have = {a: sorted({k[AXES.index(a)] for k in planes} - {None}) for a in step.selectors}
        raise StepFailed(
            f"step {step.key!r} selects {dict(step.selectors)}, which no plane of "
            f"{_where(list(planes))} has (it has {have})"
        )
    return groups


def _out_keys(step: CompiledStep, keys: Sequence[Key]) -> list[Key]:
    dropped = {AXES.index(a) for a in step.reduces} | ({2} if step.output == "labels" else set())
    out: list[Key] = []
    for key in keys:
        reduced = tuple(None if i in dropped else v for i, v in enumerate(key))
        if reduced not in out:
            out.append(reduced)  # type: ignore[arg-type]
    return out


def apply_step(
    step: CompiledStep, outputs: Mapping[str, StepResult], context: PlateContext
) -> StepResult:
    """The step's result on the planes of ``outputs`` (every output it reads, by key)."""
    source = outputs[step.input or TILES]
    if source.kind == "table":
        raise StepFailed(f"step {step.key!r} stacks {step.input}, a table")
    result = StepResult(step.output)
    tables = []
    for keys in _groups(step, source.planes).values():
        group_value = keys[0][AXES.index(step.group_by)] if step.group_by else None
        calls = step.calls.get(group_value, step.calls.get(None))
        if calls is None:  # a mapping pattern without this value: the planes pass through
            if step.output == "image":
                result.planes.update({k: source.planes[k] for k in keys})
            continue
        value: Any = np.stack([source.planes[k] for k in keys])
        for call in calls:
            try:
                value = _call(call, value, keys, outputs, context)
            except Exception as error:  # the step's code: name the step, function and well
                raise StepFailed(
                    f"step {step.key!r} ({call.label}) failed in {_where(keys)}: "
                    f"{type(error).__name__}: {error}"
                ) from error
        where = f"step {step.key!r} ({step.functions}) in {_where(keys)}"
        if step.output == "table":
            tables.append(_table(value, keys, where))
        else:
            produced = _planes(step, value, keys, where)
            if produced.keys() & result.planes.keys():  # e.g. labels of two channels
                raise StepFailed(
                    f"{where}: two calls made the same plane; a labels step sees one channel "
                    "per plane: select one (kwargs channel: N) or reduce channel"
                )
            result.planes.update(produced)
    if step.output == "table":
        result.table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return result


def _planes(step: CompiledStep, value: Any, keys: Sequence[Key], where: str) -> dict:
    out = _out_keys(step, keys)
    if step.output == "labels" and len({(k[0], k[1], k[3]) for k in keys}) < len(keys):
        raise StepFailed(
            f"{where}: a labels step sees one channel per plane; select one (kwargs "
            "channel: N) or reduce channel"
        )
    array = np.asarray(value)
    if array.ndim == 2 and len(out) == 1:
        array = array[None]
    if array.ndim != 3 or array.shape[0] != len(out):
        reduced = f" once {', '.join(step.reduces)} is reduced" if step.reduces else ""
        raise StepFailed(
            f"{where}: returned an array of shape {array.shape}; expected ({len(out)}, H, W): "
            f"one plane per input plane{reduced}"
        )
    if step.output == "labels" and not np.issubdtype(array.dtype, np.integer):
        raise StepFailed(f"{where}: labels must be integers, not {array.dtype}")
    return dict(zip(out, array, strict=True))


def _table(value: Any, keys: Sequence[Key], where: str) -> pd.DataFrame:
    if not isinstance(value, pd.DataFrame):
        raise StepFailed(f"{where}: a table step returns a DataFrame, not {type(value).__name__}")
    sites = {k[1] for k in keys}
    site = next(iter(sites)) if len(sites) == 1 else None
    table = value.reset_index(drop=True)
    if "site" not in table:
        table.insert(0, "site", pd.array([site] * len(table), dtype="Int64"))
    if "well" not in table:
        table.insert(0, "well", keys[0][0])
    return table
