"""The inbox sensor (a FASTA lands -> a batch partition and its FULL run) and alerting."""

import json
import os
import shutil
import time
from pathlib import Path

import dagster as dg

from ecod_assets.batches import (
    FASTA_SUFFIXES,
    BatchExistsError,
    default_batch_id,
    digest,
    inbox_dir,
    register_batch,
)
from ecod_assets.jobs import JOB_BY_MODE
from ecod_assets.partitions import ecod_batches
from ecod_assets.science.fasta import FastaError
from platform_core.alerts import alert_sensors
from platform_core.keys import InvalidKeyError
from platform_core.settings import inbox_interval_seconds


def settle_seconds() -> float:
    """A file is complete when its size and mtime are unchanged across two ticks and it is at
    least this old (``ECOD_INBOX_SETTLE_SECONDS``, default 10)."""
    return float(os.environ.get("ECOD_INBOX_SETTLE_SECONDS", "10"))


def _move(path: Path, folder: str) -> Path:
    target = path.parent / folder / path.name
    target.parent.mkdir(exist_ok=True)
    shutil.move(path, target)
    return target


@dg.sensor(
    job=JOB_BY_MODE["full"],
    minimum_interval_seconds=inbox_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers a batch partition for each complete FASTA in <data root>/ecod/inbox "
    "and requests its FULL run, exactly once. Processed files move to inbox/processed/; "
    "invalid ones to inbox/rejected/ with a .error.txt saying why.",
)
def ecod_inbox_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    inbox = inbox_dir()
    seen: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
    pending: dict[str, list[int]] = {}
    new_batches: list[str] = []
    requests: list[dg.RunRequest] = []
    files = (
        sorted(p for p in inbox.glob("*") if p.is_file() and p.suffix in FASTA_SUFFIXES)
        if inbox.is_dir()
        else []
    )
    for path in files:
        if path.name.startswith("."):
            continue
        stat = path.stat()
        signature = [stat.st_size, stat.st_mtime_ns]
        if seen.get(path.name) != signature or time.time() - stat.st_mtime < settle_seconds():
            pending[path.name] = signature  # still being written, or not yet seen twice
            continue
        batch_id = default_batch_id(path)
        try:
            chains = register_batch(path, batch_id)
        except (FastaError, InvalidKeyError, BatchExistsError, OSError) as error:
            rejected = _move(path, "rejected")
            rejected.with_name(rejected.name + ".error.txt").write_text(f"{error}\n")
            context.log.warning(f"rejected {path.name}: {error}")
            continue
        content = digest(_move(path, "processed"))
        context.log.info(f"registered batch {batch_id} ({chains} chains) from {path.name}")
        new_batches.append(batch_id)
        requests.append(dg.RunRequest(partition_key=batch_id, run_key=f"{batch_id}:{content[:16]}"))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[ecod_batches.build_add_request(new_batches)]
        if new_batches
        else [],
        cursor=json.dumps(pending, sort_keys=True),
    )


SENSORS = [ecod_inbox_sensor, *alert_sensors("ecod")]
