"""The plate folder read and checked: every tile, then which wells can be processed."""

import os

import dagster as dg
import numpy as np
import pandas as pd

from imaging_assets.defs.assets import survey
from imaging_assets.defs.assets.common import table_md
from imaging_assets.inputs import plate_folder
from imaging_assets.partitions import PLATE_ASSET
from imaging_assets.resources import ImagingConfig
from imaging_assets.science.layouts import LayoutError, parse_plate
from imaging_assets.science.tiles import (
    TileError,
    TileHeader,
    reference_header,
    tile_header,
    validate_wells,
)
from platform_core.datastore import DataStore
from platform_core.keys import InvalidKeyError


@dg.asset(
    **PLATE_ASSET,
    code_version="2",
    kinds={"tiff", "pandas"},
    description="Every tile of the plate folder: microscope detected from the file names "
    "(ImageXpress, Opera Phenix, generic), well/site/channel/z, the channel's name from the "
    "plate metadata (column-safe; ch<N> when unnamed), site grid position, path. "
    "The plate folder is only read (a plate from the inbox only inside itself).",
)
def plate_manifest(
    context: dg.AssetExecutionContext, imaging: ImagingConfig, storage: DataStore
) -> pd.DataFrame:
    plate = context.partition_key
    try:
        folder = plate_folder(storage, plate)
        layout = parse_plate(folder.check(folder.path), folder.open)  # not a link swapped in
        tiles = layout.tiles.copy()
        stats = [os.stat(folder.check(path)) for path in tiles["path"]]  # no link out
    except (LayoutError, OSError, InvalidKeyError) as exc:  # OSError: missing, or refused
        raise dg.Failure(f"plate {plate}: {exc}") from exc
    tiles["bytes"] = [s.st_size for s in stats]
    tiles["mtime_ns"] = [s.st_mtime_ns for s in stats]
    tiles["channel_name"] = [layout.channel_label(c) for c in tiles["channel"]]
    tiles["microscope"] = layout.microscope
    tiles["pixel_size_um"] = imaging.pixel_size_um or layout.pixel_size_um or np.nan
    tiles["step_px"] = layout.step_px if layout.step_px else np.nan
    context.add_output_metadata(
        {
            "microscope": layout.microscope,
            "source": dg.MetadataValue.path(str(folder.path)),
            "wells": int(tiles["well"].nunique()),
            "site_grid": f"{layout.grid_rows} x {layout.grid_cols}",
            "channels": int(tiles["channel"].nunique()),
            "channel_names": ", ".join(tiles["channel_name"].unique()),
            "z_planes": int(tiles["z"].nunique()),
            "tiles": len(tiles),
            "gigabytes": round(float(tiles["bytes"].sum()) / 1e9, 3),
        }
    )
    return tiles


@dg.asset(
    **PLATE_ASSET,
    code_version="1",
    kinds={"pandas"},
    description="The seed's compile phase, per well: the full site grid for every channel and "
    "z plane, tiles of one shape and dtype (read from the TIFF headers), memory within the "
    "worker limit. Invalid wells are recorded with the reason and left out downstream.",
)
def plate_validation(
    context: dg.AssetExecutionContext,
    plate_manifest: pd.DataFrame,
    imaging: ImagingConfig,
    storage: DataStore,
) -> pd.DataFrame:
    folder = plate_folder(storage, context.partition_key)
    headers: dict[str, TileHeader | TileError] = {}
    for path in plate_manifest["path"]:
        try:
            headers[path] = tile_header(path, folder.open)
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
            "invalid_wells": table_md(invalid[["well", "error"]]),
        }
    )
    if len(invalid) == len(wells):
        raise dg.Failure(
            f"plate {context.partition_key}: no well can be processed; first problem: "
            f"{invalid.iloc[0]['well']}: {invalid.iloc[0]['error']}"
        )
    return wells
