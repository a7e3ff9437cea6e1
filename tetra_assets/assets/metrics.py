"""Metrics pipeline (weekly, Sunday 21:00): indicators, statistics and ML features."""

import warnings

import dagster as dg
import numpy as np
import pandas as pd

from tetra_assets.assets.weekly import (
    INDICATOR_HISTORY,
    MARKET_HISTORY,
    WEEKLY_CHAIN_FRESHNESS,
    by_week,
    history,
    require_clean,
    require_weeks,
)
from tetra_assets.assets.windows import latest, per_partition, run_windows, split_by_window
from tetra_assets.partitions import weekly_partitions
from tetra_assets.science import stats
from tetra_assets.science.indicators import (
    EMA_SPANS,
    RECURSIVE_WARM_UP_SESSIONS,
    ema_alpha,
    indicator_table,
    seed_weight,
)
from tetra_assets.science.ohlcv import to_wide
from tetra_assets.science.scenarios import path_cube

WEEKLY = {
    "group_name": "metrics",
    "partitions_def": weekly_partitions,
    "backfill_policy": dg.BackfillPolicy.single_run(),
    "freshness_policy": WEEKLY_CHAIN_FRESHNESS,
    "code_version": "1",
    "kinds": {"pandas", "parquet"},
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
            "latest_rsi_mean": float(latest(value, windows)["rsi_14"].mean()),
        }
    )
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
        week_paths = paths_by_week[window.key]
        ids, symbols = (pd.Index(week_paths[c].unique()) for c in ("scenario_id", "symbol"))
        cube = path_cube(week_paths, ids, symbols)  # (scenario, step, symbol)
        paths = pd.DataFrame(
            cube.transpose(1, 0, 2).reshape(cube.shape[1], -1),
            columns=pd.MultiIndex.from_product([ids, symbols], names=["scenario_id", "symbol"]),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # steps after a shorter path ends
            market = np.nanmean(cube, axis=2)  # (scenario, step)
        benchmark = pd.DataFrame(np.repeat(market.T, len(symbols), axis=1), columns=paths.columns)
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
    last = latest(value, windows)
    trailing = last[last["scope"] == "trailing_252d"]
    context.add_output_metadata(
        {
            "rows": len(last),
            "median_sharpe_trailing": float(trailing["sharpe"].median()),
            "worst_drawdown_trailing": float(trailing["max_drawdown"].min()),
        }
    )
    return value


FEATURES = [
    "ret_1d",
    "ret_5d",
    "ret_21d",
    "vol_21d",
    "rsi_14",
    "macd_hist_pct",
    "dist_sma_50",
    "dist_sma_200",
    "bb_position",
    "atr_pct",
    "volume_z_20",
]


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
    close = to_wide(market_data, "close")
    volume = to_wide(market_data, "volume")
    returns = close.pct_change(fill_method=None)
    volume_z = (volume - volume.rolling(20).mean()) / volume.rolling(20).std()
    derived = (
        pd.DataFrame(
            {
                "ret_1d": returns.stack(),
                "ret_5d": (close / close.shift(5) - 1.0).stack(),
                "ret_21d": (close / close.shift(21) - 1.0).stack(),
                "vol_21d": returns.rolling(21).std().stack(),
                "volume_z_20": volume_z.stack(),
            }
        )
        .rename_axis(["date", "symbol"])
        .reset_index()
    )
    ind = technical_indicators
    table = ind[["date", "symbol"]].copy()
    table["rsi_14"] = ind["rsi_14"]
    table["macd_hist_pct"] = ind["macd_hist"] / ind["close"]
    table["dist_sma_50"] = ind["close"] / ind["sma_50"] - 1.0
    table["dist_sma_200"] = ind["close"] / ind["sma_200"] - 1.0
    table["bb_position"] = (ind["close"] - ind["bb_lower"]) / (ind["bb_upper"] - ind["bb_lower"])
    table["atr_pct"] = ind["atr_14"] / ind["close"]
    table = table.merge(derived, on=["date", "symbol"], how="left")[["date", "symbol", *FEATURES]]
    context.add_output_metadata(
        {"features": len(FEATURES), "complete_rows": int(table.dropna().shape[0])}
    )
    return split_by_window(table, windows)
