"""The batched SQLite event log records exactly what Dagster's stock SQLite event log records:
the same answers through the instance's API, and the same rows in every table of the event
log's index and run shards. Run on every Dagster upgrade (platform_core/storage.py)."""

import json
import os
import re
import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path

import dagster as dg
import pytest

from platform_core.storage import BATCH_SIZE_ENV, BatchedSqliteEventLogStorage

days = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-03-01")


@dg.asset(partitions_def=days, backfill_policy=dg.BackfillPolicy.single_run())
def daily_numbers(context: dg.AssetExecutionContext) -> dict[str, int]:
    keys = context.partition_keys
    context.add_output_metadata({"partitions": len(keys)})
    return {key: i for i, key in enumerate(keys)}


@dg.asset_check(asset=daily_numbers, partitions_def=days)
def numbers_present(daily_numbers: dict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=bool(daily_numbers))


class DictIOManager(dg.IOManager):
    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        pass

    def load_input(self, context: dg.InputContext) -> dict:
        return {"x": 1}


job = dg.Definitions(
    assets=[daily_numbers],
    asset_checks=[numbers_present],
    jobs=[dg.define_asset_job("numbers", selection=[daily_numbers])],
    resources={"io_manager": DictIOManager()},
).resolve_job_def("numbers")


VOLATILE_KEYS = {"timestamp", "pid", "duration_ms", "storage_id", "event_id", "id", "log_key"}
VOLATILE_COLUMNS = {"migration_completed"}  # a time
# in messages: "in 12ms", "(pid: 4242)", "in 1.2s": how long, and which process
VOLATILE_TEXT = re.compile(r"\b\d+(\.\d+)?\s?(ms|s)\b|pid: \d+")
# a data version without a code version hashes what differs between two instances (run ids)
DATA_VERSION = "data_version"


def _normal(value: object, runs: list[str]) -> object:
    """A stored value with what must differ between two instances taken out: run ids become
    their order, JSON is parsed and its timings, process ids and row ids are dropped."""
    if isinstance(value, str):
        for number, run_id in enumerate(runs):
            value = value.replace(run_id, f"<run {number}>")
        value = VOLATILE_TEXT.sub("<volatile>", value)
        if value[:1] in "{[":
            try:
                return _normal(json.loads(value), runs)
            except ValueError:
                return value
        return value
    if isinstance(value, dict):
        if DATA_VERSION in str(value.get("key", "")):  # a tag row: its value is the version
            value = {**value, "value": "<data version>"}
        return {
            k: "<data version>" if DATA_VERSION in k else _normal(v, runs)
            for k, v in sorted(value.items())
            if k not in VOLATILE_KEYS
        }
    if isinstance(value, list):
        return [_normal(v, runs) for v in value]
    return value


def database_rows(storage: Path, runs: list[str]) -> dict[str, Counter]:
    """Every row of every table of the event log's index shard and run shards, normalized
    (row ids, timestamps and run ids aside), as a multiset per shard and table."""
    shards = {"index": storage / "history" / "runs" / "index.db"}
    shards |= {f"run {n}": storage / "history" / "runs" / f"{r}.db" for n, r in enumerate(runs)}
    found: dict[str, Counter] = {}
    for shard, path in shards.items():
        with closing(sqlite3.connect(path)) as connection:
            names = connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            for (table,) in names.fetchall():
                cursor = connection.execute(f'SELECT * FROM "{table}"')
                columns = [c[0] for c in cursor.description]
                found[f"{shard}.{table}"] = Counter(
                    json.dumps(
                        _normal(
                            {
                                column: value
                                for column, value in zip(columns, row, strict=True)
                                if "timestamp" not in column
                                and column not in VOLATILE_COLUMNS
                                and not (column.endswith("_id") and isinstance(value, int))
                            },
                            runs,
                        ),
                        sort_keys=True,
                        default=str,
                    )
                    for row in cursor.fetchall()
                )
    return found


