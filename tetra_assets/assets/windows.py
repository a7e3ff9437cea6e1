"""Partition keys of a run as time windows, and per-partition splitting of results."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd


@dataclass(frozen=True)
class Window:
    key: str
    start: pd.Timestamp  # inclusive, naive date
    end: pd.Timestamp  # exclusive, naive date


def run_windows(context: dg.AssetExecutionContext) -> list[Window]:
    """One window per partition key of this run (one, or many in a single-run backfill)."""
    partitions_def = context.assets_def.partitions_def
    assert isinstance(partitions_def, dg.TimeWindowPartitionsDefinition)
    windows = []
    for key in context.partition_keys:
        tw = partitions_def.time_window_for_partition_key(key)
        windows.append(
            Window(
                key=key,
                start=pd.Timestamp(tw.start.date()),
                end=pd.Timestamp(tw.end.date()),
            )
        )
    return windows


def per_partition(windows: list[Window], build: Callable[[Window], Any]) -> Any:
    """The IO manager's contract: a bare value for one partition, a dict for several."""
    if len(windows) == 1:
        return build(windows[0])
    return {w.key: build(w) for w in windows}


def latest(value: Any, windows: list[Window]) -> Any:
    """The last partition's value of a ``per_partition`` result."""
    return value[windows[-1].key] if len(windows) > 1 else value


def split_by_window(frame: pd.DataFrame, windows: list[Window], column: str = "date") -> Any:
    """``frame`` split into the run's partitions (``per_partition``'s contract), rows in their
    original order: one sort and a binary search per window, so a multi-year split is linear."""
    ordered = frame.sort_values(column, kind="stable")
    dates = ordered[column]

    def rows(window: Window) -> pd.DataFrame:
        lo, hi = dates.searchsorted(window.start), dates.searchsorted(window.end)
        return ordered.iloc[lo:hi].sort_index().reset_index(drop=True)

    return per_partition(windows, rows)


def span(windows: list[Window]) -> tuple[str, str]:
    """First and last calendar day covered by the windows, as ISO strings."""
    first = min(w.start for w in windows)
    last = max(w.end for w in windows) - pd.Timedelta(days=1)
    return first.date().isoformat(), last.date().isoformat()
