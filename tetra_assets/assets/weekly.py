"""Shared inputs of the weekly chain: history windows and the market-data input spec."""

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tetra_assets.assets.windows import Window
from tetra_assets.partitions import HISTORY_WEEKS, history_mapping, indicator_history_mapping
from tetra_assets.science import quality

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
