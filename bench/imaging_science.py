"""A plate's science without Dagster: the same functions (layout, tile headers, overlap
survey, registration, stitching into OME-Zarr, QC) on the same plate and worker count, in a
plain loop. bench/imaging_plate.py times it beside the plate job: their ratio is the cost of
orchestration."""

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from imaging_assets.defs.assets import survey
from imaging_assets.resources import ImagingConfig
from imaging_assets.science import omezarr
from imaging_assets.science.layouts import parse_plate, split_well
from imaging_assets.science.stitch import common_well_shape
from imaging_assets.science.tiles import reference_header, tile_header
from imaging_assets.wells import qc_well, register_well, run_wells, stitch_well


def bare_plate(plate_dir: Path, store: Path, workers: int) -> int:
    """Stitch every well of ``plate_dir`` into ``store`` as the plate job does with the
    default settings; returns the wells written."""
    imaging = ImagingConfig(num_workers=workers)
    layout = parse_plate(plate_dir)
    manifest = layout.tiles.assign(step_px=layout.step_px or np.nan)
    header = reference_header({p: tile_header(p) for p in manifest["path"]})
    wells = sorted(manifest["well"].unique())
    # plate_step logs through a Dagster context; here a plain logger stands in for it
    context = SimpleNamespace(log=logging.getLogger("bench"), partition_key=plate_dir.name)
    step, params, flat, _ = survey.plate_step(context, manifest, header, imaging, wells)
    channel = imaging.registration_channel
    jobs = [
        (w, (survey.well_tiles(manifest, w, header), step, params, channel, flat)) for w in wells
    ]
    registered = {r["well"]: r["positions"] for r in run_wells(register_well, jobs, workers)}
    omezarr.prepare_plate(store, [split_well(w) for w in wells])
    grid = (int(manifest["grid_row"].max()) + 1, int(manifest["grid_col"].max()) + 1)
    stated = survey.stated_step(manifest, header, imaging)
    positions = [p[["y", "x"]].to_numpy() for p in registered.values()]
    shape = common_well_shape([], positions, header.shape, grid, stated)
    jobs = [
        (w, (survey.well_tiles(manifest, w, header), p, shape, store, None, {}, None))
        for w, p in registered.items()
    ]
    written = [r["well"] for r in run_wells(stitch_well, jobs, workers) if not r["error"]]
    omezarr.write_plate_index(store, plate_dir.name, [split_well(w) for w in written])
    run_wells(qc_well, [(w, (store, *split_well(w), 2)) for w in written], workers)
    return len(written)
