"""Data pipeline (daily 19:00): market bars, macro series and market events per trading day."""

import os
from collections.abc import Callable
from datetime import timedelta

import dagster as dg
import pandas as pd

from platform_core.io import stored_partition
from tetra_assets.defs.assets.common import (
    all_rows,
    per_partition,
    run_windows,
    span,
    split_by_window,
)
from tetra_assets.partitions import TIMEZONE, trading_day_partitions
from tetra_assets.resources import MarketDataProvider
from tetra_assets.science import events
from tetra_assets.science.ohlcv import DataFormatError, ProviderUnavailable

FETCH_RETRIES = 3
FETCH_RETRY_POLICY = dg.RetryPolicy(
    max_retries=FETCH_RETRIES,
    delay=float(os.environ.get("TETRA_RETRY_DELAY_SECONDS", "30")),
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)
# The daily run (19:00 New York, weekdays) must have materialized by 20:00 each weekday.
DATA_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 20 * * 1-5", lower_bound_delta=timedelta(hours=2), timezone=TIMEZONE
)
# A data backfill runs at most ~8 years of sessions per run (one fetch each): the history a
# weekly backfill needs (its range plus 11 years of indicator warm-up) then fills two cores.
DATA_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=2100)
EVENT_LOOKBACK_DAYS = 70  # sessions of history for 60-day return statistics


def _fetch_or_fallback(
    context: dg.AssetExecutionContext, fetch: Callable[[str, str], pd.DataFrame]
) -> tuple[pd.DataFrame | dict[str, pd.DataFrame], dict[str, object]]:
    """Fetch through the provider; on a transient failure retry (RetryPolicy, exponential
    backoff) and on the last attempt fall back to the previously stored partitions."""
    windows = run_windows(context)
    start, end = span(windows)
    try:
        frame = fetch(start, end)
    except DataFormatError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc
    except ProviderUnavailable as exc:
        if context.retry_number < FETCH_RETRIES:
            raise
        cached = {w.key: stored_partition(context, context.asset_key, w.key) for w in windows}
        absent = [k for k, v in cached.items() if v is None]
        if absent:
            raise dg.Failure(
                f"provider failed after {FETCH_RETRIES} retries ({exc}) and no cached data "
                f"exists for {len(absent)} partition(s), first {absent[0]}"
            ) from exc
        context.log.warning(f"provider failed ({exc}); using cached data from the last run")
        value = per_partition(windows, lambda w: cached[w.key])
        return value, {"source": "cache", "fallback_reason": str(exc)}
    return split_by_window(frame, windows), {"source": "provider"}


@dg.asset(
    group_name="data",
    partitions_def=trading_day_partitions,
    backfill_policy=DATA_BACKFILL,
    retry_policy=FETCH_RETRY_POLICY,
    freshness_policy=DATA_FRESHNESS,
    code_version="1",
    kinds={"pandas", "arrow"},
    description="Daily OHLCV bars per symbol (long table: date, symbol, open..volume).",
)
def market_data(
    context: dg.AssetExecutionContext,
    provider: MarketDataProvider,
):
    value, meta = _fetch_or_fallback(context, provider.fetch)
    bars = all_rows(value)
    context.add_output_metadata(
        {**meta, "provider": provider.kind, "symbols": bars["symbol"].nunique(), "bars": len(bars)}
    )
    return value


@dg.asset(
    group_name="data",
    partitions_def=trading_day_partitions,
    backfill_policy=DATA_BACKFILL,
    retry_policy=FETCH_RETRY_POLICY,
    freshness_policy=DATA_FRESHNESS,
    code_version="1",
    kinds={"pandas", "arrow"},
    description="Macro series as known on each session (CPI, yields, spreads, VIX, oil).",
)
def economic_data(
    context: dg.AssetExecutionContext,
    provider: MarketDataProvider,
):
    value, meta = _fetch_or_fallback(context, provider.fetch_economic)
    context.add_output_metadata({**meta, "provider": provider.kind})
    return value


@dg.asset(
    group_name="data",
    partitions_def=trading_day_partitions,
    backfill_policy=DATA_BACKFILL,
    ins={
        "market_data": dg.AssetIn(
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-EVENT_LOOKBACK_DAYS, allow_nonexistent_upstream_partitions=True
            ),
        )
    },
    code_version="1",
    kinds={"pandas", "arrow"},
    description="Notable moves per session: return shocks (|z| >= 3), opening gaps, "
    "60-session highs/lows.",
)
def market_events(context: dg.AssetExecutionContext, market_data: pd.DataFrame):
    windows = run_windows(context)
    found = events.detect(market_data, since=min(w.start for w in windows))
    context.add_output_metadata(
        {
            "events": len(found),
            "by_type": dg.MetadataValue.json(found["event"].value_counts().to_dict()),
        }
    )
    return split_by_window(found, windows)
