"""The fence: the only product module that imports Dagster's private names (``dagster._``).

Everything else imports public Dagster (``import dagster as dg``) or takes a name from here;
``tests/test_imports.py`` keeps it that way and checks that every name below has its entry in
``PINS``: why it is needed, its public alternative if any, and the test that fails when a
Dagster upgrade changes it. On every upgrade, run those tests first (docs/architecture.md).

Names with public twins are not here: ``dg.DagsterEventType``, ``dg.EventLogEntry``,
``dg.serialize_value`` / ``dg.deserialize_value`` (an instance ref deserializes without its
class), ``dg.build_reconstructable_job`` (not ``ReconstructableRepository``); run and backfill
statuses are compared by their public string values.
"""

import importlib
from typing import Any, NamedTuple

_SOURCES: dict[str, tuple[str, str]] = {  # name -> (private module, attribute)
    "ASSET_CHECK_EVENTS": ("dagster._core.events", "ASSET_CHECK_EVENTS"),
    "ASSET_EVENTS": ("dagster._core.events", "ASSET_EVENTS"),
    "ASSET_PARTITION_RANGE_END_TAG": (
        "dagster._core.storage.tags",
        "ASSET_PARTITION_RANGE_END_TAG",
    ),
    "ASSET_PARTITION_RANGE_START_TAG": (
        "dagster._core.storage.tags",
        "ASSET_PARTITION_RANGE_START_TAG",
    ),
    "AssetCheckExecutionRecordStatus": (
        "dagster._core.storage.asset_check_execution_record",
        "AssetCheckExecutionRecordStatus",
    ),
    "AssetCheckExecutionsTable": (
        "dagster._core.storage.event_log.schema",
        "AssetCheckExecutionsTable",
    ),
    "AssetGraph": ("dagster._core.definitions.assets.graph.asset_graph", "AssetGraph"),
    "AssetJob": (
        "dagster._core.definitions.unresolved_asset_job_definition",
        "UnresolvedAssetJobDefinition",
    ),
    "AssetKeyTable": ("dagster._core.storage.event_log.schema", "AssetKeyTable"),
    "ConfigurableClassData": ("dagster._serdes", "ConfigurableClassData"),
    "DagsterSqliteStorage": ("dagster._core.storage.sqlite_storage", "DagsterSqliteStorage"),
    "FreshnessState": ("dagster._core.definitions.freshness", "FreshnessState"),
    "FreshnessStateChange": ("dagster._core.definitions.freshness", "FreshnessStateChange"),
    "INDEX_SHARD_NAME": (
        "dagster._core.storage.event_log.sqlite.sqlite_event_log",
        "INDEX_SHARD_NAME",
    ),
    "PartitionBackfill": ("dagster._core.execution.backfill", "PartitionBackfill"),
    "PartitionRangeSelector": ("dagster._core.definitions.selector", "PartitionRangeSelector"),
    "PartitionsByAssetSelector": (
        "dagster._core.definitions.selector",
        "PartitionsByAssetSelector",
    ),
    "PartitionsSelector": ("dagster._core.definitions.selector", "PartitionsSelector"),
    "SQLITE_BUSY_TIMEOUT_SECONDS": ("dagster._core.storage.sqlite", "SQLITE_BUSY_TIMEOUT_SECONDS"),
    "SqlEventLogStorageTable": (
        "dagster._core.storage.event_log.schema",
        "SqlEventLogStorageTable",
    ),
    "SqliteEventLogStorage": (
        "dagster._core.storage.event_log.sqlite.sqlite_event_log",
        "SqliteEventLogStorage",
    ),
    "_event_logs_directory": ("dagster._core.storage.sqlite_storage", "_event_logs_directory"),
    "cron_string_iterator": ("dagster._utils.schedules", "cron_string_iterator"),
    "db_select": ("dagster._core.storage.sqlalchemy_compat", "db_select"),
}


