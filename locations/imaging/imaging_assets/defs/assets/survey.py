"""Plate-level helpers of the imaging assets: the manifest's wells and step, and the survey
of a sample of wells that estimates the overlap, the stage repeatability and the flat fields
(tile_positions and stitched_plate share them)."""

from dataclasses import replace

import dagster as dg
import numpy as np
import pandas as pd

from imaging_assets.resources import ImagingConfig
from imaging_assets.science.layouts import split_well
from imaging_assets.science.registration import (
    RegistrationParams,
    StepEstimate,
    consensus_step,
    flat_field,
)
from imaging_assets.science.tiles import TileHeader
from imaging_assets.wells import WellTiles, channel_medians, run_wells, survey_well
from platform_core.confine import Opener, open_as_named

OVERLAP_WARNING = 0.02  # estimated vs stated overlap (fraction of a tile) worth a warning


def validated_header(validation: pd.DataFrame) -> TileHeader:
    """Tile shape and dtype every valid well of the plate shares (from plate_validation)."""
    first = validation.iloc[0]
    return TileHeader((int(first["tile_height"]), int(first["tile_width"])), str(first["dtype"]))


def stated_step(
    manifest: pd.DataFrame, header: TileHeader, imaging: ImagingConfig
) -> tuple[float, float]:
    """Stage distance between neighbouring sites (y, x), pixels."""
    step_px = manifest["step_px"].iloc[0]
    if pd.notna(step_px):
        return float(step_px), float(step_px)
    return header.shape[0] * (1 - imaging.overlap), header.shape[1] * (1 - imaging.overlap)


def survey_sample(wells: list[str], imaging: ImagingConfig) -> list[str]:
    """Up to ``survey_wells`` wells spread evenly over the plate."""
    return wells[:: max(1, len(wells) // max(1, imaging.survey_wells))][: imaging.survey_wells]


def channel_flats(
    manifest: pd.DataFrame,
    header: TileHeader,
    imaging: ImagingConfig,
    wells: list[str],
    opener: Opener = open_as_named,
) -> dict[int, np.ndarray] | None:
    """Each channel's flat field from the surveyed wells (``flat_field_blend``), else None."""
    if not imaging.flat_field_blend or not wells:
        return None
    sample = survey_sample(wells, imaging)
    jobs = [(w, (well_tiles(manifest, w, header, opener),)) for w in sample]
    surveys = [r for r in run_wells(channel_medians, jobs, imaging.workers()) if not r["error"]]
    if not surveys:
        return None
    channels = surveys[0]["medians"].keys()
    return {c: flat_field([r["medians"][c] for r in surveys]) for c in channels}


def plate_step(
    context: dg.AssetExecutionContext,
    manifest: pd.DataFrame,
    header: TileHeader,
    imaging: ImagingConfig,
    wells: list[str],
    opener: Opener = open_as_named,
) -> tuple[tuple[float, float] | StepEstimate, RegistrationParams, np.ndarray | None, dict]:
    """The step the wells are registered with, the search it allows, the flat field and
    what to report: estimated from up to ``survey_wells`` wells spread over the plate
    (``estimate_overlap``), else the stated one; tiles opened by ``opener``."""
    stated, params = stated_step(manifest, header, imaging), imaging.registration()
    overlap_stated = (1 - stated[0] / header.shape[0], 1 - stated[1] / header.shape[1])
    metadata: dict = {"stated_overlap": round(overlap_stated[1], 4)}
    if not (imaging.estimate_overlap or imaging.flat_field) or not wells:
        return stated, params, None, metadata
    sample = survey_sample(wells, imaging)
    channel = imaging.registration_channel
    jobs = [(w, (well_tiles(manifest, w, header, opener), params, channel)) for w in sample]
    surveys = [r for r in run_wells(survey_well, jobs, imaging.workers()) if not r["error"]]
    flat = flat_field([r["median"] for r in surveys]) if imaging.flat_field and surveys else None
    if flat is not None:
        metadata["flat_field_range"] = round(float(flat.max() / flat.min()), 3)
    if not imaging.estimate_overlap:
        return stated, params, flat, metadata
    estimate = consensus_step([o for r in surveys for o in r["offsets"]], params.min_quality)
    if estimate is None:
        context.log.warning(
            f"plate {context.partition_key}: no neighbour pair of the {len(sample)} surveyed "
            f"wells correlates; registered with the stated overlap {overlap_stated[1]:.1%}"
        )
        return stated, params, flat, metadata | {"estimated_overlap": "not found"}
    overlap = estimate.overlap(header.shape)
    metadata |= {
        "estimated_overlap_x": round(overlap[1], 4),
        "estimated_overlap_y": round(overlap[0], 4),
        "stage_repeatability_px": round(estimate.repeatability, 2),
        "overlap_pairs_used": estimate.pairs,
    }
    if max(abs(a - b) for a, b in zip(overlap, overlap_stated, strict=True)) > OVERLAP_WARNING:
        context.log.warning(
            f"plate {context.partition_key}: the tiles overlap {overlap[1]:.1%} (x) and "
            f"{overlap[0]:.1%} (y), not the stated {overlap_stated[1]:.1%}; registered with "
            "the estimated overlap"
        )
    reach = min(params.max_shift, estimate.search_reach())
    return estimate, replace(params, max_shift=reach), flat, metadata


def well_tiles(
    manifest: pd.DataFrame, well: str, header: TileHeader, opener: Opener = open_as_named
) -> WellTiles:
    """What a worker needs to read one well's tiles (opened by ``opener``: the plate's
    ``InputFolder.open``)."""
    rows = manifest[manifest["well"] == well]
    columns = ["site", "channel", "z", "grid_row", "grid_col", "path"]
    records = [
        {k: (v if isinstance(v, str) else int(v)) for k, v in r.items()}
        for r in rows[columns].to_dict("records")
    ]
    row, column = split_well(well)
    return WellTiles(well, row, column, records, header, opener)


def signature(manifest: pd.DataFrame, well: str, channel: int | None = None) -> list:
    """Path, size and mtime of a well's tiles (of one channel): a well's input fingerprint."""
    rows = manifest[manifest["well"] == well]
    if channel is not None:
        rows = rows[rows["channel"] == channel]
    return rows[["path", "bytes", "mtime_ns"]].values.tolist()
