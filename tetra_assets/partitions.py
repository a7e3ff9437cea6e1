"""Trading-day partitions for data; Monday-start weekly partitions for the weekly chain."""

from __future__ import annotations

import dagster as dg

TIMEZONE = "America/New_York"
FIRST_DAY = "1999-01-04"
HISTORY_WEEKS = 56  # ~280 sessions: warm-up for SMA-200 and one-year (252-day) statistics

trading_day_partitions = dg.TimeWindowPartitionsDefinition(
    start=FIRST_DAY,
    fmt="%Y-%m-%d",
    cron_schedule="0 0 * * 1-5",
    timezone=TIMEZONE,
    end_offset=1,  # today's session is a partition from midnight on; its bar lands after close
)

weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=FIRST_DAY, day_offset=1, timezone=TIMEZONE, end_offset=1
)

# A week depends on its own trading days plus HISTORY_WEEKS of earlier days (warm-up).
history_mapping = dg.TimeWindowPartitionMapping(
    start_offset=-HISTORY_WEEKS, allow_nonexistent_upstream_partitions=True
)
