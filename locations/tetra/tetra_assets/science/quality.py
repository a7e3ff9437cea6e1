"""Data-quality rules for long OHLCV tables; each rule returns the offending rows."""

from __future__ import annotations

import pandas as pd

from tetra_assets.science.calendar import trading_sessions
from tetra_assets.science.ohlcv import PRICE_COLUMNS


def duplicate_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose (symbol, date) occurs more than once."""
    return frame[frame.duplicated(["symbol", "date"], keep=False)]


def non_positive_prices(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with any open/high/low/close <= 0."""
    return frame[(frame[PRICE_COLUMNS] <= 0).any(axis=1)]


def high_below_low(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows where high < low (an impossible bar)."""
    return frame[frame["high"] < frame["low"]]


def missing_values(frame: pd.DataFrame) -> pd.Series:
    """Count of missing values per column (only columns with any)."""
    counts = frame.isna().sum()
    return counts[counts > 0]


def session_gaps(frame: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    """(symbol, date) pairs that are NYSE sessions in [start, end] inside the symbol's own
    observed span but have no row: holidays and weekends are not gaps."""
    sessions = trading_sessions(start, end)
    gaps = []
    for symbol, rows in frame.groupby("symbol"):
        span = sessions[(sessions >= rows["date"].min()) & (sessions <= rows["date"].max())]
        absent = span.difference(pd.DatetimeIndex(rows["date"]))
        gaps.extend({"symbol": symbol, "date": day} for day in absent)
    return pd.DataFrame(gaps, columns=["symbol", "date"])
