"""Embedded SQLite instance storage that writes Dagster's event batches in one transaction.

A single-run backfill over N partitions emits 2N asset events per asset (planned, then
materialized). Dagster groups them into batches when ``DAGSTER_EVENT_BATCH_SIZE`` is set, but
its SQLite event log still stores a batch event by event: fresh connections and fsync'ed
commits per event, ~15-25 ms each. Here a batch costs one transaction on the run's shard and
one on the cross-run index shard and writes the same rows as the stock storage (the asset-key
row, which only keeps the latest event, is written once per key instead of once per event).

The event log also keeps one SQLAlchemy engine per shard (not one per query), remembers which
tables exist, and runs SQLite in WAL mode with ``synchronous=NORMAL``: a commit no longer waits
for an fsync. That keeps the database consistent on a crash or power loss; a power loss can
drop the last commits (an application crash cannot). For production use Postgres (deploy/).

Kept by measurement (docs/benchmarks.md): the 5-year Tetra backfill takes 5.6x as long on the
stock SQLite storage with Dagster's own event batching. It overrides private Dagster members
(imported through the fence, ``platform_core.dagster_internals``), so on every Dagster upgrade
run ``pytest tests/platform_core/test_storage.py`` (it compares every row and column of every
event-log table after a real partitioned backfill with the stock storage's) and
``bench/tetra_backfill.py --modes in-process,stock`` (is it still needed).

Configured in the repository's ``dagster.yaml``; setting it up also turns batching on for the
process (``DAGSTER_EVENT_BATCH_SIZE``, unless already set)::

    storage:
      custom:
        module: platform_core.storage
        class: BatchedSqliteStorage
        config: {event_batch_size: 1000}  # base_dir defaults to $DAGSTER_HOME/storage
"""

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy
from dagster import EventLogEntry, Field, IntSource, StringSource, serialize_value
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from platform_core.dagster_internals import (
    ASSET_CHECK_EVENTS,
    ASSET_EVENTS,
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    AssetCheckExecutionRecordStatus,
    AssetCheckExecutionsTable,
    AssetKeyTable,
    ConfigurableClassData,
    DagsterSqliteStorage,
    SqlEventLogStorageTable,
    SqliteEventLogStorage,
    _event_logs_directory,
    db_select,
)

# The instance folder when $DAGSTER_HOME is unset (the CLIs set it to this; `dg` does not).
DEFAULT_DAGSTER_HOME = ".dagster_home"

BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
DEFAULT_BATCH_SIZE = 1000
MAX_CACHED_ENGINES = 64


