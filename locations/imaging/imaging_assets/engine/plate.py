"""A compiled pipeline run on a plate's wells: wells in parallel on the worker pool, each
well's steps in order in one worker with intermediates in memory, plate-scope steps on
every well's planes at once here; materialized image and labels steps written into their
staging OME-Zarr plate (a field per site, labels under the image they segment), moved into
the step's store only when the run succeeds (engine/cache.py). A well that fails is recorded
with its error and the others go on. No Dagster here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from imaging_assets.engine.apply import TILES, Key, PlateContext, StepResult, apply_step
from imaging_assets.engine.compile import CompiledPipeline, CompiledStep
from imaging_assets.science import omezarr
from imaging_assets.science.contract import Output
from imaging_assets.wells import WellTiles, run_wells


@dataclass(frozen=True)
class StoredStep:
    """A materialized image or labels step's OME-Zarr plate (``store``), where a run writes
    its wells until it succeeds (``staging``), and what it holds."""

    store: Path
    staging: Path
    kind: Output
    name: str


@dataclass
class PlateOutcome:
    """Per well of the run: its error, or its tables (step key -> table)."""

    errors: dict[str, str] = field(default_factory=dict)
    tables: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)  # wells only read, not readable

    @property
    def ran(self) -> list[str]:
        return sorted(self.tables)

    def fail(self, well: str, error: str, todo: list[str]) -> None:
        """A well of the run fails; a well only read for a plate-scope step is left out."""
        (self.errors if well in todo else self.left_out)[well] = error


def well_planes(well: WellTiles) -> dict[Key, np.ndarray]:
    """Every tile of a well, keyed (well, site, channel, z)."""
    return {
        (well.well, int(t["site"]), int(t["channel"]), int(t["z"])): well.read(t["path"])
        for t in well.tiles
    }


def _field(site: int | None, sites: list[int]) -> str:
    return str(sites.index(site)) if site is not None else "0"


def write_step(
    step: CompiledStep,
    outputs: Mapping[str, StepResult],
    well: WellTiles,
    stored: StoredStep,
    context: PlateContext,
    fingerprint: str,
) -> None:
    """One well's fields of a materialized image or labels step, staged."""
    result = outputs[step.key]
    image = outputs[step.input or TILES] if step.output == "labels" else result
    sites = sorted({k[1] for k in image.planes if k[1] is not None})
    fields: list[str] = []
    for site in sorted({k[1] for k in image.planes}, key=lambda s: (s is None, s)):
        keys = [k for k in image.planes if k[1] == site]
        channels = sorted({k[2] for k in keys if k[2] is not None})
        zs = sorted({k[3] for k in keys}, key=lambda z: (z is None, z))
        try:
            pixels = np.stack(
                [np.stack([image.planes[(well.well, site, c, z)] for z in zs]) for c in channels]
            )
        except KeyError as missing:
            raise ValueError(f"step {step.key!r}: well {well.well} lacks plane {missing}") from None
        labels = None
        if step.output == "labels":
            try:
                labels = {
                    step.name: np.stack([result.planes[(well.well, site, None, z)] for z in zs])
                }
            except KeyError as missing:
                raise ValueError(
                    f"step {step.key!r}: its labels have no plane {missing} for the z planes "
                    f"{zs} of the image they segment (well {well.well})"
                ) from None
        name = _field(site, sites)
        provenance = {
            "fingerprint": fingerprint,
            "step": step.key,
            "site": site,
            "channel_numbers": channels,
            "zs": zs,
        }
        names = [context.channel_names.get(c, f"ch{c}") for c in channels]
        omezarr.write_field(
            stored.staging,
            well.row,
            well.column,
            name,
            pixels,
            context.pixel_size_um,
            names,
            provenance,
            labels,
        )
        fields.append(name)
    omezarr.write_well_fields(stored.staging, well.row, well.column, fields)


def read_step(stored: StoredStep, well: WellTiles) -> StepResult:
    """A materialized step of another pipeline, one well of it, as planes."""
    folder = omezarr.well_path(stored.store, well.row, well.column)
    result = StepResult(stored.kind)
    for path in sorted(p for p in folder.iterdir() if p.name.isdigit()) if folder.exists() else []:
        meta = omezarr.well_provenance(stored.store, well.row, well.column, path.name) or {}
        site, zs = meta.get("site"), meta.get("zs", [])
        if stored.kind == "labels":
            array = omezarr.read_well(
                stored.store, well.row, well.column, 0, path.name, stored.name
            )
            result.planes |= {(well.well, site, None, z): array[0, i] for i, z in enumerate(zs)}
        else:
            array = omezarr.read_well(stored.store, well.row, well.column, 0, path.name)
            for c, channel in enumerate(meta.get("channel_numbers", [])):
                result.planes |= {
                    (well.well, site, channel, z): array[c, i] for i, z in enumerate(zs)
                }
    if not result.planes:
        raise ValueError(f"{stored.store}: well {well.well} has no stored {stored.name} (run it)")
    return result


def _reads(step: CompiledStep) -> set[str]:
    calls = step.calls.values()
    return {step.input or TILES} | {k for cs in calls for c in cs for k in c.reads.values()}


