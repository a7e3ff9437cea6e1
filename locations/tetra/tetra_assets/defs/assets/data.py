"""Data pipeline (daily 19:00): market bars, macro series and market events per trading day."""

from collections.abc import Callable
from datetime import timedelta

import dagster as dg
import pandas as pd

from platform_core import failure
from platform_core.io import stored_partition
from platform_core.platform_models import FailureActions
from tetra_assets.defs.assets.common import (
    Window,
    all_rows,
    per_partition,
    run_windows,
    span,
    split_by_window,
)
from tetra_assets.failure_actions import SEED_ACTIONS, Fallback
from tetra_assets.partitions import TIMEZONE, trading_day_partitions
from tetra_assets.resources import MarketDataProvider
from tetra_assets.science import events
from tetra_assets.science.calendar import sessions_between
from tetra_assets.science.ohlcv import DataFormatError, ProviderUnavailable

# The daily run (19:00 New York, weekdays) must have materialized by 20:00 each weekday.
DATA_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 20 * * 1-5", lower_bound_delta=timedelta(hours=2), timezone=TIMEZONE
)
# A data backfill runs at most ~8 years of sessions per run (one fetch each): the history a
# weekly backfill needs (its range plus 11 years of indicator warm-up) then fills two cores.
DATA_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=2100)
# A kept value stands in for at most this many NYSE sessions after its own (a week of
# trading): a longer outage is an incident to fix, not data. Past it the step fails, naming
# the last good session and its age, instead of a backfill that "succeeds" on one old day.
MAX_CARRY_FORWARD_SESSIONS = 5
CARRY_FORWARD_LOOKBACK = 10  # stored partitions tried for the last good session
EVENT_LOOKBACK_DAYS = 70  # sessions of history for 60-day return statistics


def _last_good(
    context: dg.AssetExecutionContext, windows: list[Window], error: Exception
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Each window's last good value: its own stored partition when that is not itself a
    fallback (the cached value of an earlier run), else the latest good session before it
    carried forward (its rows dated to this session: the last known values, as an as-of
    lookup would see them), at most ``MAX_CARRY_FORWARD_SESSIONS`` sessions on."""
    asset = context.asset_key.to_user_string()
    own_latest = failure.latest_metadata(
        context.instance, context.asset_key, [w.key for w in windows]
    )
    values: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}
    carried = _latest_good_before(context, windows[0].key)
    for window in windows:
        kept_before = failure.flag(own_latest.get(window.key, {}), failure.FALLBACK_KEY)
        own = None if kept_before else stored_partition(context, context.asset_key, window.key)
        if own is not None:
            values[window.key], sources[window.key] = own, f"cached {window.key}"
            carried = (window.key, own) if not own.empty else carried
            continue
        if carried is None:
            raise dg.Failure(
                f"{asset}: the fetch failed on its last attempt ({error}) and no earlier good "
                f"value exists for {window.key} (none in the {CARRY_FORWARD_LOOKBACK} stored "
                "sessions before it): nothing to fall back on"
            ) from error
        source, frame = carried
        age = sessions_between(source, window.key)
        if age > MAX_CARRY_FORWARD_SESSIONS:
            raise dg.Failure(
                f"{asset}: the provider is down ({error}); the last good session {source} is "
                f"{age} sessions old on {window.key}, over the carry-forward limit of "
                f"{MAX_CARRY_FORWARD_SESSIONS} sessions: nothing of this run is kept. Rerun "
                f"from {window.key} once the provider is back",
                allow_retries=False,
            ) from error
        values[window.key] = frame.assign(date=window.start)
        sources[window.key] = f"carried forward from {source}"
    return values, sources


def _latest_good_before(
    context: dg.AssetExecutionContext, key: str
) -> tuple[str, pd.DataFrame] | None:
    """The latest stored partition before ``key`` that has rows (a holiday's is empty) and is
    not itself a fallback (a kept value is never carried on: the limit counts from real
    data), trying at most ``CARRY_FORWARD_LOOKBACK`` of them."""
    stored = context.instance.get_materialized_partitions(context.asset_key)
    earlier = sorted((k for k in stored if k < key), reverse=True)[:CARRY_FORWARD_LOOKBACK]
    latest = failure.latest_metadata(context.instance, context.asset_key, earlier)
    for candidate in earlier:
        if failure.flag(latest.get(candidate, {}), failure.FALLBACK_KEY):
            continue
        frame = stored_partition(context, context.asset_key, candidate)
        if frame is not None and not frame.empty:
            return candidate, frame
    return None


def fetch_or_fall_back(
    context: dg.AssetExecutionContext,
    fetch: Callable[[str, str], pd.DataFrame],
    fallback: Fallback | None,
) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """Fetch the run's sessions through the provider. A provider failure is retried (the
    group's RetryPolicy); on the last attempt, with ``use_cached_data``, each partition keeps
    its last good value and says so (``fallback`` metadata, a WARN check). Malformed data is
    the source's to fix: never retried, never replaced."""
    windows = run_windows(context)
    try:
        frame = fetch(*span(windows))
    except DataFormatError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc
    except (ProviderUnavailable, OSError) as exc:
        if fallback != "use_cached_data" or not failure.is_last_attempt(context):
            raise
        values, sources = _last_good(context, windows, exc)
        context.log.warning(f"provider failed ({exc}); keeping the last good values: {sources}")
        for key, source in sources.items():
            context.add_asset_metadata(failure.fallback_metadata(source, exc), partition_key=key)
        return per_partition(windows, lambda w: values[w.key])
    context.add_output_metadata(failure.fallback_metadata(None, None))
    return split_by_window(frame, windows)


def data_assets(actions: FailureActions) -> list[dg.AssetsDefinition]:
    """The data pipeline's assets with its failure actions (retries, fallback)."""
    daily = {
        "group_name": "data",
        "partitions_def": trading_day_partitions,
        "backfill_policy": DATA_BACKFILL,
        "retry_policy": failure.retry_policy(actions),
        "code_version": "1",
        "kinds": {"pandas", "arrow"},
    }

    @dg.asset(
        freshness_policy=DATA_FRESHNESS,
        description="Daily OHLCV bars per symbol (long table: date, symbol, open..volume).",
        **daily,
    )
    def market_data(context: dg.AssetExecutionContext, provider: MarketDataProvider):
        value = fetch_or_fall_back(context, provider.fetch, actions.fallback)
        bars = all_rows(value)
        context.add_output_metadata(
            {"provider": provider.kind, "symbols": bars["symbol"].nunique(), "bars": len(bars)}
        )
        return value

    @dg.asset(
        freshness_policy=DATA_FRESHNESS,
        description="Macro series as known on each session (CPI, yields, spreads, VIX, oil).",
        **daily,
    )
    def economic_data(context: dg.AssetExecutionContext, provider: MarketDataProvider):
        value = fetch_or_fall_back(context, provider.fetch_economic, actions.fallback)
        context.add_output_metadata({"provider": provider.kind})
        return value

    @dg.asset(
        ins={
            "market_data": dg.AssetIn(
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-EVENT_LOOKBACK_DAYS, allow_nonexistent_upstream_partitions=True
                ),
            )
        },
        description="Notable moves per session: return shocks (|z| >= 3), opening gaps, "
        "60-session highs/lows.",
        **daily,
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

    return [market_data, economic_data, market_events]


# The folder loaders see the assets with the seed's actions; the location swaps in those the
# platform config sets when it builds its Definitions (tetra_assets.location).
market_data, economic_data, market_events = data_assets(SEED_ACTIONS["data"])
