"""``tetra``: the seed's orchestrator commands as a thin wrapper over Dagster.

Exit codes: 0 ok (or nothing to do), 1 a run failed, 2 bad arguments or input.
"""

import argparse
import importlib
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd

from platform_core import backfill, cli
from platform_core.dagster_internals import cron_string_iterator
from platform_core.plan import PlannedStep, plan
from tetra_assets.defs.jobs import PIPELINE_GROUPS
from tetra_assets.partitions import FIRST_DAY, TIMEZONE, trading_day_partitions, weekly_partitions

MODULE = "tetra_assets.definitions"
PIPELINES = list(PIPELINE_GROUPS)
JOBS_BY_PIPELINE = {
    "data": ["tetra_data"],
    "scenarios": ["tetra_scenarios", "tetra_weekly"],
    "metrics": ["tetra_metrics", "tetra_weekly"],
    "assessment": ["tetra_assessment", "tetra_weekly"],
}
# The job that runs each asset group in a backfill (data daily, the weekly chain weekly).
JOB_GROUPS = {
    "tetra_data": {"data"},
    "tetra_weekly": {"scenarios", "metrics", "assessment"},
}


def _defs() -> dg.Definitions:
    return importlib.import_module(MODULE).defs


def parse_day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise cli.CliError(f"{flag} {text!r} is not a date (expected YYYY-MM-DD)") from None


def date_range(day: str | None, start: str | None, end: str | None) -> tuple[date, date]:
    """Validated [first, last] calendar days from --date or --start/--end."""
    if day and (start or end):
        raise cli.CliError("give either --date or --start/--end, not both")
    if day:
        first = last = parse_day(day, "--date")
    elif start and end:
        first, last = parse_day(start, "--start"), parse_day(end, "--end")
    else:
        raise cli.CliError("give --date D or both --start S and --end E")
    if first > last:
        raise cli.CliError(f"reversed date range: --start {first} is after --end {last}")
    today = datetime.now(UTC).date()
    if last > today:
        raise cli.CliError(f"date range ends in the future ({last} is after today, {today})")
    if first < date.fromisoformat(FIRST_DAY):
        raise cli.CliError(f"date range starts before the first partition ({FIRST_DAY})")
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
    return cli.group_assets(defs, [PIPELINE_GROUPS[p] for p in pipelines])


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
        raise cli.CliError(f"no trading-day partition between {first} and {last} (weekend?)")
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


def _print_plan(steps: list[PlannedStep], as_json: bool) -> None:
    if as_json:
        cli.print_json([s.__dict__ for s in steps])
        return
    if not steps:
        print("up to date: nothing would be computed")
        return
    by_asset: dict[str, list[PlannedStep]] = {}
    for step in steps:
        by_asset.setdefault(step.asset, []).append(step)
    rows = []
    for asset, group in by_asset.items():
        reasons = pd.Series([s.reason.split(" (")[0] for s in group]).value_counts()
        rows.append(
            {
                "asset": asset,
                "partitions": len(group),
                "first": group[0].partition,
                "last": group[-1].partition,
                "why": "; ".join(f"{n} {r}" for r, n in reasons.items()),
            }
        )
    cli.print_table(rows, ["asset", "partitions", "first", "last", "why"])


def cmd_run(args: argparse.Namespace) -> int:
    first, last = date_range(args.date, args.start, args.end)
    pipelines = PIPELINES if args.pipeline == "all" else [args.pipeline]
    inst = cli.instance()
    in_process = args.in_process or not backfill.daemon_serves(inst)
    if in_process and not args.dry_run:
        backfill.warm_workers(MODULE)
    defs = _defs()
    keys = pipeline_assets(defs, pipelines)
    steps = plan(
        inst, defs.resolve_asset_graph(), partitions_for(defs, keys, first, last), args.force
    )
    if args.dry_run or not steps:
        _print_plan(steps, args.json)
        return 0
    todo: dict[dg.AssetKey, list[str]] = {}
    for step in steps:
        todo.setdefault(dg.AssetKey(step.asset), []).append(step.partition)
    progress = cli.Progress(args.quiet)
    tags = {"tetra/cli": args.command}
    if not in_process:
        first = min(min(v) for v in todo.values())
        last = max(max(v) for v in todo.values())
        title = f"tetra {args.command} {first}..{last}"
        return backfill.submit_and_report(inst, defs, todo, tags, title, args, progress)
    graph = defs.resolve_asset_graph()
    by_job = {
        job: {k: sorted(v) for k, v in todo.items() if graph.get(k).group_name in groups}
        for job, groups in JOB_GROUPS.items()
    }
    jobs = {job: selected for job, selected in by_job.items() if selected}
    runs = backfill.run_in_process(MODULE, defs, inst, jobs, tags, progress)
    reports = [
        {
            "job": run["job"],
            "run_id": run["run_id"],
            "partitions": run["partitions"],
            "assets": run["assets"],
            "status": "SUCCESS" if run["success"] else "FAILURE",
            "seconds": run["seconds"],
            **({} if run["success"] else {"error": run["error"]}),
        }
        for run in runs
    ]
    progress.done()
    cli.print_rows(
        reports, ["job", "status", "partitions", "assets", "seconds", "run_id"], args.json
    )
    failed = [r for r in reports if r["status"] != "SUCCESS"]
    if failed:
        print(f"error: run {failed[0]['run_id']} failed: {failed[0]['error']}", file=sys.stderr)
        return 1
    return 0


