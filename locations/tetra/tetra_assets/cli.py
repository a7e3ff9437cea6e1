"""``tetra``: the seed's orchestrator commands on the platform's CLI contract (docs/cli.md).

    tetra run [--pipeline P] --date D | --start S --end E [--dry-run] [--force]
                                  what is missing or stale over the range, in dependency order:
                                  a Dagster backfill when a daemon serves the instance, else
                                  here on every core
    tetra backfill --start S --end E     every pipeline over a range (run --pipeline all)
    tetra status [--date D | --start S --end E] [--json]
                                  per pipeline: last run, freshness; with dates, per day
    tetra resume --date D         re-execute the last failed run over that day from its failure
    tetra export --date D [--step ASSET] --out FILE    an asset's partition holding that day
    tetra demo --out DIR          the bundled bars as CSV files (TETRA_PROVIDER=csv)
    tetra graph | schedule | logs --pipeline P

Exit codes: 0 ok (or nothing to do), 1 a run failed, 2 bad arguments or input.
"""

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from platform_core import cli, runstats
from platform_core.commands import LocationCli, Request, add_run_flags
from platform_core.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    cron_string_iterator,
)
from platform_core.io import atomic_write
from platform_core.plan import PlannedStep, plan
from tetra_assets.defs.jobs import PIPELINE_GROUPS
from tetra_assets.location import LOCATION
from tetra_assets.partitions import TIMEZONE, weekly_partitions
from tetra_assets.ranges import (
    date_range,
    partitions_for,
    pipeline_assets,
    trading_day_keys,
    week_keys,
)
from tetra_assets.science.ohlcv import BUNDLED_SYMBOLS, load_bundled

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


def _freshness(inst: dg.DagsterInstance, defs: dg.Definitions, key: dg.AssetKey) -> dict:
    node = defs.resolve_asset_graph().get(key)
    event = inst.get_latest_materialization_event(key)
    if event is None:
        return {"asset": key.to_user_string(), "freshness": "never materialized"}
    policy = node.freshness_policy
    stale_at = runstats.stale_after(policy, event.timestamp) if policy else None
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


