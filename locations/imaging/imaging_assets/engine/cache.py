"""Wells a pipeline run computed before the run itself succeeded: each well's fingerprint and
tables (Parquet) here, its image and labels fields in the steps' staging OME-Zarr stores. A
run that fails past its threshold stores no asset, yet a re-run or ``resume`` takes these
wells instead of computing them again; a run that succeeds moves them into its assets."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from platform_core.io import atomic_write


class WellCache:
    """``<folder>/<well>/<step key>.parquet`` and ``<folder>/<well>/well.json`` (written last:
    a well without it is not cached)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def record(self, well: str, fingerprint: str, tables: Mapping[str, pd.DataFrame]) -> None:
        for key, table in tables.items():
            atomic_write(self.folder / well / f"{key}.parquet", lambda p, t=table: t.to_parquet(p))
        record = json.dumps({"fingerprint": fingerprint, "tables": sorted(tables)})
        atomic_write(self.folder / well / "well.json", lambda p: p.write_text(record))

    def fingerprint(self, well: str) -> str | None:
        try:
            return json.loads((self.folder / well / "well.json").read_text())["fingerprint"]
        except (OSError, ValueError, KeyError):
            return None

    def tables(self, well: str) -> dict[str, pd.DataFrame]:
        keys = json.loads((self.folder / well / "well.json").read_text())["tables"]
        return {key: pd.read_parquet(self.folder / well / f"{key}.parquet") for key in keys}

    def forget(self, wells: Iterable[str]) -> None:
        for well in wells:
            shutil.rmtree(self.folder / well, ignore_errors=True)
