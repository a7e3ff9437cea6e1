"""A compiled pipeline run on a plate's wells: wells in parallel on the worker pool, each
well's steps in order in one worker with intermediates in memory, plate-scope steps on
every well's planes at once here; materialized image and labels steps written into their
OME-Zarr plate (a field per site, labels under the image they segment). A well that fails is
recorded with its error and the others go on. No Dagster here."""

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
    """Where a materialized image or labels step's OME-Zarr plate is, and what it holds."""

    store: Path
    kind: Output
    name: str


@dataclass
class PlateOutcome:
    errors: dict[str, str] = field(default_factory=dict)  # well -> error
    tables: dict[str, list[pd.DataFrame]] = field(default_factory=dict)  # step key -> frames
    fields: dict[str, int] = field(default_factory=dict)  # well -> fields written
    seconds: dict[str, float] = field(default_factory=dict)  # well -> seconds in workers
    ran: list[str] = field(default_factory=list)


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
) -> int:
    """One well's fields of a materialized image or labels step; how many were written."""
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
            labels = {step.name: np.stack([result.planes[(well.well, site, None, z)] for z in zs])}
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
            stored.store,
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
    omezarr.write_well_fields(stored.store, well.row, well.column, fields)
    return len(fields)


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
    return {step.input or TILES} | {
        k for cs in step.calls.values() for c in cs for k in c.reads.values()
    }


def run_segment(
    steps: tuple[CompiledStep, ...],
    well: WellTiles,
    carried: dict[str, StepResult],
    context: PlateContext,
    keep: frozenset[str],
    stores: Mapping[str, StoredStep],
    fingerprint: str,
) -> dict:
    """A well's steps in order (one worker): what later segments need, the tables of the
    materialized table steps and the fields written."""
    outputs = dict(carried)
    written = 0
    for step in steps:
        for key in _reads(step) - outputs.keys():
            outputs[key] = (
                StepResult("image", well_planes(well))
                if key == TILES
                else read_step(stores[key], well)
            )
        outputs[step.key] = apply_step(step, outputs, context)
        if step.key in stores:
            written += write_step(step, outputs, well, stores[step.key], context, fingerprint)
    tables = {s.key: outputs[s.key].table for s in steps if s.output == "table"}
    return {
        "carry": {k: outputs[k] for k in keep if k in outputs},
        "tables": tables,
        "fields": written,
    }


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
    """Run ``pipeline`` for the wells in ``todo``; a plate-scope step sees every well of
    ``wells`` (so the wells before it run too, their outputs kept in memory only)."""
    outcome = PlateOutcome()
    parts = segments(pipeline)
    last_plate = max((i for i, p in enumerate(parts) if p[0].scope == "plate"), default=-1)
    carried: dict[str, dict[str, StepResult]] = {w: {} for w in wells}
    for index, part in enumerate(parts):
        later = frozenset(k for p in parts[index + 1 :] for s in p for k in _reads(s))
        chosen = list(wells) if index < last_plate else todo
        alive = [w for w in chosen if w not in outcome.errors]
        if part[0].scope == "plate":
            _plate_step(part[0], alive, carried, context, stores, wells, fingerprints)
            continue
        jobs = [
            (w, (part, wells[w], carried[w], context, later, stores, fingerprints[w]))
            for w in alive
        ]
        for result in run_wells(run_segment, jobs, workers):
            well = result["well"]
            outcome.seconds[well] = outcome.seconds.get(well, 0.0) + result["seconds"]
            if result["error"]:
                outcome.errors[well] = result["error"]
                continue
            carried[well] = result["carry"]
            outcome.fields[well] = outcome.fields.get(well, 0) + result["fields"]
            if well in todo:
                for key, table in result["tables"].items():
                    outcome.tables.setdefault(key, []).append(table)
    outcome.ran = [w for w in todo if w not in outcome.errors]
    return outcome


def _plate_step(
    step: CompiledStep,
    alive: list[str],
    carried: dict[str, dict[str, StepResult]],
    context: PlateContext,
    stores: Mapping[str, StoredStep],
    wells: Mapping[str, WellTiles],
    fingerprints: Mapping[str, str],
) -> None:
    """A plate-scope step here, on every live well's planes at once; its result split back."""
    merged: dict[str, StepResult] = {}
    for key in _reads(step):
        for well in alive:
            if key not in carried[well]:
                carried[well][key] = (
                    StepResult("image", well_planes(wells[well]))
                    if key == TILES
                    else read_step(stores[key], wells[well])
                )
            part = carried[well][key]
            into = merged.setdefault(key, StepResult(part.kind))
            into.planes |= part.planes
    result = apply_step(step, merged, context)
    for well in alive:
        carried[well][step.key] = result.of_wells({well})
        if step.key in stores:
            write_step(
                step, carried[well], wells[well], stores[step.key], context, fingerprints[well]
            )
