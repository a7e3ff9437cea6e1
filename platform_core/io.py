"""Atomic, pickle-free storage of asset values under one data root.

Layout: ``<root>/<location>/<asset>/<partition>.<ext>`` (``__all__`` for unpartitioned assets).
DataFrames are stored as parquet, dicts/lists as JSON. Every write goes to a temporary file in
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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from platform_core.keys import validate_partition_key

DATA_ROOT_ENV = "PLATFORM_DATA_ROOT"
DEFAULT_DATA_ROOT = ".data"
UNPARTITIONED = "__all__"


def data_root() -> Path:
    """The data root: ``$PLATFORM_DATA_ROOT`` or ``./.data`` (gitignored)."""
    return Path(os.environ.get(DATA_ROOT_ENV, DEFAULT_DATA_ROOT)).resolve()


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


def write_frame(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, parquet_bytes(frames_to_tables([frame])[0]))


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

    def read(self, path: Path) -> pa.Table:
        stat = os.stat(path)
        key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with self.lock:
            if key in self.tables:
                self.tables.move_to_end(key)
                return self.tables[key]
        with pq.ParquetFile(path) as file:  # about half the cost of pq.read_table here
            table = file.read()
        with self.lock:
            if key not in self.tables:
                self.tables[key] = table
                self.size += table.nbytes
            while self.size > self.limit:
                self.size -= self.tables.popitem(last=False)[1].nbytes
        return table


_TABLES = _TableCache(limit=256 * 2**20)


def read_table(path: Path) -> pa.Table:
    """One parquet file, from the process's table cache when unchanged since last read."""
    return _TABLES.read(path)


def read_frames(paths: Sequence[Path]) -> pd.DataFrame:
    """Read parquet files one by one and concatenate them in the given order."""
    if not paths:
        return pd.DataFrame()
    tables = [read_table(p) for p in paths]
    non_empty = [t for t in tables if t.num_rows] or tables[:1]
    return pa.concat_tables(non_empty, promote_options="permissive").to_pandas()


class AssetStorageIOManager(dg.ConfigurableIOManager):
    """Parquet for DataFrames, JSON for records; one file per partition; atomic; no pickle."""

    root: str | None = None
    location: str

    def _root(self) -> Path:
        return Path(self.root).resolve() if self.root else data_root()

    def asset_dir(self, asset_key: dg.AssetKey) -> Path:
        return self._root() / self.location / "/".join(asset_key.path)

    def path_for(self, asset_key: dg.AssetKey, partition: str | None, ext: str) -> Path:
        name = validate_partition_key(partition) if partition else UNPARTITIONED
        return self.asset_dir(asset_key) / f"{name}.{ext}"

    def existing_path(self, asset_key: dg.AssetKey, partition: str | None) -> Path | None:
        for ext in ("parquet", "json"):
            path = self.path_for(asset_key, partition, ext)
            if path.exists():
                return path
        return None

    def read_partition(self, asset_key: dg.AssetKey, partition: str | None) -> Any | None:
        """The stored value of one partition, or None if it was never materialized."""
        if self.existing_path(asset_key, partition) is None:
            return None
        return self._load_one(asset_key, partition)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        keys = context.asset_partition_keys if context.has_asset_partitions else [None]
        if len(keys) > 1:
            if not isinstance(obj, Mapping) or set(obj) != set(keys):
                raise dg.Failure(
                    f"{context.asset_key.to_user_string()}: a multi-partition run must return a "
                    f"dict keyed by exactly its {len(keys)} partition keys"
                )
            values = [obj[k] for k in keys]
        else:
            values = [obj]
        directory = self.asset_dir(context.asset_key)
        names = [validate_partition_key(k) if k else UNPARTITIONED for k in keys]
        if all(isinstance(v, pd.DataFrame) for v in values):
            directory.mkdir(parents=True, exist_ok=True)
            for name, table in zip(names, frames_to_tables(values), strict=True):
                atomic_write_bytes(directory / f"{name}.parquet", parquet_bytes(table))
        else:
            for name, value in zip(names, values, strict=True):
                if isinstance(value, pd.DataFrame):
                    write_frame(directory / f"{name}.parquet", value)
                else:
                    write_json(directory / f"{name}.json", value)
        meta: dict[str, Any] = {"path": dg.MetadataValue.path(str(directory))}
        if isinstance(values[0], pd.DataFrame):
            meta["dagster/row_count"] = sum(len(v) for v in values if isinstance(v, pd.DataFrame))
        context.add_output_metadata(meta)

    def _load_one(self, asset_key: dg.AssetKey, partition: str | None) -> Any:
        path = self.existing_path(asset_key, partition)
        if path is None:
            where = f" partition {partition}" if partition else ""
            raise dg.Failure(
                f"{asset_key.to_user_string()}{where} has not been materialized "
                f"(no file under {self.asset_dir(asset_key)}); materialize it first"
            )
        if path.suffix == ".parquet":
            return read_table(path).to_pandas()
        return json.loads(path.read_text())

    def load_input(self, context: dg.InputContext) -> Any:
        asset_key = context.asset_key
        if not context.has_asset_partitions:
            return self._load_one(asset_key, None)
        keys = context.asset_partition_keys
        if len(keys) == 1:
            return self._load_one(asset_key, keys[0])
        paths = {k: self.existing_path(asset_key, k) for k in keys}
        missing = [k for k, p in paths.items() if p is None]
        if missing:
            # A window of upstream partitions (history warm-up) may start before the first
            # materialized one; the consuming asset checks that the partitions it needs exist.
            context.log.warning(
                f"{asset_key.to_user_string()}: {len(missing)} of {len(keys)} upstream "
                f"partitions are not materialized (first: {missing[0]}, last: {missing[-1]})"
            )
        present = [p for p in paths.values() if p is not None]
        if present and all(p.suffix == ".parquet" for p in present):
            return read_frames(present)
        return {k: self._load_one(asset_key, k) for k, p in paths.items() if p is not None}


def stored_partition(
    context: dg.AssetExecutionContext, asset_key: dg.AssetKey, partition: str | None
) -> Any | None:
    """An asset partition as stored earlier (None if absent), read through the run's IO
    manager, the one that wrote it: a step reuses or falls back on earlier results without
    knowing where they live."""
    storage: AssetStorageIOManager = context.resources.io_manager
    return storage.read_partition(asset_key, partition)
