"""What the Tetra assets share: a run's partitions as time windows (and its results split
back per partition), and the weekly chain's inputs (history windows, the market-data input
spec, the quality gate on bars)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from platform_core import failure
from platform_core.io import FrameSlices
from tetra_assets.partitions import HISTORY_WEEKS, history_mapping, indicator_history_mapping
from tetra_assets.science import quality


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


# A backfill runs the weekly chain in runs of at most 131 weeks (five years: two runs, one per
# core): each run loads its weeks' history (11 years for the indicators) once, so fewer, longer
# runs do less. Data assets backfill in runs of at most ~8 years (assets/data.py).
WEEKLY_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=131)
WEEKLY_CHAIN_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=pd.Timedelta(days=8))

# The week's own trading days plus HISTORY_WEEKS of warm-up; warm-up days that were never
# materialized (before the first backfilled day) are tolerated, the week's own are not.
MARKET_HISTORY = dg.AssetIn("market_data", partition_mapping=history_mapping)
# Recursive indicators read INDICATOR_HISTORY_WEEKS instead, so their seed is forgotten.
INDICATOR_HISTORY = dg.AssetIn("market_data", partition_mapping=indicator_history_mapping)


def history(wide: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Rows of a wide (date x symbol) frame from HISTORY_WEEKS before the week up to the
    week's end, without symbols that have no value in that span. Slicing one frame pivoted for
    the whole run keeps a many-week backfill linear in its length."""
    dates = wide.index
    lo = dates.searchsorted(window.start - pd.Timedelta(weeks=HISTORY_WEEKS))
    return wide.iloc[lo : dates.searchsorted(window.end)].dropna(axis=1, how="all")


def by_week(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A multi-week table split by its ``week`` column, in one pass: slices of row blocks
    when each week's rows are together (a range run's input is read partition after
    partition; the blocks are found with Arrow kernels, ~4x faster than factorizing), a
    group-by otherwise."""
    weeks = pa.array(frame["week"])
    weeks = weeks.combine_chunks() if isinstance(weeks, pa.ChunkedArray) else weeks
    if len(weeks) and not weeks.null_count:
        changes = pc.not_equal(weeks.slice(1), weeks.slice(0, len(weeks) - 1))
        bounds = [0, *(pc.indices_nonzero(changes).to_numpy() + 1).tolist(), len(weeks)]
        labels = [str(weeks[b].as_py()) for b in bounds[:-1]]
        if len(set(labels)) == len(labels):  # each week in one block
            blocks = zip(labels, bounds[:-1], bounds[1:], strict=True)
            return {week: frame.iloc[start:stop] for week, start, stop in blocks}
    return {str(week): rows for week, rows in frame.groupby("week", sort=False)}


def require_clean(bars: pd.DataFrame) -> pd.DataFrame:
    """Refuse market data that breaks a blocking quality rule (the same rules as the blocking
    asset checks on market_data), so bad bars never reach scenarios, metrics or backtests."""
    problems = {
        "duplicate (symbol, date) rows": quality.duplicate_dates(bars),
        "non-positive prices": quality.non_positive_prices(bars),
        "bars with high below low": quality.high_below_low(bars),
    }
    found = [(name, rows) for name, rows in problems.items() if not rows.empty]
    if found:
        name, rows = found[0]
        first = rows.iloc[0]
        raise dg.Failure(
            f"market_data fails quality: {len(rows)} {name}, first {first['symbol']} on "
            f"{pd.Timestamp(first['date']).date()}; fix the source and rematerialize those days",
            allow_retries=False,
        )
    return bars


def require_weeks(bars: pd.DataFrame, windows: list[Window]) -> None:
    """Fail clearly if a week of the run has no bars (its data partitions are missing)."""
    dates = pd.DatetimeIndex(bars["date"].unique()).sort_values()
    for window in windows:
        if dates.searchsorted(window.start) == dates.searchsorted(window.end):
            raise dg.Failure(
                f"no market_data for week {window.key} ({window.start.date()} .. "
                f"{(window.end - pd.Timedelta(days=1)).date()}): materialize the data pipeline "
                "for those days first (tetra run --pipeline data)"
            )


def fallback_inputs(context: dg.AssetExecutionContext, *inputs: str) -> dict[str, Any]:
    """Metadata saying which partitions of market_data (and of ``inputs``) this step read
    were fallbacks (the last good value kept through a failure): ``{}`` when none."""
    read = failure.fallbacks_read(context, ["market_data", *inputs])
    return {failure.FALLBACK_INPUTS_KEY: dg.MetadataValue.json(read)}
