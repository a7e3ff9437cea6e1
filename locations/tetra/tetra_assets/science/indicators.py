"""Technical indicators on wide price frames (index: date, one column per symbol).

Conventions (those of TA-Lib and the charting platforms): EMA uses ``span`` with
``adjust=False`` (recursive, ``alpha = 2/(span+1)``, seeded with the first value); RSI and ATR
use Wilder smoothing (``alpha = 1/n``, recursive, defined once ``n`` observations exist);
Bollinger bands use the population standard deviation (``ddof=0``) over ``n`` days, as
Bollinger defined them; historical volatility is the sample std (``ddof=1``) of daily log
returns times sqrt(252). A recursive indicator equals TA-Lib's on the full history once the
seed's remaining weight ``(1 - alpha)**sessions`` is negligible: see ``warm_up_sessions``.
OBV is a running sum: its level depends on where the loaded history starts, its changes do not.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

TRADING_DAYS = 252
SMA_WINDOWS = (5, 10, 20, 50, 100, 200)
EMA_SPANS = (12, 26, 50, 200)
SEED_RESIDUAL = 1e-12  # remaining weight of a recursion's seed below which it is forgotten


def ema_alpha(span: int) -> float:
    return 2.0 / (span + 1.0)


def warm_up_sessions(alpha: float, residual: float = SEED_RESIDUAL) -> int:
    """Sessions of history after which a recursion ``y = alpha*x + (1-alpha)*y`` keeps less
    than ``residual`` of its seed, so its value no longer depends on where history starts."""
    return math.ceil(math.log(residual) / math.log1p(-alpha))


def seed_weight(alpha: float, sessions: int) -> float:
    """Weight left on the seed of a recursion after ``sessions`` more sessions (0..1)."""
    return (1.0 - alpha) ** sessions


# The slowest recursion of the table (EMA-200) sets the warm-up history: 2,764 sessions.
RECURSIVE_WARM_UP_SESSIONS = warm_up_sessions(ema_alpha(max(EMA_SPANS)))


def _like(frame: pd.DataFrame, values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(values, index=frame.index, columns=frame.columns)


def rolling_mean_array(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` rows of a 2-D array, NaN unless all are present.

    Cumulative sums of values shifted by each column's first value keep the rounding error
    near 1e-12 relative for prices."""
    out = np.full(x.shape, np.nan)
    n = len(x)
    if n < window:
        return out
    valid = ~np.isnan(x)
    origin = np.nan_to_num(x[0])
    sums = np.zeros((n + 1, x.shape[1]))
    np.cumsum(np.where(valid, x - origin, 0.0), axis=0, out=sums[1:])
    mean = (sums[window:] - sums[:-window]) / window + origin
    if not valid.all():
        counts = np.zeros((n + 1, x.shape[1]), dtype=np.int64)
        np.cumsum(valid, axis=0, out=counts[1:])
        mean[(counts[window:] - counts[:-window]) != window] = np.nan
    out[window - 1 :] = mean
    return out


def rolling_std_array(x: np.ndarray, window: int, ddof: int = 1) -> np.ndarray:
    """Standard deviation (``ddof`` 1: sample, 0: population) of the last ``window`` rows,
    NaN if any is missing.

    Two passes: deviations from the (accurate) rolling mean, summed over the ``window``
    offsets, so the work is ``window`` whole-array operations rather than a strided view."""
    out = np.full(x.shape, np.nan)
    n = len(x)
    if n >= window > ddof:
        mean = rolling_mean_array(x, window)[window - 1 :]
        squares = np.zeros_like(mean)
        for k in range(window):
            deviation = x[k : n - window + 1 + k] - mean
            squares += deviation * deviation
        out[window - 1 :] = np.sqrt(squares / (window - ddof))
    return out


def rolling_mean(frame: pd.DataFrame, window: int) -> pd.DataFrame:
    return _like(frame, rolling_mean_array(frame.to_numpy(dtype=float), window))


def rolling_std(frame: pd.DataFrame, window: int, ddof: int = 1) -> pd.DataFrame:
    return _like(frame, rolling_std_array(frame.to_numpy(dtype=float), window, ddof))


def sma(close: pd.DataFrame, window: int) -> pd.DataFrame:
    return rolling_mean(close, window)


def ema(close: pd.DataFrame, span: int) -> pd.DataFrame:
    return close.ewm(alpha=ema_alpha(span), adjust=False).mean()


def wilder(values: pd.DataFrame, n: int) -> pd.DataFrame:
    return values.ewm(alpha=1.0 / n, adjust=False, min_periods=n).mean()


