"""Backtests, statistics and scenarios against hand-computed expectations."""

import math

import numpy as np
import pandas as pd
import pytest

from tetra_assets.science import backtest, stats
from tetra_assets.science.ohlcv import synthetic, synthetic_symbols, to_wide
from tetra_assets.science.scenarios import (
    STRESS_EPISODES,
    ScenarioConfig,
    build_scenarios,
    long_paths,
    path_cube,
    rows_before_scenarios,
    scenario_panel,
    worst_windows,
)


def frame(values: list[float], name: str = "A") -> pd.DataFrame:
    return pd.DataFrame({name: values}, index=pd.RangeIndex(len(values)))


def test_buy_and_hold_equity_is_price_ratio_after_first_day() -> None:
    prices = frame([100, 110, 99, 120])
    equity = backtest.equity_curves(prices, "buy_and_hold")["A"].tolist()
    # position on day 0 is yesterday's signal: none; from day 1 the strategy is long
    assert equity == pytest.approx([1.0, 1.1, 0.99, 1.2])


def test_positions_use_only_yesterdays_signal() -> None:
    prices = frame([10, 10, 10, 20, 10, 10])
    # momentum(lookback=1) signals 1 at the close of day 3 (the jump) -> long on day 4 only
    held = backtest.positions(prices, "momentum", lookback=1)["A"].tolist()
    assert held == [0, 0, 0, 0, 1, 0]
    perf = backtest.performance(prices, "momentum", params={"lookback": 1}).loc["A"]
    assert perf["total_return"] == pytest.approx(-0.5)  # it earns day 4's fall, not the jump
    assert perf["trades"] == 2


def test_mean_reversion_enters_below_band_and_exits_above_mean() -> None:
    prices = frame([10, 10, 10, 7, 8, 11, 11], "A")
    signal = backtest.signal(prices, "mean_reversion", window=3, entry_z=1.0, exit_z=0.0)
    assert signal["A"].tolist() == [0, 0, 0, 1, 1, 0, 0]


def test_sma_crossover_long_only_when_fast_above_slow() -> None:
    prices = frame([5, 4, 3, 2, 3, 4, 5, 6])
    signal = backtest.signal(prices, "sma_crossover", fast=2, slow=4)["A"].tolist()
    fast = prices["A"].rolling(2).mean()
    slow = prices["A"].rolling(4).mean()
    assert signal == (fast > slow).astype(float).tolist()
    assert signal[-1] == 1.0 and signal[3] == 0.0


def test_performance_per_column_start_evaluates_only_the_window() -> None:
    prices = pd.DataFrame({"A": [1.0, 2.0, 4.0, 2.0], "B": [1.0, 2.0, 4.0, 2.0]})
    perf = backtest.performance(prices, "buy_and_hold", start=pd.Series({"A": 0, "B": 3}))
    assert perf.loc["A", "total_return"] == pytest.approx(1.0)  # x2, x2, /2
    assert perf.loc["B", "total_return"] == pytest.approx(-0.5)
    assert perf.loc["B", "days"] == 1


def test_sharpe_and_drawdown_formulas() -> None:
    rng = np.random.default_rng(3)
    returns = pd.DataFrame({"A": rng.normal(0.001, 0.01, 500)})
    r = returns["A"]
    ann_ret = (1 + r).prod() ** (252 / len(r)) - 1
    ann_vol = r.std(ddof=1) * math.sqrt(252)
    assert stats.sharpe_ratio(returns)["A"] == pytest.approx((ann_ret - 0.02) / ann_vol)
    equity = (1 + r).cumprod()
    assert stats.max_drawdown(returns)["A"] == pytest.approx(
        (equity / np.maximum(equity.cummax(), 1.0) - 1).min()
    )


def test_beta_and_correlation_of_a_levered_copy() -> None:
    rng = np.random.default_rng(5)
    market = pd.Series(rng.normal(0, 0.01, 300))
    returns = pd.DataFrame({"same": market, "double": 2 * market, "inverse": -market})
    beta, corr = stats.beta_and_correlation(returns, market)
    assert beta.to_dict() == pytest.approx({"same": 1.0, "double": 2.0, "inverse": -1.0})
    assert corr.to_dict() == pytest.approx({"same": 1.0, "double": 1.0, "inverse": -1.0})


