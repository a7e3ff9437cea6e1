"""The ECOD code location: the only place its Definitions are built."""

import dagster as dg

from ecod_assets.assets import analysis, reference, search
from ecod_assets.checks import CHECKS
from ecod_assets.jobs import ALL_JOBS
from ecod_assets.resources import STORAGE, EcodTools, OrchestrationConfig
from ecod_assets.sensors import SENSORS
from platform_core.alerts import Notifier, notifier_from_env
from platform_core.executors import step_executor
from platform_core.settings import resource_from_env


def orchestration_from_env() -> OrchestrationConfig:
    """``ECOD_WORKERS`` (tool processes, default: cores), ``ECOD_STAGE_TIMEOUT`` (s),
    ``ECOD_TOOL_RETRIES``; everything else from run config."""
    return resource_from_env(
        OrchestrationConfig,
        {
            "workers": "ECOD_WORKERS",
            "stage_timeout": "ECOD_STAGE_TIMEOUT",
            "tool_retries": "ECOD_TOOL_RETRIES",
        },
    )


def build_definitions(orchestration: OrchestrationConfig, notifier: Notifier) -> dg.Definitions:
    """The location's Definitions with the given settings and notifier (tests swap them)."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([reference, search, analysis]),
        asset_checks=CHECKS,
        jobs=ALL_JOBS,
        executor=step_executor(dg.multiprocess_executor),
        sensors=SENSORS,
        resources={
            "io_manager": STORAGE,
            "ecod_tools": EcodTools(),
            "orchestration": orchestration,
            "notifier": notifier,
        },
    )


defs = build_definitions(orchestration_from_env(), notifier_from_env())
