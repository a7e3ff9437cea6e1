"""Partition keys of a run as time windows, and per-partition splitting of results."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from platform_core.io import FrameSlices


@dataclass(frozen=True)
class Window:
    key: str
    start: pd.Timestamp  # inclusive, naive date
    end: pd.Timestamp  # exclusive, naive date


def run_windows(context: dg.AssetExecutionContext) -> list[Window]:
    """One window per partition key of this run (one, or many in a single-run backfill). A
    run's partitions are contiguous: each window ends where the next starts, the last where
    the run's time window ends (one key parse each instead of a calendar lookup per key)."""
    partitions_def = context.assets_def.partitions_def
    assert isinstance(partitions_def, dg.TimeWindowPartitionsDefinition)
    keys = context.partition_keys
    starts = [pd.Timestamp(datetime.strptime(k, partitions_def.fmt).date()) for k in keys]
    ends = [*starts[1:], pd.Timestamp(context.partition_time_window.end.date())]
    return [Window(k, a, b) for k, a, b in zip(keys, starts, ends, strict=True)]


def per_partition(windows: list[Window], build: Callable[[Window], Any]) -> Any:
    """The IO manager's contract: a bare value for one partition, a dict for several."""
    if len(windows) == 1:
        return build(windows[0])
    return {w.key: build(w) for w in windows}


def all_rows(value: pd.DataFrame | Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every partition's rows of a ``per_partition`` result of frames, as one frame."""
    if isinstance(value, FrameSlices):
        return value.frame
    if isinstance(value, Mapping):
        return pd.concat(list(value.values()), ignore_index=True)
    return value


def describe_each(
    context: dg.AssetExecutionContext,
    windows: list[Window],
    value: Any,
    describe: Callable[[Any], Mapping[str, Any]],
) -> None:
    """Metadata of each partition's own value (``describe``) on that partition's
    materialization: output metadata would show a range run's last week on every week."""
    for window in windows:
        own = value[window.key] if len(windows) > 1 else value
        context.add_asset_metadata(dict(describe(own)), partition_key=window.key)


def split_by_window(frame: pd.DataFrame, windows: list[Window], column: str = "date") -> Any:
    """``frame``'s rows by the run's (sorted, disjoint) windows, ``per_partition``'s contract,
    each window's rows in their original order; rows outside every window are dropped. One
    stable sort by window, and no frame per partition (a multi-year run has thousands)."""
    starts = np.array([w.start for w in windows], dtype="datetime64[ns]")
    ends = np.array([w.end for w in windows], dtype="datetime64[ns]")
    dates = frame[column].to_numpy(dtype="datetime64[ns]")
    which = np.searchsorted(starts, dates, side="right") - 1
    inside = (which >= 0) & (dates < ends[which.clip(0)])
    which = np.where(inside, which, len(windows))  # outside: sorted last, cut off
    counts = np.bincount(which, minlength=len(windows) + 1)[: len(windows)]
    order = np.argsort(which, kind="stable")[: counts.sum()]
    ordered = frame.iloc[order].reset_index(drop=True)
    if len(windows) == 1:
        return ordered
    stops = np.cumsum(counts).tolist()
    return FrameSlices(ordered, {w.key: stop for w, stop in zip(windows, stops, strict=True)})


def span(windows: list[Window]) -> tuple[str, str]:
    """First and last calendar day covered by the windows, as ISO strings."""
    first = min(w.start for w in windows)
    last = max(w.end for w in windows) - pd.Timedelta(days=1)
    return first.date().isoformat(), last.date().isoformat()
