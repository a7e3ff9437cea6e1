"""Benchmark: 5-year single-run backfill of the whole Tetra chain vs one run per partition.

    uv run python bench/tetra_backfill.py [--symbols 100] [--sample-days 8] [--sample-weeks 4]

Backfills 2019-01-01 .. 2023-12-29 for N synthetic symbols exactly as
``tetra backfill --start 2019-01-01 --end 2023-12-29`` does (data partitions from the widest
history mapping earlier, for warm-up, then every week): the data job as ONE run over its
partition range, the weekly chain as one run per core over contiguous week ranges, at the same
time. Then, in a fresh instance holding the same warm-up data, runs a sample of partitions one
run each and extrapolates to the full partition count. Prints the figures and their ratio.
"""

import argparse
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from platform_core.alerts import Notifier
from platform_core.cli import quiet_warnings, run_partition_range, scratch_instance
from tetra_assets.cli import backfill_job, trading_day_keys, week_keys, with_warm_up
from tetra_assets.definitions import build_definitions
from tetra_assets.resources import MarketDataProvider

START, END = "2019-01-01", "2023-12-29"


def timed_run(defs: dg.Definitions, instance, job: str, first: str, last: str) -> float:
    started = time.perf_counter()
    result = run_partition_range(defs.resolve_job_def(job), instance, first, last)
    if not result.success:
        raise SystemExit(f"{job} {first}..{last} failed")
    return time.perf_counter() - started


def timed_backfill(
    defs: dg.Definitions, instance, job: str, partitions: list[str]
) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    runs = backfill_job(defs, instance, job, partitions, (), {})
    if not all(run["success"] for run in runs):
        raise SystemExit(f"{job} backfill failed: {runs}")
    return time.perf_counter() - started, runs


def main() -> None:
    quiet_warnings()
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--sample-days", type=int, default=8)
    parser.add_argument("--sample-weeks", type=int, default=4)
    args = parser.parse_args()
    first, last = date.fromisoformat(START), date.fromisoformat(END)
    defs = build_definitions(
        MarketDataProvider(kind="synthetic", synthetic_count=args.symbols), Notifier()
    )
    days = trading_day_keys(with_warm_up(defs, first), last)
    weeks = week_keys(first, last)
    # the weekly backfill's worker processes load tetra_assets.definitions from the environment
    os.environ.update({"TETRA_PROVIDER": "synthetic", "TETRA_SYNTHETIC_COUNT": str(args.symbols)})
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["PLATFORM_DATA_ROOT"] = str(Path(scratch, "single"))
        with scratch_instance(tempfile.mkdtemp(dir=scratch)) as instance:
            # as `tetra backfill`: each job's range as runs side by side (backfill_job)
            data_s, data_runs = timed_backfill(defs, instance, "tetra_data", days)
            weekly_s, runs = timed_backfill(defs, instance, "tetra_weekly", weeks)
        single = data_s + weekly_s

        os.environ["PLATFORM_DATA_ROOT"] = str(Path(scratch, "per_partition"))
        with scratch_instance(tempfile.mkdtemp(dir=scratch)) as instance:
            warm = trading_day_keys(with_warm_up(defs, first), first)
            timed_run(defs, instance, "tetra_data", warm[0], warm[-1])  # warm-up, not timed
            step_d = max(1, len(days) // args.sample_days)
            sample_days = days[len(warm) :: step_d][: args.sample_days]
            per_day = [timed_run(defs, instance, "tetra_data", d, d) for d in sample_days]
            # the sampled weeks need their own days: materialize them in one untimed run
            sample_weeks = weeks[:: max(1, len(weeks) // args.sample_weeks)][: args.sample_weeks]
            for week in sample_weeks:
                monday = date.fromisoformat(week)
                history = trading_day_keys(with_warm_up(defs, monday), monday + timedelta(days=6))
                timed_run(defs, instance, "tetra_data", history[0], history[-1])
            per_week = [timed_run(defs, instance, "tetra_weekly", w, w) for w in sample_weeks]
    day_avg, week_avg = sum(per_day) / len(per_day), sum(per_week) / len(per_week)
    extrapolated = day_avg * len(days) + week_avg * len(weeks)
    print(f"symbols={args.symbols} data partitions={len(days)} weekly partitions={len(weeks)}")
    print(
        f"backfill (runs at once: data {len(data_runs)}, weekly chain {len(runs)}): "
        f"data {data_s:.1f}s "
        f"+ weekly chain {weekly_s:.1f}s = {single:.1f}s"
    )
    print(
        f"one run per partition: {day_avg:.2f}s/day x {len(days)} + {week_avg:.2f}s/week x "
        f"{len(weeks)} = {extrapolated:.0f}s (extrapolated from {len(per_day)} days, "
        f"{len(per_week)} weeks)"
    )
    print(f"speed-up: {extrapolated / single:.1f}x")


if __name__ == "__main__":
    main()
