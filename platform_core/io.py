"""Atomic, pickle-free storage of asset values, at the paths the storage owner gives
(``platform_core.datastore``: ``<root>/<location>/<asset>/<partition>.<ext>``).
DataFrames are stored as parquet, or as Arrow IPC files (``frame_format="arrow"``) where
partitions are many and small, dicts/lists as JSON. Every write goes to a temporary file in
the same directory followed by ``os.replace``, so a killed run never leaves a half-written file
that a later run would read as complete.

A run that materializes several partitions at once (single-run backfill) returns a
``dict[partition_key, value]``; each entry is written to its own partition file. An input that
spans several partitions loads the materialized ones (DataFrames concatenated in partition
order) and logs the missing ones: the consuming asset checks that what it needs is there.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from platform_core import platform_config
from platform_core.datastore import DataStore
from platform_core.platform_config import RUN_TAG_DIGEST, RUN_TAG_FILE, RUN_TAG_RECORDED

FrameFormat = Literal["parquet", "arrow"]
OPTIONAL = "optional"  # input metadata: load None when the upstream partition is missing
FRAME_FORMATS: tuple[FrameFormat, ...] = ("parquet", "arrow")  # also the file extensions


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` via ``write(tmp)`` then ``os.replace``; the temp file never survives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes | pa.Buffer) -> None:
    """``atomic_write`` for bytes already in memory, written through the temp file's own
    descriptor (one open per file: a single-run backfill writes thousands). The directory
    must exist."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(memoryview(data))
        os.replace(tmp_name, path)
    except BaseException:
        os.unlink(tmp_name)
        raise


def parquet_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue()


def frame_bytes(table: pa.Table, frame_format: FrameFormat) -> pa.Buffer:
    """``table`` as a parquet file or an Arrow IPC file (Feather v2: pandas.read_feather,
    polars and DuckDB open it; for a 100-row frame it is ~3x cheaper to write and read)."""
    if frame_format == "parquet":
        return parquet_bytes(table)
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


class FrameSlices(Mapping[str, pd.DataFrame]):
    """Partition key -> consecutive rows of one frame, given as each key's stop row in key
    order: what a multi-partition run returns when its partitions are slices of one table (a
    day's bars of a multi-year fetch). It reads like the usual dict of frames; the IO manager
    converts the frame to Arrow once and slices it, with no frame built per partition."""

    def __init__(self, frame: pd.DataFrame, stops: Mapping[str, int]) -> None:
        starts = [0, *list(stops.values())[:-1]]
        self.frame = frame
        self.rows = {k: (a, b) for (k, b), a in zip(stops.items(), starts, strict=True)}

    def __getitem__(self, key: str) -> pd.DataFrame:
        start, stop = self.rows[key]
        return self.frame.iloc[start:stop].reset_index(drop=True)

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def tables(self, keys: Sequence[str]) -> list[pa.Table]:
        """The Arrow table of each of ``keys``, slices of one conversion."""
        table = pa.Table.from_pandas(self.frame, preserve_index=False)
        return [
            table.slice(start, stop - start) for start, stop in map(self.rows.__getitem__, keys)
        ]


def frames_to_tables(frames: Sequence[pd.DataFrame]) -> list[pa.Table]:
    """Each frame as an Arrow table (no index). Frames with the same columns and dtypes, as a
    single-run backfill's partitions are, are converted in one call and sliced without copying:
    the pandas -> Arrow conversion costs ~1 ms per call however small the frame."""
    first = frames[0]
    if len(frames) > 1 and all(
        f.columns.equals(first.columns) and f.dtypes.equals(first.dtypes) for f in frames[1:]
    ):
        table = pa.Table.from_pandas(pd.concat(frames, ignore_index=True), preserve_index=False)
        ends = np.cumsum([len(f) for f in frames])
        return [table.slice(end - len(f), len(f)) for f, end in zip(frames, ends, strict=True)]
    return [pa.Table.from_pandas(f, preserve_index=False) for f in frames]


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(value, indent=1, sort_keys=True, default=str).encode())


