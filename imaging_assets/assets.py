"""The plate graph: manifest -> validation -> tile positions -> stitched OME-Zarr -> QC.

One partition per plate. Wells fan out inside the assets over ``num_workers`` processes; a
failed well is a row with its error, and the step fails only past ``max_failed_fraction``.
Re-running a plate redoes only wells that failed, are missing or whose inputs changed (each
well's input fingerprint is stored with its result).
"""

import base64
import os
import time
from collections.abc import Sequence

import dagster as dg
import numpy as np
import pandas as pd

from imaging_assets import survey
from imaging_assets.demo import read_truth
from imaging_assets.plates import plate_source, stitched_store
from imaging_assets.resources import GROUP, STORAGE, ImagingConfig, plates
from imaging_assets.science import omezarr
from imaging_assets.science.layouts import LayoutError, parse_plate, row_number, split_well
from imaging_assets.science.qc import montage_png
from imaging_assets.science.registration import position_errors
from imaging_assets.science.stitch import mosaic_shape, nominal_shape
from imaging_assets.science.tiles import (
    TileError,
    TileHeader,
    reference_header,
    tile_header,
    validate_wells,
)
from imaging_assets.wells import qc_well, register_well, run_wells, stitch_well
from platform_core.checkpoint import fingerprint
from platform_core.keys import InvalidKeyError

POSITIONS_VERSION = "2"  # 2: overlap estimated from the data, flat field, NCC refinement
STITCH_VERSION = "1"
THUMBNAIL_SIZE = 256


def _table_md(frame: pd.DataFrame, limit: int = 10) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(limit).to_markdown(index=False) if len(frame) else "")


def _selected_wells(available: Sequence[str], requested: Sequence[str]) -> list[str]:
    if not requested:
        return list(available)
    unknown = sorted(set(requested) - set(available))
    if unknown:
        raise dg.Failure(
            f"wells {unknown} are not valid wells of this plate (valid: "
            f"{', '.join(available[:12])}{' ...' if len(available) > 12 else ''})"
        )
    return [w for w in available if w in set(requested)]


def _fail_past_threshold(failed: int, total: int, imaging: ImagingConfig, what: str) -> None:
    if total and failed / total > imaging.max_failed_fraction:
        raise dg.Failure(
            f"{failed} of {total} wells failed {what}, more than max_failed_fraction="
            f"{imaging.max_failed_fraction}; see the step log for each well's error"
        )


@dg.asset(
    partitions_def=plates,
    group_name=GROUP,
    code_version="1",
    kinds={"tiff", "pandas"},
    description="Every tile of the plate folder: microscope detected from the file names "
    "(ImageXpress, Opera Phenix, generic), well/site/channel/z, site grid position, path. "
    "The plate folder is only read.",
)
def plate_manifest(context: dg.AssetExecutionContext, imaging: ImagingConfig) -> pd.DataFrame:
    plate = context.partition_key
    try:
        source = plate_source(plate)
        layout = parse_plate(source)
    except (LayoutError, FileNotFoundError, InvalidKeyError) as exc:
        raise dg.Failure(f"plate {plate}: {exc}") from exc
    tiles = layout.tiles.copy()
    stats = [os.stat(path) for path in tiles["path"]]
    tiles["bytes"] = [s.st_size for s in stats]
    tiles["mtime_ns"] = [s.st_mtime_ns for s in stats]
    tiles["microscope"] = layout.microscope
    tiles["pixel_size_um"] = imaging.pixel_size_um or layout.pixel_size_um or np.nan
    tiles["step_px"] = layout.step_px if layout.step_px else np.nan
    context.add_output_metadata(
        {
            "microscope": layout.microscope,
            "source": dg.MetadataValue.path(str(source)),
            "wells": int(tiles["well"].nunique()),
            "site_grid": f"{layout.grid_rows} x {layout.grid_cols}",
            "channels": int(tiles["channel"].nunique()),
            "z_planes": int(tiles["z"].nunique()),
            "tiles": len(tiles),
            "gigabytes": round(float(tiles["bytes"].sum()) / 1e9, 3),
        }
    )
    return tiles