@pytest.fixture(scope="module")
def returns() -> pd.DataFrame:
    bars = synthetic(synthetic_symbols(5), "2017-06-01", "2018-12-28")
    return to_wide(bars, "close").pct_change().iloc[1:]


def test_scenarios_are_deterministic_and_complete(returns: pd.DataFrame) -> None:
    config = ScenarioConfig(horizon=21, worst_windows=2, monte_carlo_paths=3)
    first, paths = build_scenarios(returns, "2018-12-24", config)
    again, paths_again = build_scenarios(returns, "2018-12-24", config)
    pd.testing.assert_frame_equal(first, again)
    for sid in paths:
        pd.testing.assert_frame_equal(paths[sid], paths_again[sid])
    kinds = first.groupby("kind")["scenario_id"].count().to_dict()
    assert kinds["realized"] == 1 and kinds["monte_carlo"] == 3
    # episodes inside the window: volmageddon and the Q4 2018 sell-off
    assert {"stress_volmageddon_2018", "stress_q4_selloff_2018", "worst_window_1"} <= set(paths)
    _, other_week = build_scenarios(returns.iloc[:-5], "2018-12-17", config)
    assert not np.allclose(paths["monte_carlo_0"], other_week["monte_carlo_0"])


def test_realized_and_historical_paths_are_the_observed_returns(returns: pd.DataFrame) -> None:
    definitions, paths = build_scenarios(returns, "2018-12-24")
    np.testing.assert_allclose(paths["realized"].to_numpy(), returns.iloc[-21:].to_numpy())
    lo, hi = STRESS_EPISODES["volmageddon_2018"]
    observed = returns.loc[lo:hi]
    np.testing.assert_allclose(paths["stress_volmageddon_2018"].to_numpy(), observed.to_numpy())
    row = definitions.set_index("scenario_id").loc["stress_volmageddon_2018"]
    assert row["horizon"] == len(observed)
    assert row["market_return"] == pytest.approx((1 + observed.mean(axis=1)).prod() - 1)


def test_monte_carlo_draws_whole_cross_sections_from_the_window(returns: pd.DataFrame) -> None:
    _, paths = build_scenarios(returns, "2018-12-24")
    window_rows = {tuple(np.round(r, 12)) for r in returns.to_numpy()}
    for row in paths["monte_carlo_1"].to_numpy():
        assert tuple(np.round(row, 12)) in window_rows


def test_worst_windows_do_not_overlap_and_are_worst() -> None:
    market = pd.Series([0.0] * 10 + [-0.05] * 3 + [0.0] * 10 + [-0.02] * 3 + [0.01] * 5)
    chosen = worst_windows(market, 3, 2)
    assert chosen == [(10, 12), (23, 25)]


def test_scenario_panel_compounds_from_the_anchor_and_right_aligns() -> None:
    history = pd.DataFrame({"A": [100.0, 101.0, 102.0], "B": [50.0, np.nan, 60.0]})
    definitions = pd.DataFrame(
        {"scenario_id": ["appended", "replayed"], "anchor_offset": [0, 2], "horizon": [2, 2]}
    )
    paths = pd.DataFrame(
        {
            "scenario_id": ["appended"] * 4 + ["replayed"] * 3,
            "step": [0, 0, 1, 1, 0, 1, 1],
            "symbol": ["A", "B", "A", "B", "A", "A", "B"],  # replayed B step 0 missing -> 0
            "return": [0.1, 0.2, -0.5, 0.0, 0.1, -0.5, 0.5],
        }
    )
    panel, starts = scenario_panel(history, definitions, paths)
    assert panel["appended"]["A"].tolist() == pytest.approx([100, 101, 102, 112.2, 56.1])
    assert panel["appended"]["B"].tolist() == pytest.approx([50, np.nan, 60, 72, 72], nan_ok=True)
    # anchor 2 sessions back: observed 100 then the path from 100; NaN above (right-aligned)
    assert panel["replayed"]["A"].tolist() == pytest.approx(
        [np.nan, np.nan, 100, 110, 55], nan_ok=True
    )
    assert panel["replayed"]["B"].tolist() == pytest.approx(
        [np.nan, np.nan, 50, 50, 75], nan_ok=True
    )
    assert starts.tolist() == [3, 3, 3, 3]


