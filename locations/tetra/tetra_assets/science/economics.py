"""Macro-economic series as they were known on each trading session (no look-ahead).

Long format ``ECONOMIC_COLUMNS``: ``date`` (session), ``series``, ``value`` and
``observation_date`` (the period the value describes). Monthly series become known with a
publication lag: CPI (``core_cpi``, index 1982-84=100) 45 days after the month starts, Moody's
AAA/BAA yields (percent) one month after; daily series (VIX points, WTI USD/barrel) on their day.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tetra_assets.science.calendar import trading_sessions
from tetra_assets.science.ohlcv import DataFormatError

ECONOMIC_COLUMNS = ["date", "series", "value", "observation_date"]


def empty_economic() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.Series(dtype="datetime64[ns]"),
            "series": pd.Series(dtype="object"),
            "value": pd.Series(dtype="float64"),
            "observation_date": pd.Series(dtype="datetime64[ns]"),
        }
    )


def asof_table(
    observations: dict[str, pd.Series], lags: dict[str, pd.DateOffset], start: str, end: str
) -> pd.DataFrame:
    """For each session and series, the latest observation already published by then."""
    sessions = pd.DataFrame({"date": trading_sessions(start, end)})
    if sessions.empty:
        return empty_economic()
    parts = []
    for name, series in observations.items():
        known = pd.DataFrame(
            {
                "available": series.index + lags.get(name, pd.DateOffset(0)),
                "value": series.to_numpy(dtype=float),
                "observation_date": series.index,
            }
        ).sort_values("available")
        known["available"] = known["available"].astype("datetime64[ns]")
        merged = pd.merge_asof(sessions, known, left_on="date", right_on="available")
        merged = merged.dropna(subset=["value"])
        merged["series"] = name
        parts.append(merged[ECONOMIC_COLUMNS])
    if not parts:
        return empty_economic()
    table = pd.concat(parts, ignore_index=True).sort_values(["date", "series"])
    table["observation_date"] = table["observation_date"].astype("datetime64[ns]")
    return table.reset_index(drop=True)


def bundled_asof(start: str, end: str) -> pd.DataFrame:
    """CPI, corporate bond yields, VIX and WTI from the ``arch`` wheel."""
    from arch.data import core_cpi, default, vix, wti

    yields = default.load()
    observations = {
        "core_cpi": core_cpi.load()["CPILFESL"],
        "aaa_yield": yields["AAA"],
        "baa_yield": yields["BAA"],
        "default_spread": yields["BAA"] - yields["AAA"],
        "vix": vix.load()["vix"],
        "wti": pd.to_numeric(wti.load()["DCOILWTICO"], errors="coerce").dropna(),
    }
    monthly = pd.DateOffset(months=1)
    lags = {
        "core_cpi": pd.DateOffset(days=45),
        "aaa_yield": monthly,
        "baa_yield": monthly,
        "default_spread": monthly,
    }
    return asof_table(observations, lags, start, end)


def synthetic_asof(start: str, end: str, seed: int = 7) -> pd.DataFrame:
    """Deterministic daily rate and volatility-index series (AR(1)) from 1995 on."""
    days = trading_sessions("1995-01-03", end)
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, 1.0, (2, len(days)))
    rate, vol = np.empty(len(days)), np.empty(len(days))
    level_rate, level_vol = 3.0, 18.0
    for i in range(len(days)):
        level_rate = 3.0 + 0.995 * (level_rate - 3.0) + 0.03 * shocks[0, i]
        level_vol = 18.0 + 0.97 * (level_vol - 18.0) + 1.2 * shocks[1, i]
        rate[i], vol[i] = level_rate, max(level_vol, 8.0)
    observations = {"short_rate": pd.Series(rate, days), "vix": pd.Series(vol, days)}
    return asof_table(observations, {}, start, end)


def csv_asof(path: Path, start: str, end: str) -> pd.DataFrame:
    """Optional ``economic.csv`` (columns date, series, value): empty if the file is absent."""
    if not path.exists():
        return empty_economic()
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in ("date", "series", "value") if c not in raw.columns]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {', '.join(missing)}")
    dates = pd.to_datetime(raw["date"], format="%Y-%m-%d", errors="coerce")
    values = pd.to_numeric(raw["value"], errors="coerce")
    for column, parsed in (("date", dates), ("value", values)):
        if parsed.isna().any():
            row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            raise DataFormatError(
                f"{path}: row {row + 2}, column {column}: {raw[column].iloc[row]!r} is invalid"
            )
    observations = {
        name: pd.Series(values[group.index].to_numpy(), index=dates[group.index]).sort_index()
        for name, group in raw.groupby("series")
    }
    return asof_table(observations, {}, start, end)
