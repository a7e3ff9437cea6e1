"""The Tetra backfill's science without Dagster: the same science functions on the same data
in a plain Python loop, on the same cores (two processes, each half of the weeks), writing
nothing. bench/tetra_backfill.py times it beside the platform: their ratio is the cost of
orchestration (runs, storage, events, metadata)."""

import argparse
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import date

import pandas as pd

from tetra_assets.location import LOCATION
from tetra_assets.partitions import weekly_partitions
from tetra_assets.ranges import history_start, trading_day_keys, week_keys
from tetra_assets.resources import MarketDataProvider
from tetra_assets.science import backtest, events, features, report, stats
from tetra_assets.science.indicators import indicator_table
from tetra_assets.science.ohlcv import to_wide
from tetra_assets.science.scenarios import (
    ScenarioConfig,
    build_scenarios,
    long_paths,
    paths_with_market,
    rows_before_scenarios,
    scenario_panel,
)

PARAMS = {
    "buy_and_hold": {},
    "sma_crossover": {"fast": 50, "slow": 200},
    "momentum": {"lookback": 60},
    "mean_reversion": {"window": 20, "entry_z": 1.0, "exit_z": 0.0},
}
HISTORY_WEEKS = 56
INDICATOR_WEEKS = 577


def _window(week: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    tw = weekly_partitions.time_window_for_partition_key(week)
    return pd.Timestamp(tw.start.date()), pd.Timestamp(tw.end.date())


def _weeks(symbols: int, weeks: list[str], first_day: str) -> int:
    """The weekly chain for ``weeks``: scenarios, indicators, metrics, features, backtests,
    rankings and the report's plot, as the assets compute them; returns rows produced."""
    provider = MarketDataProvider(kind="synthetic", synthetic_count=symbols)
    start, _ = _window(weeks[0])
    _, end = _window(weeks[-1])
    bars = provider.fetch(first_day, (end - pd.Timedelta(days=1)).date().isoformat())
    wide = {c: to_wide(bars, c) for c in ("close", "high", "low", "volume")}
    closes = wide["close"]
    indicators = indicator_table(**wide, since=start)
    rows = len(indicators) + len(features.model_features(bars, indicators))
    for week in weeks:
        lo, hi = _window(week)
        dates = closes.index
        observed = closes.iloc[
            dates.searchsorted(lo - pd.Timedelta(weeks=HISTORY_WEEKS)) : dates.searchsorted(hi)
        ].dropna(axis=1, how="all")
        returns = observed.pct_change(fill_method=None)
        definitions, paths = build_scenarios(returns.iloc[1:], week, ScenarioConfig())
        definitions.insert(0, "week", week)
        series = long_paths(paths)
        trailing = returns.iloc[-252:]
        wide_paths, benchmark = paths_with_market(series)
        metrics = [
            stats.summary(trailing, trailing.mean(axis=1)),
            stats.summary(wide_paths, benchmark),
        ]
        panel, starts = scenario_panel(observed, definitions, series)
        before = rows_before_scenarios(len(observed), definitions, observed.shape[1])
        prices = observed.to_numpy(dtype=float)
        results = pd.concat(
            [
                backtest.performance(
                    panel,
                    name,
                    starts,
                    PARAMS[name],
                    carry=backtest.signal_array(prices, name, PARAMS[name])[before],
                ).assign(strategy=name, week=week)
                for name in backtest.STRATEGIES
            ]
        ).reset_index()
        ranked = report.rank_strategies(results, by=["week"])
        horizon = ScenarioConfig().horizon
        curves = backtest.mean_equity_curves(observed, len(observed) - horizon, PARAMS)
        report.equity_plot_png(curves, f"Realized scenario: the last {horizon} sessions")
        rows += len(series) + sum(len(m) for m in metrics) + len(results) + len(ranked)
    return rows


def bare_backfill(symbols: int, first: str, last: str, workers: int = 2) -> int:
    """Data (bars, macro series, events) for the whole range, then the weeks split over
    ``workers`` processes, as `tetra backfill` does with the platform."""
    provider = MarketDataProvider(kind="synthetic", synthetic_count=symbols)
    defs = LOCATION.definitions(provider=provider)  # for its partition mappings only
    days = trading_day_keys(date.fromisoformat(first), date.fromisoformat(last))
    weeks = week_keys(days)
    first_day = history_start(defs, weeks[0])
    bars = provider.fetch(first_day, last)
    economic = provider.fetch_economic(first_day, last)
    found = events.detect(bars, since=pd.Timestamp(first_day))
    size = math.ceil(len(weeks) / workers)
    parts = [weeks[i : i + size] for i in range(0, len(weeks), size)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        # each process loads the indicators' warm-up for its own first week, as a run does
        starts = [history_start(defs, part[0]) for part in parts]
        rows = sum(pool.map(_weeks, [symbols] * len(parts), parts, starts))
    return rows + len(bars) + len(economic) + len(found)


def main() -> None:
    """The bare science as a command of its own, timed like the CLI it is compared with
    (interpreter start and imports included)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--start", default="2019-01-01")
    parser.add_argument("--end", default="2023-12-29")
    args = parser.parse_args()
    print(f"{bare_backfill(args.symbols, args.start, args.end)} rows")


if __name__ == "__main__":
    main()
