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

from typing import NamedTuple

from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from dagster._core.definitions.selector import (
    PartitionRangeSelector,
    PartitionsByAssetSelector,
    PartitionsSelector,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition as AssetJob,
)
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    AssetKeyTable,
    SqlEventLogStorageTable,
)
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.sqlalchemy_compat import db_select
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._serdes import ConfigurableClassData
from dagster._utils.schedules import cron_string_iterator


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
        "(platform_core.cli.stale_after) and the next tick of each schedule (tetra schedule)",
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

__all__ = [
    "ASSET_CHECK_EVENTS",
    "ASSET_EVENTS",
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "INDEX_SHARD_NAME",
    "PINS",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "AssetCheckExecutionRecordStatus",
    "AssetCheckExecutionsTable",
    "AssetGraph",
    "AssetJob",
    "AssetKeyTable",
    "ConfigurableClassData",
    "DagsterSqliteStorage",
    "FreshnessState",
    "FreshnessStateChange",
    "PartitionBackfill",
    "PartitionRangeSelector",
    "PartitionsByAssetSelector",
    "PartitionsSelector",
    "SqlEventLogStorageTable",
    "SqliteEventLogStorage",
    "_event_logs_directory",
    "cron_string_iterator",
    "db_select",
]
