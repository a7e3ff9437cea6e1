"""The Tetra code location, declared once (platform_core.location): trading-day partitions for
the data, weeks for the chain; no inbox (partitions come from the calendar)."""

import dagster as dg

from platform_core import platform_config
from platform_core.location import Location, Setting, replaced
from tetra_assets.failure_actions import group_actions
from tetra_assets.partitions import trading_day_partitions
from tetra_assets.resources import MarketDataProvider

ACTED_ON = (  # failure actions Tetra applies (platform_core.failure), besides notify/escalation
    "retry_count",
    "retry_delay_seconds",
    "backoff",
    "fallback",
    "partial_recovery",
    "checkpoint_recovery",
)
PROVIDER = {
    "kind": "TETRA_PROVIDER",
    "csv_dir": "TETRA_CSV_DIR",
    "symbols": "TETRA_SYMBOLS",
    "synthetic_count": "TETRA_SYNTHETIC_COUNT",
}
# Arrow IPC, not parquet: a 5-year backfill writes ~15,000 partition files of ~100 rows and
# reads 11 years of daily files back per weekly run, ~3x cheaper per file
# (docs/benchmarks.md). A run's steps one after another in its process (the default
# executor): a step is 0.1-2 s of work, and a process per step added ~5 s of imports to
# each; the cores go to runs side by side instead (the run queue's limit, a backfill's runs).


def configured(loaded: dg.Definitions) -> dg.Definitions:
    """The ``defs/`` folder as the platform config shapes it, when Definitions are built:
    each pipeline's assets with its failure actions, and each schedule with its pipeline's
    ``schedule`` cron (``locations.tetra.pipelines.<data|scenarios>.schedule``)."""
    from tetra_assets.defs import schedules  # the folder, loaded above
    from tetra_assets.defs.assets import assessment, data, metrics, scenarios

    factories = {
        "data": data.data_assets,
        "scenarios": lambda actions: [scenarios.scenario_assets(actions)],
        "metrics": metrics.metric_assets,
        "assessment": assessment.assessment_assets,
    }
    rebuilt = [a for group, build in factories.items() for a in build(group_actions(group))]
    return replaced(loaded, rebuilt, schedules.configured_schedules(platform_config.load()))


LOCATION = Location(
    "tetra",
    trading_day_partitions,
    item="date",
    settings={"provider": Setting(MarketDataProvider, PROVIDER)},
    frame_format="arrow",
    configured=configured,
    pipeline_keys=(
        "schedule",
        *(f"failure_actions.{key}" for key in ACTED_ON),
    ),
)
