"""The imaging code location: the only place its Definitions are built."""

import dagster as dg

from imaging_assets.assets import plate, positions, qc, stitching
from imaging_assets.checks import CHECKS
from imaging_assets.jobs import plate_job
from imaging_assets.resources import STORAGE, ImagingConfig
from imaging_assets.sensors import SENSORS
from platform_core.alerts import Notifier, notifier_from_env
from platform_core.executors import step_executor
from platform_core.settings import resource_from_env


def imaging_from_env() -> ImagingConfig:
    """``IMAGING_WORKERS`` (wells at once, default: cores); everything else from run config."""
    return resource_from_env(ImagingConfig, {"num_workers": "IMAGING_WORKERS"})


def build_definitions(imaging: ImagingConfig, notifier: Notifier) -> dg.Definitions:
    """The location's Definitions with the given settings and notifier (tests swap them)."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([plate, positions, stitching, qc]),
        asset_checks=CHECKS,
        jobs=[plate_job],
        executor=step_executor(dg.in_process_executor),  # as plate_job: wells use the cores
        sensors=SENSORS,
        resources={"io_manager": STORAGE, "imaging": imaging, "notifier": notifier},
    )


defs = build_definitions(imaging_from_env(), notifier_from_env())
