"""Trading-day partitions for data; Monday-start weekly partitions for the weekly chain."""

from __future__ import annotations

import math

import dagster as dg

from tetra_assets.science.indicators import RECURSIVE_WARM_UP_SESSIONS

TIMEZONE = "America/New_York"
FIRST_DAY = "1999-01-04"
HISTORY_WEEKS = 56  # ~280 sessions: warm-up for SMA-200 and one-year (252-day) statistics
# Recursive indicators (EMA-200 the slowest) need RECURSIVE_WARM_UP_SESSIONS before a week to
# forget their seed; at 4.8 sessions a week (NYSE holidays included) that is 577 weeks.
INDICATOR_HISTORY_WEEKS = math.ceil(RECURSIVE_WARM_UP_SESSIONS / 4.8) + 1

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
indicator_history_mapping = dg.TimeWindowPartitionMapping(
    start_offset=-INDICATOR_HISTORY_WEEKS, allow_nonexistent_upstream_partitions=True
)