def _freshness(inst: dg.DagsterInstance, defs: dg.Definitions, key: dg.AssetKey) -> dict:
    node = defs.resolve_asset_graph().get(key)
    event = inst.get_latest_materialization_event(key)
    if event is None:
        return {"asset": key.to_user_string(), "freshness": "never materialized"}
    policy = node.freshness_policy
    stale_at = cli.stale_after(policy, event.timestamp) if policy else None
    partitions = inst.get_materialized_partitions(key)
    return {
        "asset": key.to_user_string(),
        "freshness": "fresh" if stale_at is None or time.time() < stale_at else "stale",
        "age_s": round(time.time() - event.timestamp, 1),
        "stale_after": datetime.fromtimestamp(stale_at, UTC).isoformat(timespec="seconds")
        if stale_at
        else None,
        "latest_partition": max(partitions) if partitions else None,
        "partitions": len(partitions),
    }


def cmd_status(args: argparse.Namespace) -> int:
    defs, inst = _defs(), cli.instance()
    rows = []
    for pipeline in PIPELINES:
        assets = [_freshness(inst, defs, k) for k in pipeline_assets(defs, [pipeline])]
        states = {a["freshness"] for a in assets}
        state = next((s for s in ("never materialized", "stale") if s in states), "fresh")
        rows.append(
            {
                "pipeline": pipeline,
                **cli.run_summary(cli.last_run(inst, JOBS_BY_PIPELINE[pipeline])),
                "freshness": state,
                "latest_partition": min(
                    (a["latest_partition"] for a in assets if a.get("latest_partition")),
                    default=None,
                ),
                "assets": assets,
            }
        )
    columns = ["pipeline", "status", "started", "duration_s", "freshness", "latest_partition"]
    cli.print_rows(rows, columns, args.json)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    defs = _defs()
    graph = defs.resolve_asset_graph()
    for pipeline in PIPELINES:
        print(f"[{pipeline}]")
        for key in pipeline_assets(defs, [pipeline]):
            node = graph.get(key)
            parents = ", ".join(sorted(p.to_user_string() for p in node.parent_keys)) or "-"
            kind = "daily" if pipeline == "data" else "weekly"
            print(f"  {key.to_user_string():<22} ({kind}) <- {parents}")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    defs = _defs()
    now = datetime.now(UTC).timestamp()
    rows = []
    for schedule in defs.schedules or []:
        ticks = cron_string_iterator(
            now, schedule.cron_schedule, schedule.execution_timezone or TIMEZONE
        )
        rows.append(
            {
                "name": schedule.name,
                "kind": "schedule",
                "when": f"{schedule.cron_schedule} ({schedule.execution_timezone})",
                "default": schedule.default_status.value,
                "next": next(ticks).isoformat(timespec="minutes"),
                "job": schedule.job_name,
            }
        )
    for sensor in defs.sensors or []:
        rows.append(
            {
                "name": sensor.name,
                "kind": "sensor",
                "when": f"every {sensor.minimum_interval_seconds or 30}s",
                "default": sensor.default_status.value,
                "next": "",
                "job": "",
            }
        )
    cli.print_rows(rows, ["name", "kind", "when", "default", "next", "job"], args.json)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    inst = cli.instance()
    record = cli.last_run(inst, JOBS_BY_PIPELINE[args.pipeline])
    if record is None:
        raise cli.CliError(f"pipeline {args.pipeline} has never run")
    print(f"run {record.dagster_run.run_id} ({record.dagster_run.status.value})")
    for line in cli.run_logs(inst, record.dagster_run.run_id, args.tail):
        print(line)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tetra", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    def add_range(p: argparse.ArgumentParser) -> None:
        p.add_argument("--date", help="one day, YYYY-MM-DD")
        p.add_argument("--start", help="first day, YYYY-MM-DD")
        p.add_argument("--end", help="last day, YYYY-MM-DD")
        p.add_argument("--dry-run", action="store_true", help="print what would run and why")
        p.add_argument("--force", action="store_true", help="recompute even if up to date")
        p.add_argument("--json", action="store_true")
        p.add_argument("--quiet", action="store_true", help="no progress lines")
        backfill.add_backfill_arguments(p)

    run = sub.add_parser("run", help="run one pipeline (or all) for a day or a range")
    run.add_argument("--pipeline", choices=[*PIPELINES, "all"], default="all")
    add_range(run)
    run.set_defaults(func=cmd_run)
    whole = sub.add_parser("backfill", help="all pipelines over a date range, one run each")
    add_range(whole)
    whole.set_defaults(func=cmd_run, pipeline="all")
    status = sub.add_parser("status", help="last run, status, duration, freshness per pipeline")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    sub.add_parser("graph", help="the asset graph by pipeline").set_defaults(func=cmd_graph)
    schedule = sub.add_parser("schedule", help="schedules and sensors")
    schedule.add_argument("--json", action="store_true")
    schedule.set_defaults(func=cmd_schedule)
    logs = sub.add_parser("logs", help="event log of a pipeline's last run")
    logs.add_argument("--pipeline", choices=PIPELINES, required=True)
    logs.add_argument("--tail", type=int, default=50)
    logs.set_defaults(func=cmd_logs)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "backfill" and not (args.start and args.end):
        cli.fail("backfill needs --start and --end")
    return cli.dispatch(args)


console_main = cli.console(main)

if __name__ == "__main__":
    console_main()