class TetraCli(LocationCli):
    location = LOCATION
    export_step = "market_data"
    warm_before_definitions = True  # the workers' imports overlap the CLI's own and its plan

    def add_run_options(self, parser: argparse.ArgumentParser) -> None:
        if parser.prog.endswith(" run"):
            parser.add_argument("--pipeline", choices=[*PIPELINES, "all"], default="all")
        add_range(parser)
        parser.add_argument("--dry-run", action="store_true", help="print what would run and why")
        parser.add_argument("--force", action="store_true", help="recompute even if up to date")

    def add_partition_options(self, parser: argparse.ArgumentParser, verb: str) -> None:
        if verb == "status":
            add_range(parser)

    def keys(self, args: argparse.Namespace) -> list[str]:
        self.days = date_range(args.id, args.start, args.end)
        return []

    def many_runs(self, args: argparse.Namespace, keys: list[str]) -> bool:
        return not args.dry_run

    def request(self, args: argparse.Namespace, keys: list[str]) -> Request | None:
        """What is missing or stale over the days, per job; None (said) when nothing is, or
        on a dry run."""
        first, last = self.days
        pipelines = PIPELINES if args.pipeline == "all" else [args.pipeline]
        defs, inst = self.session.defs, self.session.instance
        assets = pipeline_assets(defs, pipelines)
        graph = defs.resolve_asset_graph()
        steps = plan(inst, graph, partitions_for(defs, assets, first, last), args.force)
        if args.dry_run or not steps:
            _print_plan(steps, args.json)
            return None
        todo: dict[dg.AssetKey, list[str]] = {}
        for step in steps:
            todo.setdefault(dg.AssetKey(step.asset), []).append(step.partition)
        jobs = {
            job: {k: sorted(v) for k, v in todo.items() if graph.get(k).group_name in groups}
            for job, groups in JOB_GROUPS.items()
        }
        span = f"{min(min(v) for v in todo.values())}..{max(max(v) for v in todo.values())}"
        title = f"tetra {args.command} {span}"
        return Request({j: a for j, a in jobs.items() if a}, {}, self.tags(args), title)

    def after_run(self, keys: list[str], args: argparse.Namespace) -> None:
        """The runs the request made (through the daemon: with its backfill), then how they
        ended (the kit's lines)."""
        fields = ("job", "status", "partitions", "assets", "seconds", "run_id")
        rows = [  # the in-process runner times its runs and counts their assets
            {
                **{k: run[k] for k in fields if k in run},
                **({"error": run["error"]} if run["error"] else {}),
            }
            for run in self.runs
        ]
        if args.json:
            cli.print_json({**self.backfill, "runs": rows} if self.backfill else rows)
        else:
            cli.print_table(rows, [f for f in fields if any(f in row for row in rows)])
        self.report_runs(args)

    def cmd_status(self, args: argparse.Namespace) -> int:
        """Per pipeline (last run, freshness); with dates, per trading day."""
        if args.id or args.start:
            first, last = date_range(args.id, args.start, args.end)
            self.print_status(trading_day_keys(first, last), args.json)
            return 0
        defs, inst = self.session.defs, self.session.instance
        rows = []
        for pipeline in PIPELINES:
            assets = [_freshness(inst, defs, k) for k in pipeline_assets(defs, [pipeline])]
            states = {a["freshness"] for a in assets}
            state = next((s for s in ("never materialized", "stale") if s in states), "fresh")
            rows.append(
                {
                    "pipeline": pipeline,
                    **runstats.run_summary(runstats.last_run(inst, JOBS_BY_PIPELINE[pipeline])),
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

    def require(self, key: str) -> str:
        first, _ = date_range(key, None, None)
        return first.isoformat()

    def recent_runs(self) -> list[dg.RunRecord]:
        """The location's latest runs (500), newest first."""
        records = self.session.instance.get_run_records(dg.RunsFilter(), limit=500)
        return [r for r in records if self.session.belongs(r.dagster_run)]

    def last_run(self, key: str) -> dg.RunRecord | None:
        """The latest run over day ``key``: of that day, or of a range holding it."""
        return next((r for r in self.recent_runs() if _covers(r.dagster_run.tags, key)), None)

    def status_rows(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        runs = self.recent_runs()
        last = {k: next((r for r in runs if _covers(r.dagster_run.tags, k)), None) for k in keys}
        return [{self.location.item: key, **runstats.run_summary(last[key])} for key in keys]

    def export_table(self, key: str, step: str) -> pd.DataFrame:
        """The partition of ``step`` that holds day ``key`` (a week for the weekly chain)."""
        asset, graph = dg.AssetKey.from_user_string(step), self.session.defs.resolve_asset_graph()
        if graph.has(asset) and graph.get(asset).partitions_def == weekly_partitions:
            key = week_keys([key])[0] if trading_day_keys(*[date.fromisoformat(key)] * 2) else key
        return super().export_table(key, step)

    def add_demo_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--start", default="2018-01-01")
        parser.add_argument("--end", default="2018-12-31")

    def demo(self, args: argparse.Namespace) -> int:
        """The bundled bars (arch's S&P 500 and NASDAQ) as ``<SYMBOL>.csv`` files, what the
        csv provider reads (TETRA_PROVIDER=csv, TETRA_CSV_DIR=DIR)."""
        out = Path(args.out)
        bars = load_bundled(list(BUNDLED_SYMBOLS), args.start, args.end)
        for symbol, rows in bars.groupby("symbol"):
            table = rows.drop(columns="symbol").assign(date=rows["date"].dt.strftime("%Y-%m-%d"))
            path = out / f"{symbol}.csv"
            atomic_write(path, lambda tmp, t=table: t.to_csv(tmp, index=False))
        print(f"{bars['symbol'].nunique()} symbols, {len(bars)} bars -> {out}")
        return 0

    def add_verbs(self, commands: Any) -> None:
        p = commands.add_parser("backfill", help="all pipelines over a date range")
        p.add_argument("--date", dest="id", help=argparse.SUPPRESS)
        self.add_run_options(p)
        add_run_flags(p)
        p.set_defaults(func=self.cmd_backfill, pipeline="all", input=[])
        commands.add_parser("graph", help="the asset graph by pipeline").set_defaults(
            func=self.cmd_graph
        )
        p = commands.add_parser("schedule", help="schedules and sensors")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=self.cmd_schedule)
        p = commands.add_parser("logs", help="event log of a pipeline's last run")
        p.add_argument("--pipeline", choices=PIPELINES, required=True)
        p.add_argument("--tail", type=int, default=50)
        p.set_defaults(func=self.cmd_logs)

    def cmd_backfill(self, args: argparse.Namespace) -> int:
        if not (args.start and args.end):
            raise cli.CliError("backfill needs --start and --end")
        return self.cmd_run(args)

    def cmd_graph(self, args: argparse.Namespace) -> int:
        defs = self.session.defs
        graph = defs.resolve_asset_graph()
        for pipeline in PIPELINES:
            print(f"[{pipeline}]")
            for key in pipeline_assets(defs, [pipeline]):
                node = graph.get(key)
                parents = ", ".join(sorted(p.to_user_string() for p in node.parent_keys)) or "-"
                kind = "daily" if pipeline == "data" else "weekly"
                print(f"  {key.to_user_string():<22} ({kind}) <- {parents}")
        return 0

    def cmd_schedule(self, args: argparse.Namespace) -> int:
        defs = self.session.defs
        now = datetime.now(UTC).timestamp()
        rows = []
        for schedule in defs.schedules or []:
            zone = schedule.execution_timezone or TIMEZONE
            ticks = cron_string_iterator(now, schedule.cron_schedule, zone)
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

    def cmd_logs(self, args: argparse.Namespace) -> int:
        inst = self.session.instance
        record = runstats.last_run(inst, JOBS_BY_PIPELINE[args.pipeline])
        if record is None:
            raise cli.CliError(f"pipeline {args.pipeline} has never run")
        print(f"run {record.dagster_run.run_id} ({record.dagster_run.status.value})")
        for line in cli.run_logs(inst, record.dagster_run.run_id, args.tail):
            print(line)
        return 0


def add_range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", help="first day, YYYY-MM-DD")
    parser.add_argument("--end", help="last day, YYYY-MM-DD")


def _covers(tags: dict[str, str], day: str) -> bool:
    """Whether a run's partition (or partition range) holds ``day``."""
    if tags.get("dagster/partition") == day:
        return True
    first = tags.get(ASSET_PARTITION_RANGE_START_TAG)
    last = tags.get(ASSET_PARTITION_RANGE_END_TAG)
    return bool(first and last and first <= day <= last)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.dispatch(TetraCli().parser("tetra", __doc__.split("\n\n")[0]).parse_args(argv))


console_main = cli.console(main)

if __name__ == "__main__":
    console_main()
