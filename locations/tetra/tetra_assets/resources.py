"""Configurable resources of the Tetra location: the market-data provider."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import dagster as dg
import pandas as pd

from platform_core.datastore import ConfinedPaths
from platform_core.keys import comma_list
from tetra_assets.science import economics, ohlcv

PROVIDER_KINDS = ("bundled", "csv", "synthetic")


class MarketDataProvider(ConfinedPaths, dg.ConfigurableResource):
    """Where daily bars come from.

    - ``bundled`` (default): real S&P 500 / NASDAQ bars 1999-2018 shipped in the ``arch`` wheel.
    - ``csv``: ``csv_dir/<SYMBOL>.csv`` with columns date, open, high, low, close, volume.
    - ``synthetic``: ``synthetic_count`` deterministic symbols, for any dates (scale tests).
    ``symbols`` restricts the universe (empty: everything the provider has). A ``csv_dir``
    set in a run's config from the UI must lie inside the input roots.
    """

    kind: str = "bundled"
    csv_dir: str | None = None
    confined_fields: ClassVar[tuple[str, ...]] = ("csv_dir",)
    symbols: str = ""  # comma list
    synthetic_count: int = 20
    seed: int = 7

    def _check_kind(self) -> None:
        if self.kind not in PROVIDER_KINDS:
            raise ohlcv.DataFormatError(
                f"unknown provider kind {self.kind!r}; use one of {', '.join(PROVIDER_KINDS)}"
            )

    def universe(self) -> list[str]:
        if self.symbols:
            return comma_list(self.symbols)
        if self.kind == "bundled":
            return list(ohlcv.BUNDLED_SYMBOLS)
        if self.kind == "synthetic":
            return ohlcv.synthetic_symbols(self.synthetic_count)
        return ohlcv.csv_symbols(self._csv_dir())

    def _csv_dir(self) -> Path:
        if not self.csv_dir:
            raise ohlcv.DataFormatError("provider kind 'csv' needs csv_dir")
        return Path(self.csv_dir)

    def fetch(self, start: str, end: str) -> pd.DataFrame:
        """Daily bars for the universe in [start, end] (long format, ``ohlcv.OHLCV_COLUMNS``)."""
        self._check_kind()
        if self.kind == "bundled":
            return ohlcv.load_bundled(self.universe(), start, end)
        if self.kind == "synthetic":
            return ohlcv.synthetic(self.universe(), start, end, seed=self.seed)
        return ohlcv.load_csv_directory(self._csv_dir(), comma_list(self.symbols), start, end)

    def fetch_economic(self, start: str, end: str) -> pd.DataFrame:
        """Macro series as known on each session (``economics.ECONOMIC_COLUMNS``)."""
        self._check_kind()
        if self.kind == "bundled":
            return economics.bundled_asof(start, end)
        if self.kind == "synthetic":
            return economics.synthetic_asof(start, end, seed=self.seed)
        return economics.csv_asof(self._csv_dir() / "economic.csv", start, end)
