"""Every well stitched into one OME-Zarr plate."""

import time

import dagster as dg
import pandas as pd

from imaging_assets.defs.assets import survey
from imaging_assets.defs.assets.common import fail_past_threshold, selected_wells, table_md
from imaging_assets.defs.assets.positions import POSITIONS_VERSION
from imaging_assets.inputs import plate_folder, stitched_store
from imaging_assets.partitions import PLATE_ASSET
from imaging_assets.resources import ImagingConfig
from imaging_assets.science import omezarr
from imaging_assets.science.layouts import split_well
from imaging_assets.science.stitch import common_well_shape
from imaging_assets.wells import run_wells, stitch_well
from platform_core.checkpoint import fingerprint
from platform_core.datastore import DataStore

STITCH_VERSION = "1"


@dg.asset(
    **PLATE_ASSET,
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
    storage: DataStore,
) -> pd.DataFrame:
    plate = context.partition_key
    store = stitched_store(storage, plate)
    pixel_size = plate_manifest["pixel_size_um"].iloc[0]
    pixel_size = None if pd.isna(pixel_size) else float(pixel_size)
    wells = sorted(tile_positions["well"].unique())
    selected = set(selected_wells(wells, imaging.wells))
    omezarr.prepare_plate(store, [split_well(w) for w in wells])
    validation_header = survey.validated_header(plate_validation)
    provenance = [omezarr.well_provenance(store, *split_well(w)) for w in wells]
    shape = common_well_shape(
        [
            (int(p["size"]["height"]), int(p["size"]["width"]))
            for p in provenance
            if p and "size" in p
        ],
        [p[["y", "x"]].to_numpy() for _, p in tile_positions.dropna(subset=["x"]).groupby("well")],
        validation_header.shape,
        (int(tile_positions["grid_row"].max()) + 1, int(tile_positions["grid_col"].max()) + 1),
        survey.stated_step(plate_manifest, validation_header, imaging),
    )
    registered = sorted(tile_positions.loc[tile_positions["error"] == "", "well"].unique())
    opener = plate_folder(storage, plate).open
    flats = survey.channel_flats(plate_manifest, validation_header, imaging, registered, opener)
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
                        survey.well_tiles(plate_manifest, well, validation_header, opener),
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
            "failed_wells": table_md(failed[["well", "error"]]),
            "tiles_per_second": round(written_tiles / elapsed, 1)
            if results and elapsed > 0
            else 0.0,
            "peak_worker_memory_mb": round(max((r["peak_mb"] for r in results), default=0.0), 1),
        }
    )
    fail_past_threshold(
        int((table["status"] == "failed").sum()), len(jobs) or len(table), imaging, "stitching"
    )
    return table
