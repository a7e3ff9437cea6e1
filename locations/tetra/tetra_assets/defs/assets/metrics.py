"""Metrics pipeline (weekly, Sunday 21:00): indicators, statistics and ML features."""

from typing import Any

import dagster as dg
import pandas as pd

from tetra_assets.defs.assets.common import (
    INDICATOR_HISTORY,
    MARKET_HISTORY,
    WEEKLY_BACKFILL,
    WEEKLY_CHAIN_FRESHNESS,
    by_week,
    describe_each,
    history,
    per_partition,
    require_clean,
    require_weeks,
    run_windows,
    split_by_window,
)
from tetra_assets.partitions import weekly_partitions
from tetra_assets.science import features, stats
from tetra_assets.science.indicators import (
    EMA_SPANS,
    RECURSIVE_WARM_UP_SESSIONS,
    ema_alpha,
    indicator_table,
    seed_weight,
)
from tetra_assets.science.ohlcv import to_wide
from tetra_assets.science.scenarios import paths_with_market

WEEKLY = {
    "group_name": "metrics",
    "partitions_def": weekly_partitions,
    "backfill_policy": WEEKLY_BACKFILL,
    "freshness_policy": WEEKLY_CHAIN_FRESHNESS,
    "code_version": "1",
    "kinds": {"pandas", "arrow"},
}
STAT_WINDOW = 252


@dg.asset(
    ins={"market_data": INDICATOR_HISTORY},
    description="SMA 5-200, EMA 12/26/50/200, RSI 14, MACD 12/26/9, Bollinger 20/2 "
    "(population std), ATR 14, OBV, historical volatility 20/252 per (date, symbol) of the "
    f"week, in TA-Lib's conventions. Recursive indicators read {RECURSIVE_WARM_UP_SESSIONS:,} "
    "sessions of warm-up, after which EMA-200's seed keeps < 1e-12 of its weight "
    "(metadata ema_200_seed_weight); OBV's level starts at the first loaded session.",
    **{**WEEKLY, "code_version": "2"},
)
def technical_indicators(context: dg.AssetExecutionContext, market_data: pd.DataFrame):
    market_data = require_clean(market_data)
    windows = run_windows(context)
    require_weeks(market_data, windows)
    wide = {c: to_wide(market_data, c) for c in ("close", "high", "low", "volume")}
    first = min(w.start for w in windows)
    table = indicator_table(**wide, since=first)
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
    describe_each(context, windows, value, lambda week: {"rsi_mean": float(week["rsi_14"].mean())})
    return value


@dg.asset(
    ins={"market_data": MARKET_HISTORY},
    description="Annualised return and volatility, Sharpe (rf 2 %), max drawdown, beta and "
    "correlation vs the equal-weighted market: over the trailing 252 sessions (scope "
    "trailing_252d) and over each scenario path (scope = scenario id).",
    **WEEKLY,
)
def statistical_metrics(
    context: dg.AssetExecutionContext,
    market_data: pd.DataFrame,
    scenario_timeseries: pd.DataFrame,
):
    market_data = require_clean(market_data)
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


@dg.asset(
    ins={"market_data": MARKET_HISTORY},
    description="Model-ready features per (date, symbol) of the week, scale-free: returns over "
    "1/5/21 sessions, 21-day volatility, RSI, MACD histogram / close, distance to SMA 50/200, "
    "position in the Bollinger band, ATR / close, 20-day volume z-score.",
    **WEEKLY,
)
def ml_features(
    context: dg.AssetExecutionContext,
    market_data: pd.DataFrame,
    technical_indicators: pd.DataFrame,
):
    market_data = require_clean(market_data)
    windows = run_windows(context)
    table = features.model_features(market_data, technical_indicators)
    context.add_output_metadata(
        {"features": len(features.FEATURES), "complete_rows": int(table.dropna().shape[0])}
    )
    return split_by_window(table, windows)