@dg.asset(
    partitions_def=plates,
    group_name=GROUP,
    code_version="1",
    kinds={"pandas"},
    description="The seed's compile phase, per well: the full site grid for every channel and "
    "z plane, tiles of one shape and dtype (read from the TIFF headers), memory within the "
    "worker limit. Invalid wells are recorded with the reason and left out downstream.",
)
def plate_validation(
    context: dg.AssetExecutionContext, plate_manifest: pd.DataFrame, imaging: ImagingConfig
) -> pd.DataFrame:
    headers: dict[str, TileHeader | TileError] = {}
    for path in plate_manifest["path"]:
        try:
            headers[path] = tile_header(path)
        except TileError as exc:
            headers[path] = exc
    try:
        header = reference_header(headers)
    except TileError as exc:
        raise dg.Failure(f"plate {context.partition_key}: {exc}") from exc
    grid = (int(plate_manifest["grid_row"].max()) + 1, int(plate_manifest["grid_col"].max()) + 1)
    step = survey.stated_step(plate_manifest, header, imaging)
    wells = validate_wells(
        plate_manifest, grid, headers, header, max(step), imaging.worker_memory_mb
    )
    shape, dtype = header.shape, header.dtype
    wells["tile_height"], wells["tile_width"], wells["dtype"] = shape[0], shape[1], dtype
    invalid = wells[wells["status"] != "ok"]
    for _, row in invalid.iterrows():
        context.log.warning(f"well {row['well']} left out: {row['error']}")
    context.add_output_metadata(
        {
            "wells_ok": int((wells["status"] == "ok").sum()),
            "wells_invalid": len(invalid),
            "tile": f"{shape[0]} x {shape[1]} {dtype}",
            "memory_per_well_mb": float(wells["memory_mb"].max()),
            "invalid_wells": _table_md(invalid[["well", "error"]]),
        }
    )
    if len(invalid) == len(wells):
        raise dg.Failure(
            f"plate {context.partition_key}: no well can be processed; first problem: "
            f"{invalid.iloc[0]['well']}: {invalid.iloc[0]['error']}"
        )
    return wells


@dg.asset(
    partitions_def=plates,
    group_name=GROUP,
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
) -> pd.DataFrame:
    plate = context.partition_key
    channels = sorted(plate_manifest["channel"].unique())
    if imaging.registration_channel not in channels:
        raise dg.Failure(
            f"registration_channel {imaging.registration_channel} is not a channel of plate "
            f"{plate} (channels: {channels})"
        )
    valid = plate_validation.loc[plate_validation["status"] == "ok", "well"].tolist()
    selected = _selected_wells(valid, imaging.wells)
    header = survey.validated_header(plate_validation)
    step, params, flat, surveyed = survey.plate_step(
        context, plate_manifest, header, imaging, valid
    )
    previous = STORAGE.read_partition(context.asset_key, plate)
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
                survey.well_tiles(plate_manifest, well, header),
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
        truth = read_truth(plate_source(plate))
    except ValueError as exc:  # a damaged truth table must not stop the plate
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
    _fail_past_threshold(len(failed), len(jobs), imaging, "registration")
    return table


