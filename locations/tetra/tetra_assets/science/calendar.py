"""Exchange trading sessions (NYSE) as plain dates."""

from __future__ import annotations

from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

CALENDAR_START = "1990-01-02"


@lru_cache(maxsize=1)
def _nyse() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS", start=CALENDAR_START)


def trading_sessions(start: str | pd.Timestamp, end: str | pd.Timestamp) -> pd.DatetimeIndex:
    """NYSE sessions in ``[start, end]`` (naive dates), clipped to the calendar's range."""
    cal = _nyse()
    lo = max(pd.Timestamp(start), cal.first_session)
    hi = min(pd.Timestamp(end), cal.last_session)
    if lo > hi:
        return pd.DatetimeIndex([])
    return pd.DatetimeIndex(cal.sessions_in_range(lo, hi)).tz_localize(None)


def sessions_between(earlier: str | pd.Timestamp, later: str | pd.Timestamp) -> int:
    """NYSE sessions after ``earlier`` up to and including ``later``: how many sessions old
    ``earlier``'s value is on ``later`` (0 when ``later`` is not after it)."""
    return len(trading_sessions(pd.Timestamp(earlier) + pd.Timedelta(days=1), later))
