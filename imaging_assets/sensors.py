"""The plate inbox sensor (a complete plate folder -> a plate partition and its run) and
alerting."""

import os

from imaging_assets.jobs import plate_job
from imaging_assets.partitions import plates
from imaging_assets.plates import PlateExistsError, inbox_dir, register_plate
from platform_core.alerts import alert_sensors
from platform_core.inbox import MARKER, build_inbox_sensor
from platform_core.keys import InvalidKeyError


def settle_seconds() -> float:
    """A plate folder without the marker file is complete when its files (names, sizes,
    mtimes) are unchanged across two ticks and the newest is at least this old
    (``IMAGING_INBOX_SETTLE_SECONDS``, default 30)."""
    return float(os.environ.get("IMAGING_INBOX_SETTLE_SECONDS", "30"))


plate_inbox_sensor = build_inbox_sensor(
    "plate_inbox_sensor",
    plate_job,
    plates,
    inbox_dir,
    register_plate,
    refused=(InvalidKeyError, PlateExistsError, OSError),
    kind="folder",
    settle_seconds=settle_seconds,
    after="keep",
    description="Registers each complete plate folder in <data root>/imaging/inbox as a plate "
    f"partition and requests its run, once per content. Complete: a {MARKER} file in the "
    "folder, or files unchanged across two ticks (never a half-copied plate). A plate folder "
    "is read where it lies; one that cannot be registered moves to inbox/rejected/ with a "
    ".error.txt saying why.",
)

SENSORS = [plate_inbox_sensor, *alert_sensors("imaging")]