def __getattr__(name: str) -> Any:
    """A fenced name, imported when first used: the storage classes alone pull in SQLAlchemy
    and Alembic (~0.4 s), which a code location's import (or a command's) must not pay."""
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _SOURCES[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


class Pin(NamedTuple):
    why: str
    public_alternative: str
    test: str  # tests/<file>.py::<test function>


_TYPES = Pin(
    "type annotations of what public calls return: Definitions.resolve_asset_graph() (plan, "
    "backfill) and dg.define_asset_job (inbox sensors, schedules)",
    "none: the classes are not exported",
    "tests/test_definitions.py::test_location_loads_and_graph_is_pinned",
)
_BACKFILL = Pin(
    "submit an asset backfill to the instance for the daemon (platform_core.backfill)",
    "none in Python: the web UI submits backfills over GraphQL, which needs a web server",
    "tests/platform_core/test_backfill.py::test_submitted_backfill_targets_exactly_the_requested_partitions",
)
_RANGE_TAGS = Pin(
    "the tags of a single-run backfill over a partition range (in-process range runs)",
    "none: the strings are Dagster's",
    "tests/platform_core/test_backfill.py::test_range_tags_are_what_dagster_reads",
)
_STORAGE = Pin(
    "the batched SQLite event log (platform_core.storage) subclasses Dagster's SQLite storages "
    "and writes rows into their tables",
    "the stock storage, 5.6x slower on the 5-year Tetra backfill (docs/benchmarks.md)",
    "tests/platform_core/test_storage.py::test_batched_storage_records_what_stock_storage_records",
)
_FRESHNESS = Pin(
    "the freshness states the daemon records, read by the freshness alert sensor",
    "none",
    "tests/platform_core/test_alerts.py::test_freshness_sensor_notifies_each_stale_spell_once",
)

PINS: dict[str, Pin] = {
    "AssetGraph": _TYPES,
    "AssetJob": _TYPES,
    "PartitionBackfill": _BACKFILL,
    "PartitionRangeSelector": _BACKFILL,
    "PartitionsByAssetSelector": _BACKFILL,
    "PartitionsSelector": _BACKFILL,
    "ASSET_PARTITION_RANGE_START_TAG": _RANGE_TAGS,
    "ASSET_PARTITION_RANGE_END_TAG": _RANGE_TAGS,
    "cron_string_iterator": Pin(
        "cron ticks by Dagster's own time-zone rules: freshness deadlines without a daemon "
        "(platform_core.runstats.stale_after) and the next tick of each schedule (tetra schedule)",
        "none (Dagster vendors croniter privately)",
        "tests/platform_core/test_cli.py::test_stale_after_follows_the_daemons_rules",
    ),
    "AssetCheckExecutionRecordStatus": Pin(
        "the status filter of the instance's check-execution history (failed-check alerts)",
        "none",
        "tests/platform_core/test_alerts.py::test_check_failure_sensor_notifies_each_failure_once",
    ),
    "FreshnessState": _FRESHNESS,
    "FreshnessStateChange": _FRESHNESS,
    "ASSET_CHECK_EVENTS": _STORAGE,
    "ASSET_EVENTS": _STORAGE,
    "INDEX_SHARD_NAME": _STORAGE,
    "SQLITE_BUSY_TIMEOUT_SECONDS": _STORAGE,
    "AssetCheckExecutionsTable": _STORAGE,
    "AssetKeyTable": _STORAGE,
    "ConfigurableClassData": _STORAGE,
    "DagsterSqliteStorage": _STORAGE,
    "SqlEventLogStorageTable": _STORAGE,
    "SqliteEventLogStorage": _STORAGE,
    "_event_logs_directory": _STORAGE,
    "db_select": _STORAGE,
}

# DagsterInstance methods without Dagster's @public mark that the product calls (public
# names, so no import goes through the fence): method -> (the parameters we pass, why).
INSTANCE_METHODS: dict[str, tuple[tuple[str, ...], str]] = {
    "add_run_tags": (("run_id", "new_tags"), "the platform config's record on a run (io.py)"),
    "get_daemon_heartbeats": ((), "health's daemon_heartbeat and daemon_serves"),
    "get_required_daemon_types": ((), "which daemons health expects to beat"),
    "get_run_step_stats": (("run_id",), "per-stage times in ecod status"),
    "get_materialized_partitions": (("asset_key",), "stored partitions (fallbacks, resume)"),
    "get_records_for_run": (("run_id", "cursor", "of_type"), "a run's planned assets"),
}

__all__ = ["INSTANCE_METHODS", "PINS", *_SOURCES]
