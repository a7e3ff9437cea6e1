"""``tetra`` end to end in subprocesses, against one persistent instance (as the UI sees it)."""

import itertools
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.tetra.conftest import tetra

pytestmark = pytest.mark.slow  # real tools or a year of data: minutes (README: test tiers)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli")
    return {
        **os.environ,
        "DAGSTER_HOME": str(root / "home"),
        "PLATFORM_DATA_ROOT": str(root / "data"),
        "TETRA_PROVIDER": "synthetic",
        "TETRA_SYNTHETIC_COUNT": "5",
    }


@pytest.fixture(scope="module")
def year(env: dict[str, str]) -> tuple[str, str]:
    last = datetime.now(UTC).date() - timedelta(days=1)
    first = last - timedelta(days=365)
    result = tetra(env, "backfill", "--start", str(first), "--end", str(last), "--json")
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)
    # no daemon serves this instance: the work runs here, cut from the definitions: market
    # data (what the weeks read) from the first week's warm-up in runs of at most 2,100
    # sessions, economic data over the range beside it, then market events (they read 70
    # earlier days of market data); the weekly chain in contiguous runs of at most 131 weeks
    assert runs[0]["job"] == "tetra_data" and all(r["status"] == "SUCCESS" for r in runs)
    data = [r["partitions"].split("..") for r in runs if r["job"] == "tetra_data"]
    weekly = [r["partitions"].split("..") for r in runs if r["job"] == "tetra_weekly"]
    *market, economic, events = sorted(data)
    assert economic == events and economic[0] >= str(first), data  # the range itself
    assert len(market) == 2 and market[0][0] < str(first) and market[-1][1] == economic[1]
    assert market[0][1] < market[1][0]  # ~12 years of sessions in two contiguous runs
    weeks = (last - first).days // 7 + 1
    assert len(weekly) == -(-weeks // 131) or len(weekly) == -(-(weeks + 1) // 131)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(weekly))  # contiguous, in order
    return str(first), str(last)


def test_backfill_a_year_then_every_pipeline_is_fresh(env, year) -> None:
    status = json.loads(tetra(env, "status", "--json").stdout)
    assert [p["pipeline"] for p in status] == ["data", "scenarios", "metrics", "assessment"]
    for pipeline in status:
        assert pipeline["status"] == "SUCCESS"
        assert pipeline["freshness"] == "fresh", pipeline
        assert all(a["freshness"] == "fresh" for a in pipeline["assets"])
    weekly = {a["asset"]: a for a in status[3]["assets"]}
    assert weekly["strategy_rankings"]["partitions"] >= 52


def test_second_run_is_up_to_date_and_force_plans_everything(env, year) -> None:
    first, last = year
    again = tetra(env, "run", "--pipeline", "metrics", "--start", first, "--end", last)
    assert again.returncode == 0 and "up to date: nothing would be computed" in again.stdout
    forced = tetra(
        env,
        "run",
        "--pipeline",
        "metrics",
        "--start",
        first,
        "--end",
        last,
        "--dry-run",
        "--force",
        "--json",
    )
    steps = json.loads(forced.stdout)
    assert {s["asset"] for s in steps} == {
        "technical_indicators",
        "statistical_metrics",
        "ml_features",
    }
    assert all(s["reason"] == "forced (--force)" for s in steps)


def test_dry_run_explains_missing_partitions_and_runs_nothing(env, year) -> None:
    before = json.loads(tetra(env, "status", "--json").stdout)[0]["last_run"]
    plan = tetra(
        env,
        "run",
        "--pipeline",
        "data",
        "--start",
        "2010-03-01",
        "--end",
        "2010-03-05",
        "--dry-run",
    )
    assert plan.returncode == 0
    assert "market_data    5           2010-03-01  2010-03-05  5 never materialized" in plan.stdout
    assert json.loads(tetra(env, "status", "--json").stdout)[0]["last_run"] == before


def test_logs_graph_and_schedule(env, year) -> None:
    logs = tetra(env, "logs", "--pipeline", "data", "--tail", "5")
    assert logs.returncode == 0
    assert logs.stdout.splitlines()[0].endswith("(SUCCESS)")
    assert "RUN_SUCCESS" in logs.stdout and len(logs.stdout.splitlines()) == 6
    graph = tetra(env, "graph").stdout
    assert (
        "backtest_results       (weekly) <- market_data, scenario_definitions, scenario_timeseries"
        in graph
    )
    schedule = json.loads(tetra(env, "schedule", "--json").stdout)
    by_name = {row["name"]: row for row in schedule}
    assert by_name["tetra_daily_data"]["when"] == "0 19 * * 1-5 (America/New_York)"
    assert by_name["tetra_weekly_chain"]["when"] == "0 20 * * 0 (America/New_York)"
    assert all(row["default"] == "RUNNING" for row in schedule)
    assert by_name["tetra_weekly_chain"]["next"]  # a concrete next tick


def test_runs_are_in_the_instance_the_ui_reads(env, year) -> None:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    try:
        with dg.DagsterInstance.get() as instance:
            jobs = {r.dagster_run.job_name for r in instance.get_run_records()}
            assert {"tetra_data", "tetra_weekly"} <= jobs
            assert Path(env["DAGSTER_HOME"], "dagster.yaml").exists()
    finally:
        os.environ.pop("DAGSTER_HOME")
