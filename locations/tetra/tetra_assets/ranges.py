"""Which partitions a range of days means: the trading days, the weeks holding them, and how
far back the weeks' inputs reach (from the partitions definitions and mappings, never from
calendar arithmetic of the caller's)."""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from platform_core.errors import CliError
from platform_core.location import group_assets
from tetra_assets.defs.jobs import PIPELINE_GROUPS
from tetra_assets.partitions import FIRST_DAY, TIMEZONE, trading_day_partitions, weekly_partitions


def parse_day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliError(f"{flag} {text!r} is not a date (expected YYYY-MM-DD)") from None


def date_range(day: str | None, start: str | None, end: str | None) -> tuple[date, date]:
    """Validated [first, last] calendar days from --date or --start/--end."""
    if day and (start or end):
        raise CliError("give either --date or --start/--end, not both")
    if day:
        first = last = parse_day(day, "--date")
    elif start and end:
        first, last = parse_day(start, "--start"), parse_day(end, "--end")
    else:
        raise CliError("give --date D or both --start S and --end E")
    if first > last:
        raise CliError(f"reversed date range: --start {first} is after --end {last}")
    today = datetime.now(UTC).date()
    if last > today:
        raise CliError(f"date range ends in the future ({last} is after today, {today})")
    if first < date.fromisoformat(FIRST_DAY):
        raise CliError(f"date range starts before the first partition ({FIRST_DAY})")
    return first, last


def _window(first: date, last: date) -> dg.TimeWindow:
    """[first 00:00, the day after last 00:00) in New York time."""
    zone = ZoneInfo(TIMEZONE)
    start = datetime.combine(first, datetime.min.time(), zone)
    return dg.TimeWindow(
        start, datetime.combine(last + timedelta(days=1), datetime.min.time(), zone)
    )


def trading_day_keys(first: date, last: date) -> list[str]:
    """The trading-day partitions starting in [first, last]."""
    return list(trading_day_partitions.get_partition_keys_in_time_window(_window(first, last)))


def week_keys(days: Sequence[str]) -> list[str]:
    """The weekly partitions holding the trading days ``days`` (sorted): every week from the
    first day's to the last day's, each of which holds trading days (Monday to Friday)."""
    if not days:
        return []

    def week_of(day: str) -> str:
        start = trading_day_partitions.time_window_for_partition_key(day).start
        return weekly_partitions.get_partition_key_for_timestamp(start.timestamp())

    span = dg.PartitionKeyRange(week_of(days[0]), week_of(days[-1]))
    return list(weekly_partitions.get_partition_keys_in_range(span))


def history_start(defs: dg.Definitions, week: str) -> str:
    """The first data partition that ``week``'s assets read, by their partition mappings
    (indicator and scenario warm-up), never before the first partition."""
    graph = defs.resolve_asset_graph()
    return min(
        key
        for child in graph.get_all_asset_keys()
        if graph.get(child).partitions_def == weekly_partitions
        for parent in graph.get(child).parent_keys
        if graph.get(parent).partitions_def == trading_day_partitions
        for key in graph.get_parent_partition_keys_for_child(
            week, parent, child
        ).partitions_subset.get_partition_keys()
    )


def pipeline_assets(defs: dg.Definitions, pipelines: Sequence[str]) -> list[dg.AssetKey]:
    return group_assets(defs, [PIPELINE_GROUPS[p] for p in pipelines])


def partitions_for(
    defs: dg.Definitions, keys: Sequence[dg.AssetKey], first: date, last: date
) -> dict[dg.AssetKey, list[str]]:
    """Per asset, its partitions for [first, last]: trading days for data, the weeks holding
    them for the rest. With both, the data the weeks read (market data) reaches back as far as
    the first week reads and on to the end of the last week (never past today), so every week
    finds all its days; the other data assets keep [first, last]."""
    graph = defs.resolve_asset_graph()
    days = trading_day_keys(first, last)
    if not days:
        raise CliError(f"no trading-day partition between {first} and {last} (weekend?)")
    weeks = week_keys(days)
    weekly = [k for k in keys if graph.get(k).group_name != "data"]
    read_by_weeks = {p for k in weekly for p in graph.get(k).parent_keys}
    week_end = weekly_partitions.time_window_for_partition_key(weeks[-1]).end.date()
    history = trading_day_keys(
        date.fromisoformat(history_start(defs, weeks[0])),
        min(week_end - timedelta(days=1), datetime.now(UTC).date()),
    )
    out = {}
    for key in keys:
        if graph.get(key).group_name != "data":
            out[key] = weeks
        else:
            out[key] = history if weekly and key in read_by_weeks else days
    return out
