"""Market events detected in daily bars (long OHLCV in, long events table out).

Events per (date, symbol): ``return_shock`` (|daily return| >= 3 standard deviations of the
previous 60 sessions), ``opening_gap`` (|open / previous close - 1| >= 2 %), ``new_high`` /
``new_low`` (close beyond the previous 60 sessions' highest high / lowest low).
"""

from __future__ import annotations

import pandas as pd

from tetra_assets.science.ohlcv import to_wide

EVENT_COLUMNS = ["date", "symbol", "event", "value", "threshold"]
WINDOW = 60
SHOCK_Z = 3.0
GAP = 0.02


def detect(bars: pd.DataFrame, since: pd.Timestamp | None = None) -> pd.DataFrame:
    """All events on dates >= ``since``; earlier bars serve as the trailing window."""
    if bars.empty:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    close, open_ = to_wide(bars, "close"), to_wide(bars, "open")
    high, low = to_wide(bars, "high"), to_wide(bars, "low")
    returns = close.pct_change(fill_method=None)
    sigma = returns.rolling(WINDOW, min_periods=WINDOW).std().shift(1)
    gap = open_ / close.shift(1) - 1.0
    prior_high = high.rolling(WINDOW, min_periods=WINDOW).max().shift(1)
    prior_low = low.rolling(WINDOW, min_periods=WINDOW).min().shift(1)
    found = []
    for name, value, threshold, hit in (
        ("return_shock", returns, SHOCK_Z * sigma, returns.abs() >= SHOCK_Z * sigma),
        ("opening_gap", gap, pd.DataFrame(GAP, gap.index, gap.columns), gap.abs() >= GAP),
        ("new_high", close, prior_high, close > prior_high),
        ("new_low", close, prior_low, close < prior_low),
    ):
        mask = hit.fillna(False).astype(bool)
        if since is not None:
            mask &= (mask.index >= since)[:, None]
        table = pd.DataFrame(
            {"value": value.where(mask).stack(), "threshold": threshold.where(mask).stack()}
        ).dropna(subset=["value"])
        table["event"] = name
        found.append(table.reset_index())
    events = pd.concat(found, ignore_index=True)
    return events[EVENT_COLUMNS].sort_values(["date", "symbol", "event"]).reset_index(drop=True)
