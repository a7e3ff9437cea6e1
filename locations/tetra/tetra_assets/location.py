"""The Tetra code location, declared once (platform_core.location): trading-day partitions for
the data, weeks for the chain; no inbox (partitions come from the calendar)."""

from platform_core.location import Location, Setting
from tetra_assets.partitions import trading_day_partitions
from tetra_assets.resources import MarketDataProvider

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
LOCATION = Location(
    "tetra",
    trading_day_partitions,
    item="date",
    settings={"provider": Setting(MarketDataProvider, PROVIDER)},
    frame_format="arrow",
)
