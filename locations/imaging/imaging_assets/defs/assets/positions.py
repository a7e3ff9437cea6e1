"""Tile positions per well: registration of neighbouring tiles, then a global solve."""

import time

import dagster as dg
import numpy as np
import pandas as pd

from imaging_assets.defs.assets import survey
from imaging_assets.defs.assets.common import fail_past_threshold, selected_wells
from imaging_assets.demo import read_truth
from imaging_assets.inputs import beside_plate, plate_folder
from imaging_assets.partitions import PLATE_ASSET
from imaging_assets.resources import ImagingConfig
from imaging_assets.science.registration import position_errors
from imaging_assets.wells import register_well, run_wells
from platform_core.checkpoint import fingerprint
from platform_core.datastore import DataStore
from platform_core.io import stored_partition

POSITIONS_VERSION = "2"  # 2: overlap estimated from the data, flat field, NCC refinement


@dg.asset(
    **PLATE_ASSET,
    code_version=POSITIONS_VERSION,
    kinds={"scipy", "pandas"},
    description="Per well, the pixel position of every tile (top-left, y down): the overlap "
    "and stage repeatability estimated from a sample of wells (MIST-style, reported beside "
    "the stated overlap), a flat field, the NCC of neighbouring tiles near the estimated step "
    "with a sub-pixel peak, then a weighted least-squares solve. Columns well, site, x, y, "
    "quality (best neighbour NCC), error; error_px against the true positions when the plate "
    "has them.",
)
def tile_positions(
    context: dg.AssetExecutionContext,
    plate_manifest: pd.DataFrame,
    plate_validation: pd.DataFrame,
    imaging: ImagingConfig,
    storage: DataStore,
) -> pd.DataFrame:
    plate = context.partition_key
    channels = sorted(plate_manifest["channel"].unique())
    if imaging.registration_channel not in channels:
        raise dg.Failure(
            f"registration_channel {imaging.registration_channel} is not a channel of plate "
            f"{plate} (channels: {channels})"
        )
    valid = plate_validation.loc[plate_validation["status"] == "ok", "well"].tolist()
    selected = selected_wells(valid, imaging.wells)
    header = survey.validated_header(plate_validation)
    folder = plate_folder(storage, plate)
    step, params, flat, surveyed = survey.plate_step(
        context, plate_manifest, header, imaging, valid, folder.open
    )
    previous = stored_partition(context, context.asset_key, plate)  # wells to reuse
    keep, jobs, prints, reused = [], [], {}, []
    for well in valid:
        prints[well] = fingerprint(
            POSITIONS_VERSION,
            imaging.registration(),
            # the stated step, or that it is estimated: an estimate only centres and bounds
            # each pair's search (the tiles decide), so a re-run that surveys one more well
            # redoes no well whose tiles are unchanged
            "estimated"
            if imaging.estimate_overlap
            else survey.stated_step(plate_manifest, header, imaging),
            imaging.flat_field,
            imaging.registration_channel,
            survey.signature(plate_manifest, well, imaging.registration_channel),
        )
        old = previous[previous["well"] == well] if previous is not None else pd.DataFrame()
        reusable = (
            len(old) and (old["error"] == "").all() and (old["fingerprint"] == prints[well]).all()
        )
        if well in selected and not reusable:
            job_args = (
                survey.well_tiles(plate_manifest, well, header, folder.open),
                step,
                params,
                imaging.registration_channel,
                flat,
            )
            jobs.append((well, job_args))
        elif len(old):  # reused, or left as it was (not selected this run)
            keep.append(old)
            reused += [well] if reusable else []
    started = time.perf_counter()
    results = run_wells(register_well, jobs, imaging.workers())
    elapsed = time.perf_counter() - started
    frames = list(keep)
    for result in results:
        well = result["well"]
        if result["error"]:
            context.log.error(f"well {well}: registration failed: {result['error']}")
            sites = plate_manifest[plate_manifest["well"] == well].drop_duplicates("site")
            frame = sites[["site", "grid_row", "grid_col"]].assign(x=np.nan, y=np.nan, quality=0.0)
        else:
            frame = result["positions"]
        frames.append(
            frame.assign(
                well=well,
                error=result["error"],
                untrusted_pairs=result.get("untrusted_pairs", 0),
                fingerprint=prints[well],
            )
        )
    columns = [
        "well",
        "site",
        "grid_row",
        "grid_col",
        "x",
        "y",
        "quality",
        "untrusted_pairs",
        "error",
        "fingerprint",
    ]
    table = pd.concat(frames)[columns] if frames else pd.DataFrame(columns=columns)
    table = table.sort_values(["well", "site"]).reset_index(drop=True)
    failed = sorted({r["well"] for r in results if r["error"]})
    metadata: dict = {
        **surveyed,
        "wells_registered": len(results) - len(failed),
        "wells_reused": len(reused),
        "wells_failed": len(failed),
        "failed_wells": ", ".join(failed),
        "tiles_per_second": round(
            sum(r.get("positions", pd.DataFrame()).shape[0] for r in results) / elapsed, 1
        )
        if results and elapsed > 0
        else 0.0,
        "peak_worker_memory_mb": round(max((r["peak_mb"] for r in results), default=0.0), 1),
    }
    try:
        truth = read_truth(folder.path, beside_plate(folder).open)
    except (ValueError, OSError) as exc:  # a damaged or refused truth table: go on without
        context.log.warning(f"true positions ignored: {exc}")
        truth = None
    found = table.dropna(subset=["x"])
    errors = position_errors(found, truth) if truth is not None else pd.DataFrame()
    if len(errors):
        table = table.merge(errors, on=["well", "site"], how="left")
        metadata |= {
            "median_error_px": round(float(errors["error_px"].median()), 3),
            "max_error_px": round(float(errors["error_px"].max()), 3),
        }
    context.add_output_metadata(metadata)
    fail_past_threshold(len(failed), len(jobs), imaging, "registration")
    return table
