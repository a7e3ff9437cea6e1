"""One job per plate: the whole graph; wells run in parallel inside each step (the executor,
in-process, is set once for the location: location.py)."""

import dagster as dg

from imaging_assets.partitions import GROUP

plate_job = dg.define_asset_job(
    "imaging_plate",
    selection=dg.AssetSelection.groups(GROUP),
    description="Manifest, validation, tile positions, stitched OME-Zarr plate and QC of one "
    "plate.",
)
