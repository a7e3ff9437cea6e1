"""The study inbox sensor (a complete study folder -> a study partition and its run) and
alerting."""

import os

from cardio_assets.jobs import study_job
from cardio_assets.partitions import studies
from cardio_assets.studies import STUDIES
from platform_core.alerts import alert_sensors
from platform_core.inbox import MARKER, build_inbox_sensor
from platform_core.keys import InvalidKeyError
from platform_core.registry import RegisteredElsewhereError


def settle_seconds() -> float:
    """A study folder without the marker is complete when its files are unchanged across two
    ticks and the newest is at least this old (``CARDIO_INBOX_SETTLE_SECONDS``, default 30)."""
    return float(os.environ.get("CARDIO_INBOX_SETTLE_SECONDS", "30"))


study_inbox_sensor = build_inbox_sensor(
    "study_inbox_sensor",
    study_job,
    studies,
    STUDIES.inbox_dir,
    STUDIES.register,
    refused=(InvalidKeyError, RegisteredElsewhereError, OSError),
    kind="folder",
    settle_seconds=settle_seconds,
    after="adopt",
    description="Moves each complete study folder in <data root>/cardio/inbox to "
    "inbox/processed/, registers it there as a study partition and requests its run. "
    f"Complete: a {MARKER} file in the folder, or files unchanged across two ticks. A folder "
    "that cannot be registered, or whose name was received before, moves to inbox/rejected/ "
    "with a .error.txt saying why. A tick looks only at what is new.",
)

SENSORS = [study_inbox_sensor, *alert_sensors("cardio")]