@dg.asset(
    partitions_def=plates,
    group_name=GROUP,
    code_version=STITCH_VERSION,
    kinds={"zarr", "pandas"},
    description="Each well stitched for every channel and z plane (feathered blending) and "
    "written into one OME-Zarr plate (OME-NGFF 0.5 HCS: plate/row/column/field, pyramid, zstd) "
    "under <data root>/imaging/stitched_plate/<plate>.ome.zarr. One row per well: status "
    "written / reused / failed, error, mosaic size.",
)
def stitched_plate(
    context: dg.AssetExecutionContext,
    plate_manifest: pd.DataFrame,
    plate_validation: pd.DataFrame,
    tile_positions: pd.DataFrame,
    imaging: ImagingConfig,
) -> pd.DataFrame:
    plate = context.partition_key
    store = stitched_store(plate)
    pixel_size = plate_manifest["pixel_size_um"].iloc[0]
    pixel_size = None if pd.isna(pixel_size) else float(pixel_size)
    wells = sorted(tile_positions["well"].unique())
    selected = set(_selected_wells(wells, imaging.wells))
    omezarr.prepare_plate(store, [split_well(w) for w in wells])
    validation_header = survey.validated_header(plate_validation)
    # every well the same size: that of the wells already written, else the median
    # registered extent (the stage's intent, whatever the overlap really is)
    written = [omezarr.well_provenance(store, *split_well(w)) for w in wells]
    sizes = [p["size"] for p in written if p and "size" in p]
    extents = [
        mosaic_shape(p[["y", "x"]].to_numpy(), validation_header.shape)
        for _, p in tile_positions.dropna(subset=["x"]).groupby("well")
    ]
    grid = (int(tile_positions["grid_row"].max()) + 1, int(tile_positions["grid_col"].max()) + 1)
    if sizes:
        shape = (int(sizes[0]["height"]), int(sizes[0]["width"]))
    elif extents:
        shape = (int(np.median([e[0] for e in extents])), int(np.median([e[1] for e in extents])))
    else:
        stated = survey.stated_step(plate_manifest, validation_header, imaging)
        shape = nominal_shape(grid, stated, validation_header.shape)
    registered = sorted(tile_positions.loc[tile_positions["error"] == "", "well"].unique())
    flats = survey.channel_flats(plate_manifest, validation_header, imaging, registered)
    rows, jobs = [], []
    for well, positions in tile_positions.groupby("well"):
        row, column = split_well(well)
        registration_error = positions["error"].iloc[0]
        if registration_error:
            rows.append(
                {
                    "well": well,
                    "status": "failed",
                    "error": f"registration failed: {registration_error}",
                }
            )
            continue
        stamp = fingerprint(
            STITCH_VERSION,
            positions[["site", "x", "y"]].round(3).values.tolist(),
            survey.signature(plate_manifest, well),
            pixel_size,
            shape,
            imaging.flat_field_blend,
        )
        stored = omezarr.well_provenance(store, row, column)
        if stored is not None and stored.get("fingerprint") == stamp:
            rows.append({"well": well, "status": "reused", "error": "", **stored.get("size", {})})
        elif well in selected:
            provenance = {
                "fingerprint": stamp,
                "plate": plate,
                "positions_version": POSITIONS_VERSION,
            }
            jobs.append(
                (
                    well,
                    (
                        survey.well_tiles(plate_manifest, well, validation_header),
                        positions,
                        shape,
                        store,
                        pixel_size,
                        provenance,
                        flats,
                    ),
                )
            )
        elif stored is not None:
            rows.append({"well": well, "status": "outdated", "error": "", **stored.get("size", {})})
    started = time.perf_counter()
    results = run_wells(stitch_well, jobs, imaging.workers())
    elapsed = time.perf_counter() - started
    for result in results:
        status = "failed" if result["error"] else "written"
        if result["error"]:
            context.log.error(f"well {result['well']}: stitching failed: {result['error']}")
        rows.append(
            {
                key: result.get(key)
                for key in ("well", "error", "height", "width", "tiles", "seconds", "peak_mb")
            }
            | {"status": status}
        )
    columns = ["well", "status", "error", "height", "width", "tiles", "seconds", "peak_mb"]
    table = pd.DataFrame(rows, columns=columns).sort_values("well").reset_index(drop=True)
    complete = [split_well(w) for w in wells if omezarr.well_provenance(store, *split_well(w))]
    if complete:
        omezarr.write_plate_index(store, plate, complete)
    failed = table[table["status"] == "failed"]
    written_tiles = sum(r.get("tiles") or 0 for r in results if not r["error"])
    context.add_output_metadata(
        {
            "ome_zarr": dg.MetadataValue.path(str(store)),
            "flat_field_blend": flats is not None,
            "wells_written": int((table["status"] == "written").sum()),
            "wells_reused": int((table["status"] == "reused").sum()),
            "wells_failed": len(failed),
            "failed_wells": _table_md(failed[["well", "error"]]),
            "tiles_per_second": round(written_tiles / elapsed, 1)
            if results and elapsed > 0
            else 0.0,
            "peak_worker_memory_mb": round(max((r["peak_mb"] for r in results), default=0.0), 1),
        }
    )
    _fail_past_threshold(
        int((table["status"] == "failed").sum()), len(jobs) or len(table), imaging, "stitching"
    )
    return table


@dg.asset(
    partitions_def=plates,
    group_name=GROUP,
    code_version="1",
    kinds={"pandas"},
    description="Per well and channel of the stitched plate: focus score (variance of the "
    "Laplacian / mean^2), mean, std, 1st/99th percentile, saturated fraction; a thumbnail "
    "montage of the plate in the metadata.",
)
def plate_qc(
    context: dg.AssetExecutionContext, stitched_plate: pd.DataFrame, imaging: ImagingConfig
) -> pd.DataFrame:
    store = stitched_store(context.partition_key)
    done = stitched_plate[stitched_plate["status"].isin(["written", "reused", "outdated"])]
    jobs = []
    for well, height, width in zip(done["well"], done["height"], done["width"], strict=True):
        level = max(0, int(np.ceil(np.log2(max(height, width) / THUMBNAIL_SIZE))))
        jobs.append((well, (store, *split_well(well), level)))
    results = run_wells(qc_well, jobs, imaging.workers())
    rows, thumbnails = [], {}
    for result in results:
        if result["error"]:
            rows.append({"well": result["well"], "channel": 0, "error": result["error"]})
            continue
        row, column = split_well(result["well"])
        thumbnails[(row_number(row) - 1, column - 1)] = result["thumbnail"]
        rows += [{"well": result["well"], **c, "error": ""} for c in result["channels"]]
    table = pd.DataFrame(
        rows,
        columns=[
            "well",
            "channel",
            "focus",
            "mean",
            "std",
            "p1",
            "p99",
            "saturated_fraction",
            "error",
        ],
    )
    shape = (max([8, *[r + 1 for r, _ in thumbnails]]), max([12, *[c + 1 for _, c in thumbnails]]))
    image = base64.b64encode(montage_png(thumbnails, shape)).decode()
    context.add_output_metadata(
        {
            "wells": len(results),
            "montage": dg.MetadataValue.md(f"![plate montage](data:image/png;base64,{image})"),
            "median_focus": round(float(table["focus"].median()), 4) if len(table) else 0.0,
            "max_saturated_fraction": float(table["saturated_fraction"].max())
            if len(table)
            else 0.0,
        }
    )
    return table
