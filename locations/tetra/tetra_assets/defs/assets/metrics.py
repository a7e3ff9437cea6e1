"""Metrics pipeline (weekly, Sunday 21:00): indicators, statistics and ML features."""

from functools import partial
from typing import Any

import dagster as dg
import pandas as pd

from platform_core import failure
from platform_core.platform_models import FailureActions
from tetra_assets.defs.assets.common import (
    INDICATOR_HISTORY,
    MARKET_HISTORY,
    WEEKLY_BACKFILL,
    WEEKLY_CHAIN_FRESHNESS,
    by_week,
    describe_each,
    fallback_inputs,
    history,
    per_partition,
    require_clean,
    require_weeks,
    run_windows,
    split_by_window,
)
from tetra_assets.failure_actions import SEED_ACTIONS
from tetra_assets.partitions import weekly_partitions
from tetra_assets.science import features, stats
from tetra_assets.science.indicators import (
    EMA_SPANS,
    FAMILIES,
    RECURSIVE_WARM_UP_SESSIONS,
    ema_alpha,
    long_table,
    seed_weight,
)
from tetra_assets.science.ohlcv import to_wide
from tetra_assets.science.scenarios import paths_with_market

STAT_WINDOW = 252
FAILED_METRICS_KEY = "failed_metrics"  # indicator family -> error, when kept partial


def indicator_columns(
    context: dg.AssetExecutionContext, prices: dict[str, pd.DataFrame], partial_recovery: bool
) -> dict[str, pd.DataFrame]:
    """Every indicator family's wide columns. A family that fails is retried with the step;
    on the last attempt, with ``partial_recovery``, the others are kept and the failed ones
    listed (``failed_metrics`` metadata, the ``technical_indicators_complete`` check)."""
    outcome = failure.run_items({name: partial(f, prices) for name, f in FAMILIES.items()})
    outcome.enforce(continue_on_error=partial_recovery and failure.is_last_attempt(context))
    if outcome.failed:
        context.log.warning(f"indicator families left out: {outcome.failed}")
    context.add_output_metadata(outcome.metadata(FAILED_METRICS_KEY))
    return {k: v for columns in outcome.done.values() for k, v in columns.items()}


def metric_assets(actions: FailureActions) -> list[dg.AssetsDefinition]:
    """The metrics pipeline's assets with its failure actions (retries, partial recovery)."""
    weekly = {
        "group_name": "metrics",
        "partitions_def": weekly_partitions,
        "backfill_policy": WEEKLY_BACKFILL,
        "freshness_policy": WEEKLY_CHAIN_FRESHNESS,
        "retry_policy": failure.retry_policy(actions),
        "code_version": "1",
        "kinds": {"pandas", "arrow"},
    }
    return [
        _technical_indicators(weekly, actions.partial_recovery),
        _statistical_metrics(weekly),
        _ml_features(weekly),
    ]


def _technical_indicators(weekly: dict[str, Any], partial_recovery: bool):
    @dg.asset(
        ins={"market_data": INDICATOR_HISTORY},
        description="SMA 5-200, EMA 12/26/50/200, RSI 14, MACD 12/26/9, Bollinger 20/2 "
        "(population std), ATR 14, OBV, historical volatility 20/252 per (date, symbol) of the "
        f"week, in TA-Lib's conventions. Recursive indicators read {RECURSIVE_WARM_UP_SESSIONS:,} "
        "sessions of warm-up, after which EMA-200's seed keeps < 1e-12 of its weight "
        "(metadata ema_200_seed_weight); OBV's level starts at the first loaded session.",
        **{**weekly, "code_version": "2"},
    )
    def technical_indicators(context: dg.AssetExecutionContext, market_data: pd.DataFrame):
        market_data = require_clean(market_data)
        context.add_output_metadata(fallback_inputs(context))
        windows = run_windows(context)
        require_weeks(market_data, windows)
        wide = {c: to_wide(market_data, c) for c in ("close", "high", "low", "volume")}
        first = min(w.start for w in windows)
        columns = indicator_columns(context, wide, partial_recovery)
        table = long_table(wide["close"], columns, since=first)
        value = split_by_window(table, windows)
        warm_up = int((wide["close"].index < first).sum())
        context.add_output_metadata(
            {
                "warm_up_sessions": warm_up,
                "ema_200_seed_weight": seed_weight(ema_alpha(max(EMA_SPANS)), warm_up),
                "symbols": int(table["symbol"].nunique()),
                "missing_fraction": float(table.isna().mean().mean()),
            }
        )
        if "rsi_14" in table:
            describe_each(
                context, windows, value, lambda week: {"rsi_mean": float(week["rsi_14"].mean())}
            )
        return value

    return technical_indicators