def write_array(path: Path, array: np.ndarray) -> None:
    """An array as ``.npy`` (numeric or boolean dtypes only: never pickled objects),
    atomically."""
    if array.dtype.hasobject:
        raise TypeError(f"{path.name}: object arrays are not stored (they would need pickle)")

    def save(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.save(handle, array, allow_pickle=False)

    atomic_write(path, save)


def read_array(path: Path) -> np.ndarray:
    """An array written by ``write_array`` (pickle refused)."""
    return np.load(path, allow_pickle=False)


class _TableCache:
    """Parquet tables read recently, up to ``limit`` bytes, keyed by path, inode, size and
    modification time (an atomic replace is a new inode): the assets of one run that read the
    same upstream partitions (the weekly chain's history windows) read each file once."""

    def __init__(self, limit: int) -> None:
        self.limit, self.size = limit, 0
        self.tables: OrderedDict[tuple[str, int, int, int], pa.Table] = OrderedDict()
        self.lock = threading.Lock()

    @staticmethod
    def _key(path: Path) -> tuple[str, int, int, int]:
        stat = os.stat(path)
        return (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def read(self, path: Path) -> pa.Table:
        key = self._key(path)
        with self.lock:
            if key in self.tables:
                self.tables.move_to_end(key)
                return self.tables[key]
        if path.suffix == ".arrow":
            with pa.OSFile(str(path)) as source:
                table = ipc.open_file(source).read_all()
        else:
            with pq.ParquetFile(path) as file:  # about half the cost of pq.read_table here
                table = file.read()
        self.put(path, table, key)
        return table

    def put(self, path: Path, table: pa.Table, key: tuple | None = None) -> None:
        """Remember ``table`` as the content of ``path`` (just read, or just written as an
        Arrow IPC file, which reads back as the same table: the checks and downstream steps
        of the run that wrote it then read no file)."""
        key = key or self._key(path)
        with self.lock:
            if key not in self.tables:
                self.tables[key] = table
                self.size += table.nbytes
            while self.size > self.limit:
                self.size -= self.tables.popitem(last=False)[1].nbytes


def _cache_limit() -> int:
    """Bytes of tables a process keeps: 1 GiB, or a sixteenth of the memory if less. A
    weekly range run's scenario paths alone are ~220 MB; a smaller cache evicts them before
    the run's later steps read them back."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return min(2**30, memory // 16)


_TABLES = _TableCache(limit=_cache_limit())


def read_table(path: Path) -> pa.Table:
    """One parquet or Arrow IPC file, from the process's table cache when unchanged since last
    read."""
    return _TABLES.read(path)


def read_frames(paths: Sequence[Path]) -> pd.DataFrame:
    """Read frame files one by one and concatenate them in the given order."""
    if not paths:
        return pd.DataFrame()
    tables = [read_table(p) for p in paths]
    non_empty = [t for t in tables if t.num_rows] or tables[:1]
    return pa.concat_tables(non_empty, promote_options="permissive").to_pandas()


def _current_tags(instance: dg.DagsterInstance, run_id: str) -> Mapping[str, str]:
    run = instance.get_run_by_id(run_id)
    return run.tags if run else {}


class AssetStorageIOManager(dg.ConfigurableIOManager):
    """Parquet (or Arrow IPC) for DataFrames, JSON for records; one file per partition where
    ``store`` puts it; atomic; no pickle."""

    store: DataStore
    frame_format: FrameFormat = "parquet"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Record the platform config on the run, once: the tags ``platform/config_digest``
        and ``platform/config_file``, and one log line with what the location takes from it
        (``LoadedConfig.record``; the run's own config is Dagster's run config). Read here,
        in the run's process, from ``$PLATFORM_CONFIG``, so run config cannot forge it.
        Another step process of the same run (Celery, multiprocess) finds the tags and adds
        nothing; a re-execution (``resume``, a run retry) records its own."""
        run, instance = context.dagster_run, context.instance
        if run is None or instance is None:
            return
        recorded_by = (run.tags | _current_tags(instance, run.run_id)).get(RUN_TAG_RECORDED)
        if recorded_by == run.run_id:  # recorded (a re-execution copies its parent's tags)
            return
        record = platform_config.load().record(self.store.location)
        tags = {RUN_TAG_DIGEST: record["digest"], RUN_TAG_FILE: record["file"] or "(defaults)"}
        instance.add_run_tags(run.run_id, {**tags, RUN_TAG_RECORDED: run.run_id})
        shown = json.dumps(record, sort_keys=True)
        context.log.info(f"platform config {record['digest']} from {tags[RUN_TAG_FILE]}: {shown}")

    def asset_dir(self, asset_key: dg.AssetKey) -> Path:
        return self.store.asset_dir(asset_key)

    def path_for(self, asset_key: dg.AssetKey, partition: str | None, ext: str) -> Path:
        return self.store.value_path(asset_key, partition, ext)

    def _extensions(self) -> tuple[str, ...]:
        """The extensions a partition's file may have, in the order to look: this manager's
        frame format first (it wrote the newest), then the other one, then JSON."""
        return (self.frame_format, *(f for f in FRAME_FORMATS if f != self.frame_format), "json")

    def existing_path(self, asset_key: dg.AssetKey, partition: str | None) -> Path | None:
        """The partition's file, or None."""
        paths = (self.path_for(asset_key, partition, ext) for ext in self._extensions())
        return next((path for path in paths if path.exists()), None)

    def existing_paths(
        self, asset_key: dg.AssetKey, partitions: Sequence[str | None]
    ) -> dict[str | None, Path | None]:
        """Each partition's file (None if absent), from one listing of the asset's directory:
        a range run's input has thousands of partitions."""
        directory = self.asset_dir(asset_key)
        try:
            present = set(os.listdir(directory))
        except FileNotFoundError:
            present = set()
        found: dict[str | None, Path | None] = {}
        extensions = self._extensions()
        for partition in partitions:
            files = (self.store.value_name(partition, ext) for ext in extensions)
            file = next((f for f in files if f in present), None)
            found[partition] = directory / file if file else None
        return found

    def read_partition(self, asset_key: dg.AssetKey, partition: str | None) -> Any | None:
        """The stored value of one partition, or None if it was never materialized."""
        if self.existing_path(asset_key, partition) is None:
            return None
        return self._load_one(asset_key, partition)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        keys = context.asset_partition_keys if context.has_asset_partitions else [None]
        if len(keys) > 1 and (not isinstance(obj, Mapping) or set(obj) != set(keys)):
            raise dg.Failure(
                f"{context.asset_key.to_user_string()}: a multi-partition run must return a "
                f"dict keyed by exactly its {len(keys)} partition keys"
            )
        if isinstance(obj, FrameSlices):
            values: list[Any] = obj.tables(keys)
        else:  # frames become Arrow tables (one conversion for alike frames), records stay
            values = [obj[k] for k in keys] if len(keys) > 1 else [obj]
            frames = [i for i, v in enumerate(values) if isinstance(v, pd.DataFrame)]
            tables = frames_to_tables([values[i] for i in frames]) if frames else []
            for i, table in zip(frames, tables, strict=True):
                values[i] = table
        directory = self.asset_dir(context.asset_key)
        directory.mkdir(parents=True, exist_ok=True)
        for key, value in zip(keys, values, strict=True):
            ext = self.frame_format if isinstance(value, pa.Table) else "json"
            path = directory / self.store.value_name(key, ext)
            if ext == "json":
                write_json(path, value)
            else:
                atomic_write_bytes(path, frame_bytes(value, ext))
                if ext == "arrow":
                    _TABLES.put(path, value)
            for stale in (f for f in (*FRAME_FORMATS, "json") if f != ext):
                path.with_suffix(f".{stale}").unlink(missing_ok=True)  # another format's
        meta: dict[str, Any] = {"path": dg.MetadataValue.path(str(directory))}
        rows = [v.num_rows for v in values if isinstance(v, pa.Table)]
        # Dagster copies output metadata to every partition of a range run, so a range run
        # states its totals under names of its own, not as each partition's row count.
        if rows and len(keys) == 1:
            meta["dagster/row_count"] = rows[0]
        elif rows:
            meta |= {"run_row_count": sum(rows), "run_partition_count": len(keys)}
        context.add_output_metadata(meta)

    def _load_one(self, asset_key: dg.AssetKey, partition: str | None) -> Any:
        path = self.existing_path(asset_key, partition)
        if path is None:
            where = f" partition {partition}" if partition else ""
            raise dg.Failure(
                f"{asset_key.to_user_string()}{where} has not been materialized "
                f"(no file under {self.asset_dir(asset_key)}); materialize it first"
            )
        return _read_value(path)

    def load_input(self, context: dg.InputContext) -> Any:
        """The upstream value; for an input declared ``metadata={OPTIONAL: True}`` (evidence
        a step uses when it exists), None when that partition was never materialized."""
        asset_key = context.asset_key
        keys = context.asset_partition_keys if context.has_asset_partitions else [None]
        if len(keys) == 1:
            optional = (context.definition_metadata or {}).get(OPTIONAL)
            if optional and self.existing_path(asset_key, keys[0]) is None:
                return None
            return self._load_one(asset_key, keys[0])
        paths = self.existing_paths(asset_key, keys)
        missing = [k for k, p in paths.items() if p is None]
        if missing:
            # A window of upstream partitions (history warm-up) may start before the first
            # materialized one; the consuming asset checks that the partitions it needs exist.
            context.log.warning(
                f"{asset_key.to_user_string()}: {len(missing)} of {len(keys)} upstream "
                f"partitions are not materialized (first: {missing[0]}, last: {missing[-1]})"
            )
        present = [p for p in paths.values() if p is not None]
        if present and all(p.suffix != ".json" for p in present):
            return read_frames(present)
        return {k: _read_value(p) for k, p in paths.items() if p is not None}


def _read_value(path: Path) -> Any:
    """A stored partition: a frame (parquet, Arrow IPC) or a JSON record."""
    if path.suffix != ".json":
        return read_table(path).to_pandas()
    return json.loads(path.read_text())


def stored_partition(
    context: dg.AssetExecutionContext, asset_key: dg.AssetKey, partition: str | None
) -> Any | None:
    """An asset partition as stored earlier (None if absent), read through the run's IO
    manager, the one that wrote it: a step reuses or falls back on earlier results without
    knowing where they live."""
    storage: AssetStorageIOManager = context.resources.io_manager
    return storage.read_partition(asset_key, partition)
