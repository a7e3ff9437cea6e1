"""The inbox sensor (a FASTA lands -> a batch partition and its FULL run) and alerting."""

import os
from pathlib import Path

from ecod_assets.batches import (
    FASTA_SUFFIXES,
    BatchExistsError,
    default_batch_id,
    inbox_dir,
    register_batch,
)
from ecod_assets.jobs import JOB_BY_MODE
from ecod_assets.partitions import ecod_batches
from ecod_assets.science.fasta import FastaError
from platform_core.alerts import alert_sensors
from platform_core.inbox import build_inbox_sensor
from platform_core.keys import InvalidKeyError


def settle_seconds() -> float:
    """A file is complete when its size and mtime are unchanged across two ticks and it is at
    least this old (``ECOD_INBOX_SETTLE_SECONDS``, default 10), or has a marker beside it."""
    return float(os.environ.get("ECOD_INBOX_SETTLE_SECONDS", "10"))


def _register(fasta: Path) -> str:
    batch_id = default_batch_id(fasta)
    register_batch(fasta, batch_id)
    return batch_id


ecod_inbox_sensor = build_inbox_sensor(
    "ecod_inbox_sensor",
    JOB_BY_MODE["full"],
    ecod_batches,
    inbox_dir,
    _register,
    refused=(FastaError, InvalidKeyError, BatchExistsError, OSError),
    kind="file",
    settle_seconds=settle_seconds,
    suffixes=FASTA_SUFFIXES,
    after="move",
    description="Registers a batch partition for each complete FASTA in <data root>/ecod/inbox "
    "(unchanged across two ticks, or with a <name>.complete marker beside it) and requests its "
    "FULL run, once per content. Processed files move to inbox/processed/; invalid ones to "
    "inbox/rejected/ with a .error.txt saying why.",
)

SENSORS = [ecod_inbox_sensor, *alert_sensors("ecod")]
