"""Daily OHLCV data: the long table format, the three providers and format validation.

Long format: one row per (date, symbol) with columns ``OHLCV_COLUMNS``; prices in the
instrument's currency, volume in shares (or index units), dates naive (exchange local day).

Providers:
- ``load_bundled``: real S&P 500 and NASDAQ Composite daily bars 1999-2018 from the ``arch``
  wheel (symbols ``SP500`` and ``NASDAQ``).
- ``load_csv_directory``: one ``<SYMBOL>.csv`` per symbol, columns ``date, open, high, low,
  close, volume`` (case-insensitive; extra columns ignored; ``date`` as ``YYYY-MM-DD``).
- ``synthetic``: deterministic geometric random walks on NYSE sessions for any number of
  symbols (``SYN000``, ``SYN001`` ...), continuous across any date range.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tetra_assets.science.calendar import trading_sessions

OHLCV_COLUMNS = ["date", "symbol", "open", "high", "low", "close", "volume"]
PRICE_COLUMNS = ["open", "high", "low", "close"]
CSV_REQUIRED = ["date", "open", "high", "low", "close", "volume"]
BUNDLED_SYMBOLS = ("SP500", "NASDAQ")
SYNTHETIC_ORIGIN = "1995-01-03"


class DataFormatError(ValueError):
    """Input data that is wrong (not transient): the message names file, row and column."""


class ProviderUnavailable(RuntimeError):
    """A transient provider failure (network, lock, missing mount): worth a retry."""


def empty_ohlcv() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in OHLCV_COLUMNS})
    frame["date"] = pd.Series(dtype="datetime64[ns]")
    frame["symbol"] = pd.Series(dtype="object")
    return frame


def _finish(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    frame = frame[(frame["date"] >= start) & (frame["date"] <= end)]
    frame = frame.astype({c: "float64" for c in [*PRICE_COLUMNS, "volume"]})
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    return frame[OHLCV_COLUMNS].sort_values(["date", "symbol"]).reset_index(drop=True)


def _check_symbols(requested: list[str], available: list[str], where: str) -> None:
    unknown = sorted(set(requested) - set(available))
    if unknown:
        raise DataFormatError(
            f"unknown symbol(s) {', '.join(unknown)} in {where}; available: "
            f"{', '.join(sorted(available)) or 'none'}"
        )


def load_bundled(symbols: list[str], start: str, end: str) -> pd.DataFrame:
    """Real daily bars shipped in the ``arch`` wheel (1999-01-04 .. 2018-12-31)."""
    from arch.data import nasdaq, sp500

    _check_symbols(symbols, list(BUNDLED_SYMBOLS), "the bundled arch data")
    loaders = {"SP500": sp500.load, "NASDAQ": nasdaq.load}
    parts = []
    for symbol in symbols:
        raw = loaders[symbol]()
        parts.append(
            pd.DataFrame(
                {
                    "date": raw.index,
                    "symbol": symbol,
                    "open": raw["Open"].to_numpy(),
                    "high": raw["High"].to_numpy(),
                    "low": raw["Low"].to_numpy(),
                    "close": raw["Close"].to_numpy(),
                    "volume": raw["Volume"].to_numpy(),
                }
            )
        )
    if not parts:
        return empty_ohlcv()
    return _finish(pd.concat(parts, ignore_index=True), pd.Timestamp(start), pd.Timestamp(end))


@dataclass(frozen=True)
class _Cell:
    row: int  # 1-based line number in the file, header = line 1
    column: str
    value: object


def _first_bad(frame: pd.DataFrame, mask: pd.Series, column: str) -> _Cell:
    index = int(np.flatnonzero(mask.to_numpy())[0])
    return _Cell(row=index + 2, column=column, value=frame[column].iloc[index])


def read_symbol_csv(path: Path, symbol: str) -> pd.DataFrame:
    """Parse and validate one symbol file; raises ``DataFormatError`` naming file/row/column."""
    if path.stat().st_size == 0:
        raise DataFormatError(f"{path}: file is empty (expected header {','.join(CSV_REQUIRED)})")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: not a readable CSV file: {exc}") from exc
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in CSV_REQUIRED if c not in raw.columns]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(raw.columns)}"
        )
    if raw.empty:
        raise DataFormatError(f"{path}: header only, no data rows")
    frame = pd.DataFrame({"symbol": symbol}, index=raw.index)
    dates = pd.to_datetime(raw["date"].str.strip(), format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        cell = _first_bad(raw, dates.isna(), "date")
        raise DataFormatError(
            f"{path}: row {cell.row}, column date: {cell.value!r} is not a YYYY-MM-DD date"
        )
    frame["date"] = dates
    for column in [*PRICE_COLUMNS, "volume"]:
        values = pd.to_numeric(raw[column].str.strip(), errors="coerce")
        bad = values.isna() & (raw[column].str.strip() != "")
        if bad.any():
            cell = _first_bad(raw, bad, column)
            raise DataFormatError(
                f"{path}: row {cell.row}, column {column}: {cell.value!r} is not a number"
            )
        frame[column] = values
    duplicated = frame["date"].duplicated(keep=False)
    if duplicated.any():
        rows = (np.flatnonzero(duplicated.to_numpy()) + 2).tolist()
        day = frame.loc[duplicated, "date"].iloc[0].date()
        raise DataFormatError(f"{path}: duplicate date {day} at rows {rows[:10]}")
    for column in PRICE_COLUMNS:
        bad = frame[column] <= 0
        if bad.any():
            cell = _first_bad(frame, bad, column)
            raise DataFormatError(
                f"{path}: row {cell.row}, column {column}: price {cell.value} is not positive"
            )
    bad = frame["high"] < frame["low"]
    if bad.any():
        cell = _first_bad(frame, bad, "high")
        raise DataFormatError(f"{path}: row {cell.row}: high {cell.value} is below low")
    bad = frame["volume"] < 0
    if bad.any():
        cell = _first_bad(frame, bad, "volume")
        raise DataFormatError(f"{path}: row {cell.row}, column volume: {cell.value} is negative")
    return frame[OHLCV_COLUMNS]


def csv_symbols(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.csv"))


def load_csv_directory(directory: Path, symbols: list[str], start: str, end: str) -> pd.DataFrame:
    """Read ``<directory>/<SYMBOL>.csv`` for each symbol (all files if ``symbols`` is empty)."""
    if not directory.is_dir():
        raise ProviderUnavailable(f"CSV directory {directory} is not reachable")
    available = csv_symbols(directory)
    wanted = symbols or available
    _check_symbols(wanted, available, f"CSV directory {directory}")
    if not wanted:
        raise DataFormatError(f"CSV directory {directory} holds no <SYMBOL>.csv file")
    parts = [read_symbol_csv(directory / f"{s}.csv", s) for s in wanted]
    return _finish(pd.concat(parts, ignore_index=True), pd.Timestamp(start), pd.Timestamp(end))


def synthetic_symbols(count: int) -> list[str]:
    return [f"SYN{i:03d}" for i in range(count)]


def _symbol_seed(symbol: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{symbol}".encode()).digest()[:8], "little")


def synthetic(symbols: list[str], start: str, end: str, seed: int = 7) -> pd.DataFrame:
    """Deterministic bars: each symbol's path starts at ``SYNTHETIC_ORIGIN`` so any date range
    of the same symbol is a slice of one continuous series (partitions agree at their seams)."""
    end_ts = pd.Timestamp(end)
    if end_ts < pd.Timestamp(SYNTHETIC_ORIGIN):
        return empty_ohlcv()
    sessions = trading_sessions(SYNTHETIC_ORIGIN, end_ts)
    n = len(sessions)
    parts = []
    for symbol in symbols:
        rng = np.random.default_rng(_symbol_seed(symbol, seed))
        drift, vol = rng.uniform(0.0, 0.0006), rng.uniform(0.008, 0.025)
        returns = rng.normal(drift, vol, n)
        close = 20.0 + 180.0 * rng.random() if n else 0.0
        close = close * np.exp(np.cumsum(returns))
        gap = rng.normal(0.0, vol / 3, n)
        open_ = np.concatenate([[close[0]], close[:-1]]) * np.exp(gap)
        spread = np.abs(rng.normal(0.0, vol, (2, n)))
        high = np.maximum(open_, close) * np.exp(spread[0])
        low = np.minimum(open_, close) * np.exp(-spread[1])
        volume = np.round(rng.lognormal(13.0, 0.4, n))
        parts.append(
            pd.DataFrame(
                {
                    "date": sessions,
                    "symbol": symbol,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume,
                }
            )
        )
    if not parts:
        return empty_ohlcv()
    return _finish(pd.concat(parts, ignore_index=True), pd.Timestamp(start), end_ts)


def to_wide(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Long OHLCV -> wide (index date, one column per symbol)."""
    return frame.pivot(index="date", columns="symbol", values=column).sort_index()