def _load(key: str, well: WellTiles, stores: Mapping[str, StoredStep]) -> StepResult:
    """What a step reads that no step of this run made: the tiles, or another pipeline's."""
    if key == TILES:
        return StepResult("image", well_planes(well))
    return read_step(stores[key], well)


def run_segment(
    steps: tuple[CompiledStep, ...],
    well: WellTiles,
    carried: dict[str, StepResult],
    context: PlateContext,
    keep: frozenset[str],
    stores: Mapping[str, StoredStep],
    writes: bool,
    fingerprint: str,
) -> dict[str, dict]:
    """A well's steps in order (one worker): what later segments need (``carry``) and the
    tables of its table steps; with ``writes``, its materialized fields are staged."""
    outputs = dict(carried)
    for index, step in enumerate(steps):
        for key in _reads(step) - outputs.keys():
            outputs[key] = _load(key, well, stores)
        outputs[step.key] = apply_step(step, outputs, context)
        if writes and step.key in stores:
            write_step(step, outputs, well, stores[step.key], context, fingerprint)
        needed = keep | {k for s in steps[index + 1 :] for k in _reads(s)}
        for key in [k for k, v in outputs.items() if k not in needed and v.kind != "table"]:
            del outputs[key]  # planes no later step reads: a long pipeline's memory stays flat
    tables = {s.key: outputs[s.key].table for s in steps if s.output == "table"}
    return {"carry": {k: outputs[k] for k in keep if k in outputs}, "tables": tables}


def segments(pipeline: CompiledPipeline) -> list[tuple[CompiledStep, ...]]:
    """The steps cut at plate-scope steps: each plate step is a segment of its own."""
    cut: list[tuple[CompiledStep, ...]] = []
    run: list[CompiledStep] = []
    for step in pipeline.steps:
        if step.scope == "plate":
            cut += [tuple(run)] if run else []
            cut.append((step,))
            run = []
        else:
            run.append(step)
    return cut + ([tuple(run)] if run else [])


def run_plate(
    pipeline: CompiledPipeline,
    wells: Mapping[str, WellTiles],
    todo: list[str],
    context: PlateContext,
    stores: Mapping[str, StoredStep],
    fingerprints: Mapping[str, str],
    workers: int,
) -> PlateOutcome:
    """Run ``pipeline`` for the wells in ``todo``. A plate-scope step sees every well of
    ``wells``: up to the last one, every well runs (in memory only: only ``todo`` wells are
    staged or reported; another well that cannot be read is left out of the estimate)."""
    outcome = PlateOutcome()
    parts = segments(pipeline)
    last_plate = max((i for i, p in enumerate(parts) if p[0].scope == "plate"), default=-1)
    carried: dict[str, dict[str, StepResult]] = {w: {} for w in wells}
    tables: dict[str, dict[str, pd.DataFrame]] = {w: {} for w in todo}
    for index, part in enumerate(parts):
        later = frozenset(k for p in parts[index + 1 :] for s in p for k in _reads(s))
        chosen = list(wells) if index <= last_plate else todo
        alive = [w for w in chosen if w not in outcome.errors and w not in outcome.left_out]
        if part[0].scope == "plate":
            _plate_step(
                part[0], alive, carried, context, stores, wells, todo, fingerprints, outcome
            )
            continue
        needed = later | {k for s in part for k in _reads(s)}
        for well in alive:  # what no step reads again is neither kept nor sent to a worker
            carried[well] = {k: v for k, v in carried[well].items() if k in needed}
        jobs = [
            (w, (part, wells[w], carried[w], context, later, stores, w in todo, fingerprints[w]))
            for w in alive
        ]
        for result in run_wells(run_segment, jobs, workers):
            well = result["well"]
            if result["error"]:
                outcome.fail(well, result["error"], todo)
            else:
                carried[well] = result["carry"]
                if well in todo:
                    tables[well] |= result["tables"]
    outcome.tables = {w: t for w, t in tables.items() if w not in outcome.errors}
    return outcome


def _plate_step(
    step: CompiledStep,
    alive: list[str],
    carried: dict[str, dict[str, StepResult]],
    context: PlateContext,
    stores: Mapping[str, StoredStep],
    wells: Mapping[str, WellTiles],
    todo: list[str],
    fingerprints: Mapping[str, str],
    outcome: PlateOutcome,
) -> None:
    """A plate-scope step here, on every readable well's planes at once; its result split
    back per well (a well whose planes cannot be read fails alone)."""
    merged: dict[str, StepResult] = {}
    used = []
    for well in alive:
        try:
            for key in _reads(step) - carried[well].keys():
                carried[well][key] = _load(key, wells[well], stores)
        except (OSError, ValueError) as error:
            outcome.fail(well, f"{type(error).__name__}: {error}", todo)
            continue
        used.append(well)
        for key in _reads(step):
            part = carried[well][key]
            merged.setdefault(key, StepResult(part.kind)).planes.update(part.planes)
    result = apply_step(step, merged, context)
    for well in used:
        carried[well][step.key] = result.of_wells({well})
        if well in todo and step.key in stores:
            write_step(
                step, carried[well], wells[well], stores[step.key], context, fingerprints[well]
            )
