"""Vectorised long/flat strategy backtests on wide price frames (NumPy inside).

Every strategy maps prices to a target signal in {0, 1}; the position held on day t is the
signal at the close of day t-1 (``position = signal.shift(1)``), so no strategy trades on
information it does not have. Equity = capital * cumprod(1 + position * daily return).

A strategy is a *decision* function: 1 (be long) or 0 (be flat) where the close decides, NaN
where it keeps the previous signal (only mean reversion's band does); the signal is the
decisions carried forward, flat before the first. Every decision looks back a fixed number of
sessions (``WARM_UP``), so the signal from some row on follows from the rows a warm-up before
it and the signal in force just before it (``carry``): scenarios that share their observed
history compute it once (see ``performance``).
"""

import inspect
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from tetra_assets.science.indicators import rolling_mean_array, rolling_std_array
from tetra_assets.science.stats import RISK_FREE, TRADING_DAYS

SignalFn = Callable[..., np.ndarray]


def _shift(x: np.ndarray, periods: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    if periods < len(x):
        out[periods:] = x[: len(x) - periods]
    return out


def _ffill(x: np.ndarray) -> np.ndarray:
    rows = np.where(~np.isnan(x), np.arange(len(x))[:, None], 0)
    np.maximum.accumulate(rows, axis=0, out=rows)
    return x[rows, np.arange(x.shape[1])[None, :]]


def buy_and_hold(x: np.ndarray) -> np.ndarray:
    return np.ones(x.shape)


def sma_crossover(x: np.ndarray, fast: int = 50, slow: int = 200) -> np.ndarray:
    """Long while the fast SMA is above the slow SMA."""
    with np.errstate(invalid="ignore"):
        return (rolling_mean_array(x, fast) > rolling_mean_array(x, slow)).astype(float)


def momentum(x: np.ndarray, lookback: int = 60) -> np.ndarray:
    """Long while the trailing ``lookback``-day return is positive (time-series momentum)."""
    with np.errstate(invalid="ignore"):
        return (x / _shift(x, lookback) - 1.0 > 0.0).astype(float)


def mean_reversion(
    x: np.ndarray, window: int = 20, entry_z: float = 1.0, exit_z: float = 0.0
) -> np.ndarray:
    """Enter long when the z-score vs the ``window``-day mean falls below ``-entry_z``;
    exit when it rises above ``exit_z``; hold in between (NaN: keep the signal)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - rolling_mean_array(x, window)) / rolling_std_array(x, window)
        return np.where(z < -entry_z, 1.0, np.where(z > exit_z, 0.0, np.nan))


STRATEGIES: dict[str, SignalFn] = {
    "buy_and_hold": buy_and_hold,
    "sma_crossover": sma_crossover,
    "momentum": momentum,
    "mean_reversion": mean_reversion,
}

# Sessions before a row that its decision reads, from the strategy's parameters.
WARM_UP: dict[str, Callable[[dict[str, float]], int]] = {
    "buy_and_hold": lambda p: 0,
    "sma_crossover": lambda p: max(int(p["fast"]), int(p["slow"])) - 1,
    "momentum": lambda p: int(p["lookback"]),
    "mean_reversion": lambda p: int(p["window"]) - 1,
}


def _with_defaults(strategy: str, params: dict[str, float]) -> dict[str, float]:
    defaults = inspect.signature(STRATEGIES[strategy]).parameters.items()
    return {n: p.default for n, p in defaults if p.default is not p.empty} | params


def signal_array(x: np.ndarray, strategy: str, params: dict[str, float]) -> np.ndarray:
    """Signal at each row of a 2-D price array: decisions carried forward, flat before."""
    return np.nan_to_num(_ffill(STRATEGIES[strategy](x, **params)), nan=0.0)


def signal(close: pd.DataFrame, strategy: str, **params: float) -> pd.DataFrame:
    """Target signal at each close (DataFrame in, DataFrame out)."""
    values = signal_array(close.to_numpy(dtype=float), strategy, params)
    return pd.DataFrame(values, index=close.index, columns=close.columns)


def _held(signal_rows: np.ndarray) -> np.ndarray:
    """Position held each day: yesterday's signal, flat before the first one."""
    return np.nan_to_num(_shift(signal_rows, 1))


def positions(close: pd.DataFrame, strategy: str, **params: float) -> pd.DataFrame:
    """Position held each day (yesterday's signal); ``params`` override strategy defaults."""
    held = _held(signal_array(close.to_numpy(dtype=float), strategy, params))
    return pd.DataFrame(held, index=close.index, columns=close.columns)


def _signal_from(
    x: np.ndarray, first: np.ndarray, lo: int, carry: np.ndarray, strategy: str, params: dict
) -> np.ndarray:
    """Rows ``lo:`` of the signal when ``carry`` (per column) is the signal at row
    ``first - 1``: decisions on the rows from the warm-up before the earliest ``first`` only,
    those before each column's ``first`` replaced by its carry. Equals the signal computed on
    all rows up to the rounding of the rolling sums."""
    params = _with_defaults(strategy, params)
    top = max(int(first.min()) - 1 - WARM_UP[strategy](params), 0)
    decisions = STRATEGIES[strategy](x[top:], **params)
    rows = np.arange(top, len(x))[:, None]
    decisions = np.where(rows < first[None, :], np.nan, decisions)
    decisions = np.where(rows == first[None, :] - 1, carry[None, :], decisions)
    return np.nan_to_num(_ffill(decisions), nan=0.0)[lo - top :]


def _evaluated(
    close: pd.DataFrame,
    strategy: str,
    start: pd.Series | int,
    params: dict[str, float],
    carry: np.ndarray | None = None,
) -> tuple[int, np.ndarray, np.ndarray]:
    """Daily strategy returns and positions from row ``lo`` (the row before the earliest
    evaluated one) on, NaN before each column's first evaluated row. Signals are computed on
    all rows (warm-up), or, given ``carry``, from the warm-up before the evaluated rows."""
    x = close.to_numpy(dtype=float)
    first = np.full(x.shape[1], start) if np.isscalar(start) else start.to_numpy()
    lo = max(int(first.min()) - 1, 0) if len(first) else 0
    tail = x[lo:]
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = np.nan_to_num(tail / _shift(tail, 1) - 1.0)
    if carry is None or not len(first) or first.min() < 1:
        signals = signal_array(x, strategy, params)[lo:]
    else:
        signals = _signal_from(x, first, lo, carry, strategy, params)
    held = _held(signals)
    outside = np.arange(lo, len(x))[:, None] < first[None, :]
    return lo, np.where(outside, np.nan, held * returns), np.where(outside, np.nan, held)


def equity_curves(
    close: pd.DataFrame,
    strategy: str,
    start: pd.Series | int = 0,
    capital: float = 1.0,
    params: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Equity per column from row ``start`` on (per column if a Series); earlier rows only
    warm up the signals and stay at ``capital``."""
    lo, daily, _ = _evaluated(close, strategy, start, params or {})
    equity = np.full(close.shape, capital)
    equity[lo:] = capital * np.cumprod(1.0 + np.nan_to_num(daily), axis=0)
    return pd.DataFrame(equity, index=close.index, columns=close.columns)


def performance(
    close: pd.DataFrame,
    strategy: str,
    start: pd.Series | int = 0,
    params: dict[str, float] | None = None,
    carry: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per column: total and annualised return, volatility, Sharpe, drawdown, trades, over the
    rows from ``start`` on. ``carry``: the signal at row ``start - 1`` per column, when the
    caller has it (scenarios replaying one observed history: ``signal_array`` of that history
    once, instead of again under every scenario)."""
    _, daily, held = _evaluated(close, strategy, start, params or {}, carry)
    equity = np.cumprod(1.0 + np.nan_to_num(daily), axis=0)
    days = (~np.isnan(daily)).sum(axis=0)
    total = equity[-1] - 1.0
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # one-day or empty windows -> NaN
        ann_return = (1.0 + total) ** (TRADING_DAYS / np.where(days > 0, days, np.nan)) - 1.0
        ann_vol = np.nanstd(daily, axis=0, ddof=1) * np.sqrt(TRADING_DAYS)
        sharpe = (ann_return - RISK_FREE) / np.where(ann_vol > 0, ann_vol, np.nan)
        drawdown = (equity / np.maximum(np.maximum.accumulate(equity, axis=0), 1.0) - 1.0).min(0)
        filled = np.nan_to_num(held)
        trades = np.abs(np.diff(filled, axis=0)).sum(axis=0) + np.abs(filled[0])
        exposure = np.nanmean(held, axis=0)
    return pd.DataFrame(
        {
            "total_return": total,
            "annualised_return": ann_return,
            "annualised_volatility": ann_vol,
            "sharpe": sharpe,
            "max_drawdown": drawdown,
            "trades": trades,
            "exposure": exposure,
            "days": days,
        },
        index=close.columns,
    )


def mean_equity_curves(
    closes: pd.DataFrame, start: int, params: dict[str, dict[str, float]]
) -> pd.DataFrame:
    """Per strategy of ``STRATEGIES`` (with its ``params``), the equal-weighted mean over the
    symbols of ``closes`` of the equity curve from row ``start`` on (1.0 the session before,
    so each curve starts at its capital): the report's realized-scenario plot."""
    return pd.DataFrame(
        {
            name: equity_curves(closes, name, start, params=params[name])
            .iloc[start - 1 :]
            .mean(axis=1)
            .to_numpy()
            for name in STRATEGIES
        }
    )
