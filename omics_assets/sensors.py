"""A config inbox per workflow (a YAML dropped in ``<data root>/omics/inbox/<workflow>/`` ->
a registered run and its run request) and alerting."""

import os
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from omics_assets.config import ConfigError
from omics_assets.workflows import (
    WorkflowDefinition,
    default_run_key,
    register_run,
    resolve_run,
)
from platform_core.alerts import alert_sensors
from platform_core.inbox import MARKER, build_inbox_sensor
from platform_core.io import data_root
from platform_core.keys import InvalidKeyError

if TYPE_CHECKING:  # what define_asset_job returns (its class is not exported)
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )


def settle_seconds() -> float:
    """A config without a marker is complete when unchanged across two ticks and at least this
    old (``OMICS_INBOX_SETTLE_SECONDS``, default 10)."""
    return float(os.environ.get("OMICS_INBOX_SETTLE_SECONDS", "10"))


def inbox_dir(workflow: str) -> Path:
    return data_root() / "omics" / "inbox" / workflow


def build_config_inbox_sensor(
    definition: WorkflowDefinition,
    job: "UnresolvedAssetJobDefinition",
    partitions: dg.DynamicPartitionsDefinition,
) -> dg.SensorDefinition:
    def register(path: Path) -> str:
        resolved = resolve_run(definition.name, path)
        return register_run(definition, default_run_key(resolved, path), resolved)

    return build_inbox_sensor(
        f"{definition.name}_config_inbox",
        job,
        partitions,
        lambda: inbox_dir(definition.name),
        register,
        refused=(ConfigError, InvalidKeyError, OSError),
        kind="file",
        settle_seconds=settle_seconds,
        suffixes=(".yaml", ".yml"),
        after="move",
        description=f"Registers each complete config YAML in <data root>/omics/inbox/"
        f"{definition.name}/ as a run of workflow {definition.name} (its layers: defaults, "
        "the definition, OMICS_* and the file) and requests it. Complete: a "
        f"<name>{MARKER} file beside it, or unchanged across two ticks. A config that does not "
        "validate moves to rejected/ with a .error.txt naming the key, file and line.",
    )


ALERT_SENSORS = alert_sensors("omics")
