"""Vectorised long/flat strategy backtests on wide price frames.

Every strategy maps prices to a target signal in {0, 1}; the position held on day t is the
signal at the close of day t-1 (``position = signal.shift(1)``), so no strategy trades on
information it does not have. Equity = capital * cumprod(1 + position * daily return).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from tetra_assets.science.indicators import rolling_mean, rolling_std, sma
from tetra_assets.science.stats import RISK_FREE, TRADING_DAYS

Signal = Callable[[pd.DataFrame], pd.DataFrame]


def buy_and_hold(close: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(1.0, index=close.index, columns=close.columns)


def sma_crossover(close: pd.DataFrame, fast: int = 50, slow: int = 200) -> pd.DataFrame:
    """Long while the fast SMA is above the slow SMA."""
    return (sma(close, fast) > sma(close, slow)).astype(float)


def momentum(close: pd.DataFrame, lookback: int = 60) -> pd.DataFrame:
    """Long while the trailing ``lookback``-day return is positive (time-series momentum)."""
    return (close / close.shift(lookback) - 1.0 > 0.0).astype(float)


def mean_reversion(
    close: pd.DataFrame, window: int = 20, entry_z: float = 1.0, exit_z: float = 0.0
) -> pd.DataFrame:
    """Enter long when the z-score vs the ``window``-day mean falls below ``-entry_z``;
    exit when it rises above ``exit_z``; hold in between."""
    mean = rolling_mean(close, window)
    std = rolling_std(close, window)
    z = (close - mean) / std
    state = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
    state = state.mask(z < -entry_z, 1.0).mask(z > exit_z, 0.0)
    return state.ffill().fillna(0.0)


STRATEGIES: dict[str, Signal] = {
    "buy_and_hold": buy_and_hold,
    "sma_crossover": sma_crossover,
    "momentum": momentum,
    "mean_reversion": mean_reversion,
}


def positions(close: pd.DataFrame, strategy: str, **params: float) -> pd.DataFrame:
    """Position held each day (yesterday's signal); ``params`` override strategy defaults."""
    return STRATEGIES[strategy](close, **params).shift(1).fillna(0.0)


def _evaluated(
    close: pd.DataFrame, strategy: str, start: pd.Series | int, params: dict[str, float]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily strategy returns and positions, NaN before each column's first evaluated row."""
    returns = close.pct_change(fill_method=None).fillna(0.0)
    position = positions(close, strategy, **params)
    first = pd.Series(start, index=close.columns) if np.isscalar(start) else start
    in_window = np.arange(len(close))[:, None] >= first.to_numpy()[None, :]
    return (position * returns).where(in_window), position.where(in_window)


def equity_curves(
    close: pd.DataFrame,
    strategy: str,
    start: pd.Series | int = 0,
    capital: float = 1.0,
    params: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Equity per column from row ``start`` on (per column if a Series); earlier rows only
    warm up the signals and stay at ``capital``."""
    daily, _ = _evaluated(close, strategy, start, params or {})
    return capital * (1.0 + daily.fillna(0.0)).cumprod()


def performance(
    close: pd.DataFrame,
    strategy: str,
    start: pd.Series | int = 0,
    params: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Per column: total and annualised return, volatility, Sharpe, drawdown, trades."""
    daily, held = _evaluated(close, strategy, start, params or {})
    equity = (1.0 + daily.fillna(0.0)).cumprod()
    days = daily.notna().sum()
    total = equity.iloc[-1] - 1.0
    ann_return = (1.0 + total) ** (TRADING_DAYS / days.replace(0, np.nan)) - 1.0
    ann_vol = daily.std(ddof=1) * np.sqrt(TRADING_DAYS)
    drawdown = (equity / np.maximum(equity.cummax(), 1.0) - 1.0).min()
    entries = held.fillna(0.0).diff().abs()
    entries.iloc[0] = held.iloc[0].fillna(0.0).abs()
    return pd.DataFrame(
        {
            "total_return": total,
            "annualised_return": ann_return,
            "annualised_volatility": ann_vol,
            "sharpe": (ann_return - RISK_FREE) / ann_vol.replace(0.0, np.nan),
            "max_drawdown": drawdown,
            "trades": entries.sum(),
            "exposure": held.mean(),
            "days": days,
        }
    )
