"""One config inbox for every workflow (a YAML dropped in ``<data root>/omics/inbox/``: its
``name:`` picks the workflow; a registered run and its run request) and alerting."""

import os
from pathlib import Path

import dagster as dg

from omics_assets.config import ConfigError
from omics_assets.partitions import workflow_partitions
from omics_assets.workflows import default_run_key, register_run, resolve_run, workflow
from platform_core.alerts import alert_sensors
from platform_core.dagster_internals import AssetJob
from platform_core.inbox import MARKER, Registered, build_inbox_sensor
from platform_core.io import data_root
from platform_core.keys import InvalidKeyError


def settle_seconds() -> float:
    """A config without a marker is complete when unchanged across two ticks and at least this
    old (``OMICS_INBOX_SETTLE_SECONDS``, default 10)."""
    return float(os.environ.get("OMICS_INBOX_SETTLE_SECONDS", "10"))


def inbox_dir() -> Path:
    return data_root() / "omics" / "inbox"


def register(path: Path) -> Registered:
    """A dropped config as a run of the workflow its ``name:`` names."""
    resolved = resolve_run(None, path)
    definition = workflow(resolved.config["name"])
    key = register_run(definition, default_run_key(resolved, path), resolved)
    return Registered(key, workflow_partitions(definition), definition.name)


def build_config_inbox_sensor(jobs: list[AssetJob]) -> dg.SensorDefinition:
    """The sensor over every workflow's job (one sensor, not one per workflow: each is a
    daemon evaluation every interval)."""
    return build_inbox_sensor(
        "omics_config_inbox",
        jobs,
        None,
        inbox_dir,
        register,
        refused=(ConfigError, InvalidKeyError, OSError),
        kind="file",
        settle_seconds=settle_seconds,
        suffixes=(".yaml", ".yml"),
        after="move",
        description="Registers each complete config YAML in <data root>/omics/inbox/ as a run "
        "of the workflow its name: names (its layers: defaults, the definition, OMICS_* and "
        f"the file) and requests it. Complete: a <name>{MARKER} file beside it, or unchanged "
        "across two ticks. A config that does not validate moves to rejected/ with a "
        ".error.txt naming the key, file and line.",
    )


ALERT_SENSORS = alert_sensors("omics")