def _write_ahead_log(connection: Any, _record: Any) -> None:
    """WAL journal with ``synchronous=NORMAL``: a commit appends to the log without an fsync
    (the log is synced at checkpoints). A power loss can drop the last commits, never corrupt
    the database; an application crash loses nothing. Readers no longer block the writer."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """Run-sharded SQLite event log whose ``store_event_batch`` is one transaction per shard,
    and which keeps one SQLAlchemy engine per shard, with a small connection pool, instead of a
    new engine and connection per query (each closing connection also checkpointed the WAL).
    Engines are per process id, so nothing is shared across processes."""

    def _dispose_engines(self) -> None:
        engines: OrderedDict[tuple[int, str], Engine] = self.__dict__.get("_engines", OrderedDict())
        while engines:
            engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._dispose_engines()  # no pooled connection may outlive its deleted shard file
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()

    def _engine(self, shard: str) -> Engine:
        # its own lock: has_table reaches here without _db_lock (its callers may hold that)
        with self.__dict__.setdefault("_engines_lock", threading.RLock()):
            return self._cached_engine(shard)

    def _cached_engine(self, shard: str) -> Engine:
        key = (os.getpid(), shard)
        engines: OrderedDict[tuple[int, str], Engine] = self.__dict__.setdefault(
            "_engines", OrderedDict()
        )
        engine = engines.get(key)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=4,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            sqlalchemy.event.listen(engine, "connect", _write_ahead_log)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            engines[key] = engine
            while len(engines) > MAX_CACHED_ENGINES:  # one shard per run: keep the recent ones
                engines.popitem(last=False)[1].dispose()
        engines.move_to_end(key)
        return engine

    def has_table(self, table_name: str) -> bool:
        """Whether the index shard has a table; a table, once there, is remembered (Dagster
        asks before most partition and tag queries, ~3 ms each with a fresh engine)."""
        known: set[str] = self.__dict__.setdefault("_known_tables", set())
        if table_name in known:
            return True
        with self._engine(INDEX_SHARD_NAME).connect() as conn:  # no lock: callers may hold it
            exists = bool(conn.dialect.has_table(conn, table_name))
        if exists:
            known.add(table_name)
        return exists

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock, self._engine(shard).connect() as conn, conn.begin():
            yield conn

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        run_ids = {event.run_id for event in events}
        if len(run_ids) != 1:  # Dagster batches within one run; anything else the slow way
            super().store_event_batch(events)
            return
        (run_id,) = run_ids
        rows = [self._event_to_row(event) for event in events]  # each event serialized once
        with self.run_connection(run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)  # one executemany

        asset = [
            (event, row)
            for event, row in zip(events, rows, strict=True)
            if event.is_dagster_event
            and event.dagster_event_type in ASSET_EVENTS
            and event.get_dagster_event().asset_key
        ]
        checks = [
            (event, row)
            for event, row in zip(events, rows, strict=True)
            if event.is_dagster_event and event.dagster_event_type in ASSET_CHECK_EVENTS
        ]
        if asset:
            with self.index_transaction() as conn:
                inserted = conn.execute(
                    SqlEventLogStorageTable.insert().returning(
                        SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
                    ),
                    [row for _, row in asset],
                )
                ids = list(inserted.scalars())
                asset_events = [event for event, _ in asset]
                self._store_asset_event_tags(conn, asset_events, ids)
                self._store_asset_entries(conn, asset_events, ids)
        for event, row in checks:
            with self.index_connection() as conn:
                event_id = conn.execute(
                    SqlEventLogStorageTable.insert().values(**row)
                ).inserted_primary_key[0]
            self.store_asset_check_event(event, event_id)

    def _store_asset_check_evaluation_planned(
        self, event: EventLogEntry, event_id: int | None
    ) -> None:
        """Dagster's rows (one per planned partition), with the event serialized once instead
        of once per row: a check planned over a 5-year range serialized it 1,584 times."""
        planned = event.get_dagster_event().asset_check_planned_data
        subset = planned.partitions_subset
        serialized, timestamp = serialize_value(event), self._event_insert_timestamp(event)
        rows = [
            {
                "asset_key": planned.asset_key.to_string(),
                "check_name": planned.check_name,
                "partition": partition,
                "run_id": event.run_id,
                "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                "evaluation_event": serialized,
                "evaluation_event_timestamp": timestamp,
                "evaluation_event_storage_id": event_id,
            }
            for partition in (subset.get_partition_keys() if subset else [None])
        ]
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), rows)

    def _store_asset_entries(
        self, conn: Any, events: Sequence[EventLogEntry], event_ids: Sequence[int]
    ) -> None:
        """The asset-key rows after applying ``events`` in order, one upsert per key. An event
        type always sets the same columns, so only the last event of each type and key counts:
        a backfill's thousands of materializations are serialized once per key, not each."""
        has_index_cols = self._has_asset_key_index_cols_on_connection(conn)
        last: dict[tuple[str, str], int] = {}
        for index, event in enumerate(events):
            dagster_event = event.get_dagster_event()
            key = dagster_event.asset_key.to_string()  # type: ignore[union-attr]
            last[(key, dagster_event.event_type_value)] = index
        merged: dict[str, dict[str, Any]] = {}
        for (key, _), index in sorted(last.items(), key=lambda item: item[1]):
            values = self._get_asset_entry_values(events[index], event_ids[index], has_index_cols)
            merged.setdefault(key, {}).update(values)
        merged = {key: values for key, values in merged.items() if values}
        existing = set(
            conn.execute(
                db_select([AssetKeyTable.c.asset_key]).where(
                    AssetKeyTable.c.asset_key.in_(list(merged))
                )
            ).scalars()
        )
        for key, values in merged.items():
            if key in existing:
                conn.execute(
                    AssetKeyTable.update().values(**values).where(AssetKeyTable.c.asset_key == key)
                )
            else:
                conn.execute(AssetKeyTable.insert().values(asset_key=key, **values))


class BatchedSqliteStorage(DagsterSqliteStorage):
    """The stock embedded SQLite storage (runs, schedules, same files) with a batched event log."""

    def __init__(
        self,
        base_dir: str,
        event_batch_size: int = DEFAULT_BATCH_SIZE,
        inst_data: ConfigurableClassData | None = None,
    ):
        super().__init__(base_dir, inst_data=inst_data)
        self._event_log_storage = BatchedSqliteEventLogStorage(_event_logs_directory(base_dir))
        os.environ.setdefault(BATCH_SIZE_ENV, str(event_batch_size))

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "base_dir": Field(StringSource, is_required=False),
            "event_batch_size": Field(IntSource, default_value=DEFAULT_BATCH_SIZE),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "BatchedSqliteStorage":
        home = os.environ.get("DAGSTER_HOME") or os.path.abspath(DEFAULT_DAGSTER_HOME)
        base_dir = config_value.get("base_dir") or os.path.join(home, "storage")
        os.makedirs(base_dir, exist_ok=True)
        return cls(base_dir, config_value["event_batch_size"], inst_data=inst_data)