def test_too_little_history_is_a_clear_error(returns: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="need at least 63 sessions of history, found 10"):
        build_scenarios(returns.iloc[:10], "2017-06-19")


def test_long_paths_keep_each_scenarios_step_symbol_and_return() -> None:
    paths = {
        "realized": pd.DataFrame({"A": [0.01, 0.02], "B": [0.03, 0.04]}),
        "stress": pd.DataFrame({"B": [-0.1], "A": [-0.2], "C": [0.5]}),  # other order, new symbol
    }
    rows = long_paths(paths)
    assert list(rows.columns) == ["scenario_id", "step", "symbol", "return"]
    assert len(rows) == 4 + 3
    got = {(r.scenario_id, r.step, r.symbol): r["return"] for _, r in rows.iterrows()}
    want = {
        (sid, step, symbol): path.loc[step, symbol]
        for sid, path in paths.items()
        for step in path.index
        for symbol in path.columns
    }
    assert got == want


@pytest.mark.parametrize("strategy", list(backtest.STRATEGIES))
def test_scenarios_reuse_the_observed_histories_signal(strategy: str) -> None:
    """A week's scenario backtests with the signal carried in from the observed history (as
    the backtest_results asset runs them) equal the backtests over every panel row."""
    closes = to_wide(synthetic(synthetic_symbols(30), "2018-01-01", "2019-03-01"), "close")
    observed = closes.iloc[-280:]
    definitions, paths = build_scenarios(observed.pct_change(fill_method=None).iloc[1:], "w")
    panel, starts = scenario_panel(observed, definitions, long_paths(paths))
    assert definitions["anchor_offset"].nunique() == 2 and starts.nunique() > 1  # mixed shapes
    params = {
        "mean_reversion": {"window": 10, "entry_z": 0.8},
        "sma_crossover": {"fast": 60, "slow": 20},  # the longer window is the warm-up
    }.get(strategy, {})
    before = rows_before_scenarios(len(observed), definitions, observed.shape[1])
    carry = backtest.signal_array(observed.to_numpy(), strategy, params)[before]
    shared = backtest.performance(panel, strategy, starts, params, carry=carry)
    every_row = backtest.performance(panel, strategy, starts, params)
    assert shared["trades"].sum() > 0 or strategy == "buy_and_hold"
    pd.testing.assert_frame_equal(shared, every_row, rtol=1e-12)


def test_path_cube_is_the_pivot_of_the_long_rows_by_position() -> None:
    rows = pd.DataFrame(
        {
            "scenario_id": ["b", "a", "a", "b", "a"],
            "step": [0, 1, 0, 1, 2],
            "symbol": ["X", "Y", "X", "Y", "X"],
            "return": [0.1, 0.2, 0.3, 0.4, 0.5],
        }
    )
    ids, symbols = pd.Index(["a", "b"]), pd.Index(["X", "Y"])
    cube = path_cube(rows, ids, symbols)
    pivot = rows.pivot(index="step", columns=["scenario_id", "symbol"], values="return")
    for i, sid in enumerate(ids):
        for j, symbol in enumerate(symbols):
            expected = pivot.get((sid, symbol), pd.Series(np.nan, index=pivot.index))
            np.testing.assert_array_equal(cube[i, :, j], expected.reindex(range(3)).to_numpy())
    assert np.isnan(cube[1, 2]).all() and np.isnan(cube[0, 0, 1])  # absent rows stay NaN
    odd = pd.concat(
        [
            rows,
            pd.DataFrame(
                {
                    "scenario_id": ["c", None],
                    "step": [0, 0],
                    "symbol": ["X", "Y"],
                    "return": [9.0, 9.0],
                }
            ),
        ]
    )
    np.testing.assert_array_equal(path_cube(odd, ids, symbols), cube)  # unknown or no id: left out
