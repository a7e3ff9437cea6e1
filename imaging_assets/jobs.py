"""One job per plate: the whole graph; wells run in parallel inside each step."""

import dagster as dg

from imaging_assets.partitions import GROUP
from platform_core.executors import step_executor

# Steps run one after another in the run's process: each step already spreads its wells
# over num_workers processes, so a process per step would only add start-up time.
plate_job = dg.define_asset_job(
    "imaging_plate",
    selection=dg.AssetSelection.groups(GROUP),
    executor_def=step_executor(dg.in_process_executor),
    description="Manifest, validation, tile positions, stitched OME-Zarr plate and QC of one "
    "plate.",
)