def _statistical_metrics(weekly: dict[str, Any]):
    @dg.asset(
        ins={"market_data": MARKET_HISTORY},
        description="Annualised return and volatility, Sharpe (rf 2 %), max drawdown, beta and "
        "correlation vs the equal-weighted market: over the trailing 252 sessions (scope "
        "trailing_252d) and over each scenario path (scope = scenario id).",
        **weekly,
    )
    def statistical_metrics(
        context: dg.AssetExecutionContext,
        market_data: pd.DataFrame,
        scenario_timeseries: pd.DataFrame,
    ):
        market_data = require_clean(market_data)
        context.add_output_metadata(fallback_inputs(context, "scenario_timeseries"))
        windows = run_windows(context)
        require_weeks(market_data, windows)
        closes = to_wide(market_data, "close")
        paths_by_week = by_week(scenario_timeseries)

        def build(window) -> pd.DataFrame:
            returns = history(closes, window).pct_change(fill_method=None)
            trailing = returns.iloc[-STAT_WINDOW:]
            observed = stats.summary(trailing, trailing.mean(axis=1)).rename_axis("symbol")
            # every scenario at once: columns (scenario_id, symbol), benchmark = that scenario's
            # equal-weighted market
            paths, benchmark = paths_with_market(paths_by_week[window.key])
            table = pd.concat(
                [
                    observed.reset_index().assign(scope="trailing_252d"),
                    stats.summary(paths, benchmark)
                    .reset_index()
                    .rename(columns={"scenario_id": "scope"}),
                ],
                ignore_index=True,
            )
            return table[["scope", "symbol", *[c for c in table if c not in ("scope", "symbol")]]]

        value = per_partition(windows, build)

        def describe(week: pd.DataFrame) -> dict[str, Any]:
            trailing = week[week["scope"] == "trailing_252d"]
            return {
                "rows": len(week),
                "median_sharpe_trailing": float(trailing["sharpe"].median()),
                "worst_drawdown_trailing": float(trailing["max_drawdown"].min()),
            }

        describe_each(context, windows, value, describe)
        return value

    return statistical_metrics


def _ml_features(weekly: dict[str, Any]):
    @dg.asset(
        ins={"market_data": MARKET_HISTORY},
        description="Model-ready features per (date, symbol) of the week, scale-free: returns over "
        "1/5/21 sessions, 21-day volatility, RSI, MACD histogram / close, distance to SMA 50/200, "
        "position in the Bollinger band, ATR / close, 20-day volume z-score.",
        **weekly,
    )
    def ml_features(
        context: dg.AssetExecutionContext,
        market_data: pd.DataFrame,
        technical_indicators: pd.DataFrame,
    ):
        market_data = require_clean(market_data)
        context.add_output_metadata(fallback_inputs(context))
        windows = run_windows(context)
        table = features.model_features(market_data, technical_indicators)
        context.add_output_metadata(
            {"features": len(features.FEATURES), "complete_rows": int(table.dropna().shape[0])}
        )
        return split_by_window(table, windows)

    return ml_features


# The folder loaders see the assets with the seed's actions; the location swaps in those the
# platform config sets when it builds its Definitions (tetra_assets.location).
technical_indicators, statistical_metrics, ml_features = metric_assets(SEED_ACTIONS["metrics"])
