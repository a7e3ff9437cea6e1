"""The omics code location: the only place its Definitions are built.

The workflows are components (``omics_assets/defs/*/defs.yaml``), loaded with
``load_from_defs_folder``; this module adds what every workflow shares: storage, tool
settings, the notifier, the config inbox over every workflow's job and the alert sensors.
"""

from pathlib import Path

import dagster as dg

from omics_assets.resources import STORAGE, OmicsSettings
from omics_assets.sensors import ALERT_SENSORS, build_config_inbox_sensor
from platform_core.alerts import Notifier, notifier_from_env
from platform_core.executors import step_executor
from platform_core.settings import resource_from_env


def omics_from_env() -> OmicsSettings:
    """``OMICS_TOOL_TIMEOUT_SECONDS``."""
    return resource_from_env(OmicsSettings, {"tool_timeout_seconds": "OMICS_TOOL_TIMEOUT_SECONDS"})


def build_definitions(omics: OmicsSettings, notifier: Notifier) -> dg.Definitions:
    """The location's Definitions with the given settings and notifier (tests swap them)."""
    workflows = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    return dg.Definitions.merge(
        workflows,
        dg.Definitions(
            sensors=[build_config_inbox_sensor(list(workflows.jobs or [])), *ALERT_SENSORS],
            executor=step_executor(dg.in_process_executor),
            resources={"io_manager": STORAGE, "omics": omics, "notifier": notifier},
        ),
    )


defs = build_definitions(omics_from_env(), notifier_from_env())
