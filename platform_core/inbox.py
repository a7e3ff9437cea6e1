"""One inbox sensor for every location: a complete file or folder dropped into the location's
inbox (the storage owner's ``<data root>/<location>/inbox/``) becomes a partition and one run of
its content.

Complete means a marker (``<name>.complete`` beside a file, ``.complete`` inside a folder) or
an unchanged signature (names, sizes, mtimes) across two ticks with the newest change at least
the settle age old: never a half-copied item. Each item is registered by the location's
``register`` function; the partition is added and one run requested, with a run key of the
content, so the same content never runs twice (also across daemon restarts: the cursor and the
run keys are in the instance). An item ``register`` refuses moves to ``rejected/`` with a
``<name>.error.txt`` saying why.
"""

import hashlib
import json
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dagster as dg

from platform_core import platform_config
from platform_core.checkpoint import fingerprint
from platform_core.dagster_internals import AssetJob
from platform_core.datastore import DataStore

MARKER = ".complete"
SETTLE_SECONDS = {"file": 10.0, "folder": 30.0}  # a copy into the inbox is done by then
REJECTED = "rejected"
PROCESSED = "processed"


def inbox_interval_seconds() -> int:
    """How often the inbox sensors look: ``PLATFORM_INBOX_INTERVAL_SECONDS``, else the
    platform config's ``inbox_interval_seconds``, else 30."""
    if os.environ.get("PLATFORM_INBOX_INTERVAL_SECONDS"):
        return int(os.environ["PLATFORM_INBOX_INTERVAL_SECONDS"])
    configured = platform_config.load().model.inbox_interval_seconds
    return 30 if configured is None else configured


def signature(path: Path) -> tuple[str, float]:
    """(hash of every file's relative path, size and mtime; newest mtime) of a file or folder.
    Symbolic links are left out: an inbox item is what was copied in, nothing it points to."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    entries, newest = [], 0.0
    for file in files:
        if file.is_symlink():
            continue
        stat = file.stat()
        name = str(file.relative_to(path)) if file != path else ""
        entries.append([name, stat.st_size, stat.st_mtime_ns])
        newest = max(newest, stat.st_mtime)
    return fingerprint(entries), newest


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _is_marked(path: Path) -> bool:
    marker = path / MARKER if path.is_dir() else path.with_name(path.name + MARKER)
    return marker.exists()


def _move(path: Path, destination: Path) -> Path:
    target = destination / path.name
    target.parent.mkdir(exist_ok=True)
    if target.exists():  # an earlier item of the same name: keep both
        target = target.with_name(f"{path.name}.{int(time.time())}")
    shutil.move(path, target)
    return target


class _Refused(Exception):
    """An item the inbox itself refuses (a name received before)."""


@dataclass(frozen=True)
class Registered:
    """What ``register`` returns for an item that one of several jobs runs: its partition
    key, the dynamic partitions it belongs to, and the job that runs it."""

    key: str
    partitions_def: dg.DynamicPartitionsDefinition
    job_name: str


@dataclass(frozen=True)
class Inbox:
    """What a location's inbox takes and what becomes of it.

    - ``sensor``: the sensor's name (the instance keeps its cursor under it: never rename).
    - ``register(store, path)``: validates and registers an item (the same call as the CLI's
      ``submit``), returns its partition key; or, for a sensor over several jobs, a
      ``Registered`` naming its partitions and job. An exception of a ``refused`` type
      rejects the item with its message.
    - ``kind``: items are files (with one of ``suffixes``) or folders. An unmarked item is
      complete once unchanged across two ticks and its newest file is at least
      ``<LOCATION>_INBOX_SETTLE_SECONDS`` old (default: 10 s for a file, 30 s for a folder).
    - ``after``: ``move`` processed items to ``processed/`` once registered (``register``
      copies what it needs); ``keep`` them in place (a plate folder is read where it lies;
      the cursor remembers its signature, and every tick looks at every item ever dropped);
      ``adopt``: move an item to ``processed/`` first and register it there, where it is then
      read (a tick costs what is new; an item whose name was received before is rejected).
    """

    sensor: str
    register: Callable[[DataStore, Path], "str | Registered"]
    refused: tuple[type[Exception], ...]
    kind: Literal["file", "folder"]
    suffixes: tuple[str, ...] = ()
    after: Literal["move", "keep", "adopt"] = "keep"
    description: str = ""

    def settle_seconds(self, location: str, configured: float | None = None) -> float:
        """``<LOCATION>_INBOX_SETTLE_SECONDS``, else ``configured`` (the platform config's
        ``locations.<location>.inbox_settle_seconds``, read when the sensor is built), else
        the kind's default."""
        variable = os.environ.get(f"{location.upper()}_INBOX_SETTLE_SECONDS")
        if variable:
            return float(variable)
        return SETTLE_SECONDS[self.kind] if configured is None else configured


