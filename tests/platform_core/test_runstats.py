"""Pipeline statistics over real runs: error rate, consecutive failures, durations, groups."""

import time
from datetime import timedelta

import dagster as dg
import pytest

from platform_core import runstats

FAIL = {"two": False}


@dg.asset(group_name="one")
def first() -> int:
    return 1


@dg.asset(group_name="two", deps=[first])
def second() -> int:
    if FAIL["two"]:
        raise dg.Failure("second broke")
    return 2


@dg.asset(
    group_name="two",
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=1)),
)
def third() -> int:
    return 3


DEFS = dg.Definitions(assets=[first, second, third])


def run(instance: dg.DagsterInstance, fail: bool, assets: list | None = None) -> str:
    FAIL["two"] = fail
    result = dg.materialize(
        assets or [first, second, third], instance=instance, raise_on_error=False
    )
    assert result.success is not fail
    return result.run_id


def test_failing_then_succeeding_runs(instance: dg.DagsterInstance) -> None:
    never = runstats.RunHistory(instance, DEFS, "here").stats("two")
    assert (never.status, never.error_rate, never.data_freshness) == ("never run", None, "unknown")

    failed = [run(instance, fail=True) for _ in range(2)]
    record = instance.get_run_record_by_id(failed[0])
    assert runstats.belongs(record.dagster_run, "here", DEFS, instance)
    assert not runstats.belongs(record.dagster_run, "here", DEFS)  # no instance: by job only
    assert runstats.run_groups(instance, record.dagster_run, DEFS) == {
        "one": "SUCCESS",
        "two": "FAILURE",
    }
    assert "second broke" in runstats.run_failure(instance, failed[0])
    two = runstats.RunHistory(instance, DEFS, "here").stats("two")
    assert (two.status, two.consecutive_failures, two.error_rate) == ("FAILURE", 2, 1.0)
    assert two.last_run == failed[1]
    one = runstats.RunHistory(instance, DEFS, "here").stats("one")
    assert (one.status, one.consecutive_failures, one.error_rate) == ("SUCCESS", 0, 0.0)

    ok = run(instance, fail=False)
    two = runstats.RunHistory(instance, DEFS, "here").stats("two")
    assert (two.status, two.last_run, two.consecutive_failures) == ("SUCCESS", ok, 0)
    assert (two.runs_in_window, two.failures_in_window) == (3, 2)
    assert two.error_rate == pytest.approx(2 / 3)
    records = [instance.get_run_record_by_id(i) for i in [*failed, ok]]
    durations = [r.end_time - r.start_time for r in records]
    assert two.avg_duration_s == pytest.approx(sum(durations) / 3, abs=1e-3)
    assert two.data_freshness == "fresh" and two.data_age_hours is not None

    window = runstats.RunHistory(instance, DEFS, "here").stats("two", window_runs=1)
    assert (window.runs_in_window, window.error_rate) == (1, 0.0)
    later = runstats.RunHistory(instance, DEFS, "here").stats("two", now=time.time() + 25 * 3600)
    assert later.runs_in_window == 0 and later.error_rate is None
    assert later.data_freshness == "stale"  # third's one-hour window passed
    minute = time.time() + 60  # the data is a minute old then: older than 0.01 h
    aged = runstats.RunHistory(instance, DEFS, "here").stats(
        "one", max_data_age_hours=0.01, now=minute
    )
    assert aged.data_freshness == "stale" and aged.data_age_hours > 0.01
    young = runstats.RunHistory(instance, DEFS, "here").stats(
        "one", max_data_age_hours=1.0, now=minute
    )
    assert young.data_freshness == "fresh"


def test_a_one_group_run_leaves_the_other_group_alone(instance: dg.DagsterInstance) -> None:
    run(instance, fail=False, assets=[first])
    assert runstats.RunHistory(instance, DEFS, "here").stats("one").runs_in_window == 1
    assert runstats.RunHistory(instance, DEFS, "here").stats("two").status == "never run"
    assert len(runstats.location_runs(instance, DEFS, "here")) == 1
    assert runstats.location_runs(instance, dg.Definitions(), "here") == []  # not its assets