def record(home: Path, storage: dict | None) -> dict:
    """Run the same 60-partition single run twice and collect what the instance answers."""
    overrides = {"storage": storage} if storage else {}
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home), overrides=overrides) as instance:
        runs = []
        for _ in range(2):
            result = job.execute_in_process(
                instance=instance,
                tags={
                    "dagster/asset_partition_range_start": "2024-01-01",
                    "dagster/asset_partition_range_end": "2024-02-29",
                },
            )
            assert result.success
            runs.append(result.run_id)
        key = dg.AssetKey("daily_numbers")
        records = instance.fetch_materializations(key, limit=1000).records
        asset_record = instance.get_asset_records([key])[0].asset_entry
        logs = instance.all_logs(runs[-1])
        check_history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(key, "numbers_present"), limit=1000
        )
        return {
            "storage": type(instance.event_log_storage).__name__,
            "tables": database_rows(home / "storage", runs),
            "materialized": sorted(instance.get_materialized_partitions(key)),
            "materializations": Counter((r.run_id == runs[-1], r.partition_key) for r in records),
            "last_partition": asset_record.last_materialization_record.partition_key,
            "last_run_is_second": asset_record.last_run_id == runs[-1],
            "event_types": [e.dagster_event_type for e in logs if e.is_dagster_event],
            "checks": [(c.status, c.run_id == runs[-1], c.partition) for c in check_history],
            "check_events": Counter(
                (c.status, c.event.dagster_event_type if c.event else None) for c in check_history
            ),
        }


def test_batched_storage_records_what_stock_storage_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    original = BatchedSqliteEventLogStorage.store_event_batch

    def counting(self: BatchedSqliteEventLogStorage, events: list) -> None:
        batches.append(len(events))
        original(self, events)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "store_event_batch", counting)
    os.environ[BATCH_SIZE_ENV] = "25"  # several batches per output, one partial
    try:
        stock = record(
            tmp_path / "stock", {"sqlite": {"base_dir": str(tmp_path / "stock" / "storage")}}
        )
        batched = record(
            tmp_path / "batched",
            {
                "custom": {
                    "module": "platform_core.storage",
                    "class": "BatchedSqliteStorage",
                    "config": {"base_dir": str(tmp_path / "batched" / "storage")},
                }
            },
        )
    finally:
        os.environ.pop(BATCH_SIZE_ENV, None)
    assert stock["storage"] == "SqliteEventLogStorage"
    assert batched["storage"] == BatchedSqliteEventLogStorage.__name__
    assert len(batched["materialized"]) == 60
    assert batched["last_partition"] == "2024-02-29"
    assert batched["last_run_is_second"]
    assert sum(batched["materializations"].values()) == 120
    # the check is planned per partition in both runs (one row each)
    planned = [partition for *_, partition in batched["checks"] if partition is not None]
    assert len(planned) == 120
    assert set(planned) == set(batched["materialized"])
    assert 25 in batches and 10 in batches  # 60 planned / materialized events = 25 + 25 + 10
    for field in stock:
        if field != "storage":
            assert batched[field] == stock[field], field


def test_storage_turns_batching_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Configured without base_dir: the stock layout under $DAGSTER_HOME/storage."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    previous = os.environ.pop(BATCH_SIZE_ENV, None)
    overrides = {
        "storage": {
            "custom": {
                "module": "platform_core.storage",
                "class": "BatchedSqliteStorage",
                "config": {"event_batch_size": 777},
            }
        }
    }
    try:
        with dg.instance_for_test(temp_dir=str(tmp_path), overrides=overrides):
            assert os.environ[BATCH_SIZE_ENV] == "777"
    finally:
        os.environ.pop(BATCH_SIZE_ENV, None)
        if previous is not None:
            os.environ[BATCH_SIZE_ENV] = previous
    assert (tmp_path / "storage" / "history" / "runs" / "index.db").exists()


def test_event_log_runs_in_wal_mode_is_shared_and_wipes_cleanly(tmp_path: Path) -> None:
    """WAL + synchronous=NORMAL on every shard; another storage object (as the web server or
    daemon would hold) sees the events a run wrote."""
    import sqlite3

    storage = {
        "custom": {
            "module": "platform_core.storage",
            "class": "BatchedSqliteStorage",
            "config": {"base_dir": str(tmp_path / "storage")},
        }
    }
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides={"storage": storage}) as instance:
        result = job.execute_in_process(instance=instance, partition_key="2024-01-05")
        assert result.success
        shard = tmp_path / "storage" / "history" / "runs" / f"{result.run_id}.db"
        index = tmp_path / "storage" / "history" / "runs" / "index.db"
        for path in (shard, index):
            with sqlite3.connect(path) as conn:
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        other = BatchedSqliteEventLogStorage(str(tmp_path / "storage" / "history" / "runs"))
        types = [e.dagster_event_type for e in other.get_logs_for_run(result.run_id)]
        assert dg.DagsterEventType.ASSET_MATERIALIZATION in types
        assert dg.DagsterEventType.RUN_SUCCESS in types
        # pooled connections never outlive a wiped shard: the instance starts clean and works
        instance.wipe()
        assert instance.all_logs(result.run_id) == []
        again = job.execute_in_process(instance=instance, partition_key="2024-01-06")
        assert again.success
        key = dg.AssetKey("daily_numbers")
        assert instance.get_materialized_partitions(key) == {"2024-01-06"}