def build_inbox_sensor(
    inbox: Inbox,
    location: str,
    jobs: Sequence[AssetJob],
    partitions_def: dg.DynamicPartitionsDefinition | None,
) -> dg.SensorDefinition:
    """The sensor (RUNNING by default) of ``location``'s ``inbox`` over ``jobs``; a registered
    key is a partition of ``partitions_def`` run by the first job, unless ``register`` names
    both."""
    jobs = list(jobs)
    kind, after, register = inbox.kind, inbox.after, inbox.register
    configured = platform_config.load().section(location).get("inbox_settle_seconds")

    def settle_seconds() -> float:  # the variable is read at each tick, the file once
        return inbox.settle_seconds(location, configured)

    @dg.sensor(
        name=inbox.sensor,
        jobs=jobs,
        minimum_interval_seconds=inbox_interval_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=inbox.description,
    )
    def inbox_sensor(context: dg.SensorEvaluationContext, storage: DataStore) -> dg.SensorResult:
        state: dict = json.loads(context.cursor) if context.cursor else {}
        seen: dict[str, str] = state.get("pending", {})
        done: dict[str, str] = state.get("done", {})
        pending: dict[str, str] = {}
        added: dict[str, list[str]] = defaultdict(list)  # partitions def name -> keys
        definitions: dict[str, dg.DynamicPartitionsDefinition] = {}
        requests = []
        folder = storage.inbox()
        items = sorted(folder.iterdir()) if folder.is_dir() else []
        items = [p for p in items if p.name not in (REJECTED, PROCESSED)]
        for path in items:
            wanted = path.is_dir() if kind == "folder" else path.is_file()
            if path.name.startswith(".") or path.name.endswith(MARKER) or not wanted:
                continue
            if kind == "file" and inbox.suffixes and path.suffix not in inbox.suffixes:
                continue
            current, newest = signature(path)
            if done.get(path.name) == current:
                continue
            settled = seen.get(path.name) == current and time.time() - newest >= settle_seconds()
            if not (_is_marked(path) or settled):
                pending[path.name] = current  # still being written, or not yet seen twice
                continue
            try:
                if path.is_symlink():  # what it points to was not dropped here
                    raise _Refused(
                        f"{path.name!r} is a symbolic link to {path.resolve()}; an inbox takes "
                        "the files and folders copied into it, never links"
                    )
                if after == "adopt":
                    if (folder / PROCESSED / path.name).exists():
                        raise _Refused(
                            f"{path.name!r} was received before ({PROCESSED}/{path.name}); "
                            "rename it to send it as a new item"
                        )
                    path = _move(path, folder / PROCESSED)
                registered = register(storage, path)
            except (_Refused, *inbox.refused) as error:
                rejected = _move(path, folder / REJECTED)
                rejected.with_name(rejected.name + ".error.txt").write_text(f"{error}\n")
                context.log.warning(f"rejected {path.name}: {error}")
                continue
            # what the run key names: a file's bytes; a folder's signature (gigabytes of tiles)
            content = current if path.is_dir() else file_digest(path)
            if after == "move":
                _move(path, folder / PROCESSED)
            elif after == "keep":
                done[path.name] = current
            if not isinstance(registered, Registered):
                assert partitions_def is not None, "a key alone needs the sensor's partitions"
                registered = Registered(registered, partitions_def, jobs[0].name)
            key = registered.key
            context.log.info(f"registered partition {key} from {path.name}")
            added[registered.partitions_def.name].append(key)
            definitions[registered.partitions_def.name] = registered.partitions_def
            job_name = registered.job_name if len(jobs) > 1 else None
            run_key = f"{job_name + ':' if job_name else ''}{key}:{content[:16]}"
            requests.append(dg.RunRequest(partition_key=key, run_key=run_key, job_name=job_name))
        present = {p.name for p in items}
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[
                definitions[name].build_add_request(keys) for name, keys in added.items()
            ],
            cursor=json.dumps(
                {"pending": pending, "done": {k: v for k, v in done.items() if k in present}},
                sort_keys=True,
            ),
        )

    return inbox_sensor