def rsi(close: pd.DataFrame, n: int = 14) -> pd.DataFrame:
    delta = close.diff()
    gain = wilder(delta.clip(lower=0.0), n)
    loss = wilder((-delta).clip(lower=0.0), n)
    return 100.0 - 100.0 / (1.0 + gain / loss)


def macd(
    close: pd.DataFrame, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    line = ema(close, fast) - ema(close, slow)
    signal_line = line.ewm(span=signal, adjust=False).mean()
    return line, signal_line, line - signal_line


def bollinger(
    close: pd.DataFrame, n: int = 20, k: float = 2.0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    mid = sma(close, n)
    std = rolling_std(close, n, ddof=0)
    return mid, mid + k * std, mid - k * std


def atr(high: pd.DataFrame, low: pd.DataFrame, close: pd.DataFrame, n: int = 14) -> pd.DataFrame:
    prev = close.shift(1)
    true_range = np.maximum(high - low, np.maximum((high - prev).abs(), (low - prev).abs()))
    true_range = true_range.where(prev.notna(), high - low)
    return wilder(true_range, n)


def obv(close: pd.DataFrame, volume: pd.DataFrame) -> pd.DataFrame:
    direction = np.sign(close.diff()).fillna(0.0)
    return (direction * volume).cumsum()


def historical_volatility(close: pd.DataFrame, n: int) -> pd.DataFrame:
    log_returns = np.log(close / close.shift(1))
    return rolling_std(log_returns, n) * np.sqrt(TRADING_DAYS)


def _require(what: str, frame: pd.DataFrame, family: str) -> None:
    """Refuse a family whose input column is missing for a whole symbol (an index file
    without volume, a close-only series): its values would be NaN that look like warm-up."""
    empty = frame.columns[frame.isna().all()].tolist()
    if empty:
        raise ValueError(f"{family} needs {what}: no {what} for {', '.join(map(str, empty))}")


def _with_volume(close: pd.DataFrame, volume: pd.DataFrame) -> pd.DataFrame:
    _require("volume", volume, "obv")
    return obv(close, volume)


def _with_range(high: pd.DataFrame, low: pd.DataFrame, close: pd.DataFrame) -> pd.DataFrame:
    _require("high", high, "atr")
    _require("low", low, "atr")
    return atr(high, low, close, 14)


Prices = dict[str, pd.DataFrame]  # close, high, low, volume: wide frames
# Each indicator family's columns from the wide prices: the unit of partial recovery (a
# family that fails leaves the others' columns intact).
FAMILIES: dict[str, Callable[[Prices], dict[str, pd.DataFrame]]] = {
    "sma": lambda p: {f"sma_{w}": sma(p["close"], w) for w in SMA_WINDOWS},
    "ema": lambda p: {f"ema_{s}": ema(p["close"], s) for s in EMA_SPANS},
    "rsi": lambda p: {"rsi_14": rsi(p["close"], 14)},
    "macd": lambda p: dict(
        zip(("macd", "macd_signal", "macd_hist"), macd(p["close"]), strict=True)
    ),
    "bollinger": lambda p: dict(
        zip(("bb_mid", "bb_upper", "bb_lower"), bollinger(p["close"]), strict=True)
    ),
    "atr": lambda p: {"atr_14": _with_range(p["high"], p["low"], p["close"])},
    "obv": lambda p: {"obv": _with_volume(p["close"], p["volume"])},
    "hv": lambda p: {
        "hv_20": historical_volatility(p["close"], 20),
        "hv_252": historical_volatility(p["close"], TRADING_DAYS),
    },
}


def long_table(
    close: pd.DataFrame, columns: dict[str, pd.DataFrame], since: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Wide indicator frames as one long table (date, symbol, close, indicators...), for
    dates >= ``since`` (all if None); earlier rows serve only as warm-up history."""
    keep = close.index >= since if since is not None else slice(None)
    frames = {"close": close, **columns}
    stacked = {name: frame.loc[keep].stack(future_stack=True) for name, frame in frames.items()}
    table = pd.DataFrame(stacked)
    table.index.names = ["date", "symbol"]
    return table.reset_index()


def indicator_table(
    close: pd.DataFrame,
    high: pd.DataFrame,
    low: pd.DataFrame,
    volume: pd.DataFrame,
    since: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """All indicator families as a long table, one row per (date, symbol), for dates >=
    ``since``; a family that cannot be computed raises ``ValueError``."""
    prices = {"close": close, "high": high, "low": low, "volume": volume}
    columns = {k: v for family in FAMILIES.values() for k, v in family(prices).items()}
    return long_table(close, columns, since)
