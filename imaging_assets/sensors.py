"""The plate inbox sensor (a complete plate folder -> a plate partition and its run) and
run-failure alerts."""

import json
import os
import time
from pathlib import Path

import dagster as dg

from imaging_assets.jobs import plate_job
from imaging_assets.plates import COMPLETE_MARKER, PlateExistsError, inbox_dir, register_plate
from imaging_assets.resources import plates
from platform_core.alerts import alert_sensors
from platform_core.checkpoint import fingerprint
from platform_core.keys import InvalidKeyError
from platform_core.settings import inbox_interval_seconds


def settle_seconds() -> float:
    """A plate folder without the marker file is complete when its files (names, sizes,
    mtimes) are unchanged across two ticks and the newest is at least this old
    (``IMAGING_INBOX_SETTLE_SECONDS``, default 30)."""
    return float(os.environ.get("IMAGING_INBOX_SETTLE_SECONDS", "30"))


def folder_signature(folder: Path) -> tuple[str, float]:
    """(hash of every file's relative path, size and mtime; newest mtime) of a folder."""
    entries, newest = [], 0.0
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            entries.append([str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns])
            newest = max(newest, stat.st_mtime)
    return fingerprint(entries), newest


@dg.sensor(
    job=plate_job,
    minimum_interval_seconds=inbox_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers each complete plate folder in <data root>/imaging/inbox as a plate "
    f"partition and requests its run, once per content. Complete: a {COMPLETE_MARKER} file in "
    "the folder, or files unchanged across two ticks (never a half-copied plate). The plate "
    "folder is only read.",
)
def plate_inbox_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    inbox = inbox_dir()
    state: dict = json.loads(context.cursor) if context.cursor else {}
    seen: dict[str, str] = state.get("pending", {})
    done: dict[str, str] = state.get("done", {})
    pending: dict[str, str] = {}
    new_plates, requests = [], []
    folders = sorted(p for p in inbox.iterdir() if p.is_dir()) if inbox.is_dir() else []
    for folder in folders:
        if folder.name.startswith("."):
            continue
        signature, newest = folder_signature(folder)
        if done.get(folder.name) == signature:
            continue
        marked = (folder / COMPLETE_MARKER).exists()
        settled = seen.get(folder.name) == signature and time.time() - newest >= settle_seconds()
        if not (marked or settled):
            pending[folder.name] = signature
            continue
        done[folder.name] = signature
        try:
            plate = register_plate(folder)
        except (InvalidKeyError, PlateExistsError, OSError) as error:
            context.log.warning(f"plate folder {folder.name!r} not registered: {error}")
            continue
        context.log.info(f"registered plate {plate} from {folder}")
        new_plates.append(plate)
        requests.append(dg.RunRequest(partition_key=plate, run_key=f"{plate}:{signature[:16]}"))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[plates.build_add_request(new_plates)] if new_plates else [],
        cursor=json.dumps({"pending": pending, "done": done}, sort_keys=True),
    )


SENSORS = [plate_inbox_sensor, *alert_sensors("imaging")]
