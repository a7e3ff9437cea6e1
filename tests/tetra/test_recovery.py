"""Failure actions of the weekly chain (issue 33): retry counts of the scenarios, metrics and
assessment groups from the platform config, ``use_previous_scenarios``, partial recovery of
the metrics and checkpoint recovery of the backtests."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from platform_core.backfill import run_partition_range
from tests.support import latest_metadata
from tests.tetra.conftest import event_count, run_job, stored, write_symbol_csv
from tests.tetra.test_failure_actions import check_passed, retry_of, use_config
from tests.tetra.test_fallback_refresh import requested, tick
from tetra_assets.location import LOCATION
from tetra_assets.resources import MarketDataProvider

SYNTHETIC = MarketDataProvider(kind="synthetic", synthetic_count=3)
FIRST_DAY, LAST_DAY = "2017-06-01", "2018-03-16"  # a weekly run tolerates a short warm-up
WEEK, NEXT_WEEK = "2018-03-05", "2018-03-12"


def synthetic_job(job: str) -> dg.JobDefinition:
    """A job of the location on the synthetic provider (rebuilt by name on re-execution)."""
    return LOCATION.definitions(provider=SYNTHETIC).resolve_job_def(job)


def test_seed_retry_counts_of_the_weekly_groups() -> None:
    assert retry_of("scenario_timeseries").max_retries == 2
    assert retry_of("statistical_metrics").max_retries == 3
    assert retry_of("assessment_report").max_retries == 1


def test_weekly_retry_counts_come_from_the_platform_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_config(
        tmp_path,
        monkeypatch,
        "locations:\n  tetra:\n    pipelines:\n"
        "      scenarios:\n        failure_actions:\n          retry_count: 5\n"
        "      metrics:\n        failure_actions:\n          - retry_count: 1\n"
        "      assessment:\n        failure_actions:\n          retry_count: 0\n",
    )
    assert retry_of("scenario_definitions").max_retries == 5
    assert retry_of("technical_indicators").max_retries == 1
    assert retry_of("backtest_results") is None  # no retries: no policy
    assert retry_of("market_data").max_retries == 3  # an unset group keeps the seed's


def test_a_failed_week_keeps_the_previous_scenarios_until_a_good_run(
    instance: dg.DagsterInstance, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_job(instance, "tetra_data", FIRST_DAY, LAST_DAY, SYNTHETIC).success
    assert run_job(instance, "tetra_scenarios", WEEK, WEEK, SYNTHETIC).success
    good = stored(data_root, "scenario_definitions", WEEK)

    def exhausted(*_args, **_kwargs):  # what numpy raises when the host is out of memory
        raise MemoryError("Unable to allocate 1.2 GiB for an array")

    with monkeypatch.context() as patch:
        patch.setattr(np.random, "default_rng", exhausted)
        failed = run_job(instance, "tetra_scenarios", NEXT_WEEK, NEXT_WEEK, SYNTHETIC)
    assert failed.success  # the chain goes on, on last week's scenarios
    assert event_count(instance, failed.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY) == 2
    for asset in ("scenario_definitions", "scenario_timeseries"):
        meta = latest_metadata(instance, asset, NEXT_WEEK)
        assert meta["fallback"] is True
        assert meta["fallback_from"] == f"week {WEEK}"
        assert "Unable to allocate" in meta["fallback_error"]
        assert not check_passed(failed, f"{asset}_not_fallback")
        kept = stored(data_root, asset, NEXT_WEEK)
        assert (kept["week"] == NEXT_WEEK).all()  # re-labelled as the failed week
        before = stored(data_root, asset, WEEK)
        pd.testing.assert_frame_equal(kept.drop(columns="week"), before.drop(columns="week"))
    assert latest_metadata(instance, "scenario_definitions", WEEK)["fallback"] is False
    refresh = tick(instance, None)  # the refresh sensor asks for the week's chain again
    assert requested(refresh) == [("tetra_weekly", NEXT_WEEK)]

    metrics = run_job(instance, "tetra_metrics", NEXT_WEEK, NEXT_WEEK, SYNTHETIC)
    assert metrics.success
    read = latest_metadata(instance, "statistical_metrics", NEXT_WEEK)["fallback_inputs"]
    assert read == {"scenario_timeseries": [NEXT_WEEK]}

    fresh = run_job(instance, "tetra_scenarios", NEXT_WEEK, NEXT_WEEK, SYNTHETIC)
    assert fresh.success
    assert latest_metadata(instance, "scenario_definitions", NEXT_WEEK)["fallback"] is False
    assert check_passed(fresh, "scenario_definitions_not_fallback")
    replaced = stored(data_root, "scenario_definitions", NEXT_WEEK)
    assert replaced["market_return"].tolist() != good["market_return"].tolist()


def test_a_failing_indicator_family_leaves_the_others_stored(
    instance: dg.DagsterInstance, data_root: Path, tmp_path: Path
) -> None:
    """An index file without volume (real: index feeds often have none): OBV cannot be
    computed; every other family is stored, equal to a clean run's, OBV listed with its
    error; once the volume is there, a complete run replaces the partial one."""
    prices = tmp_path / "prices"
    write_symbol_csv(prices, "ACME", FIRST_DAY, LAST_DAY)
    index_file = write_symbol_csv(prices, "IDX", FIRST_DAY, LAST_DAY)
    full = pd.read_csv(index_file)
    full.assign(volume="").to_csv(index_file, index=False)
    provider = MarketDataProvider(kind="csv", csv_dir=str(prices))
    assert run_job(instance, "tetra_data", FIRST_DAY, LAST_DAY, provider).success
    assert run_job(instance, "tetra_scenarios", WEEK, WEEK, provider).success

    partial = run_job(instance, "tetra_metrics", WEEK, WEEK, provider)
    assert partial.success  # the partition is not lost
    retries = event_count(instance, partial.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert retries == 3  # the seed's count first: a failure may be transient
    failed = latest_metadata(instance, "technical_indicators", WEEK)["failed_metrics"]
    assert list(failed) == ["obv"]
    assert failed["obv"] == "ValueError: obv needs volume: no volume for IDX"
    assert not check_passed(partial, "technical_indicators_complete")
    kept = stored(data_root, "technical_indicators", WEEK)
    assert "obv" not in kept and {"sma_200", "rsi_14", "atr_14", "hv_252"} <= set(kept)

    full.to_csv(index_file, index=False)  # the feed now has the volume
    assert run_job(instance, "tetra_data", FIRST_DAY, LAST_DAY, provider).success
    clean = run_job(instance, "tetra_metrics", WEEK, WEEK, provider)
    assert clean.success and check_passed(clean, "technical_indicators_complete")
    assert latest_metadata(instance, "technical_indicators", WEEK)["failed_metrics"] == {}
    complete = stored(data_root, "technical_indicators", WEEK)
    assert complete["obv"].notna().all()
    pd.testing.assert_frame_equal(kept, complete[kept.columns])


def test_backtests_resume_from_their_checkpoints(
    instance: dg.DagsterInstance, data_root: Path
) -> None:
    """A backtest that fails after three of its four strategies (a real error: a window of
    0 sessions) is retried, then re-executed from the failure with the fixed config: the
    three completed pieces are never recomputed and the result equals a clean run's."""
    assert run_job(instance, "tetra_data", FIRST_DAY, LAST_DAY, SYNTHETIC).success
    assert run_job(instance, "tetra_scenarios", WEEK, WEEK, SYNTHETIC).success
    settings = {"ops": {"backtest_results": {"config": {"reversion_window": 0}}}}
    job = synthetic_job("tetra_assessment")
    broken = run_partition_range(job, instance, WEEK, WEEK, run_config=settings)
    assert not broken.success
    folder = data_root / "tetra" / "checkpoints" / "backtest_results"
    pieces = sorted(folder.glob("*/*/*.parquet"))
    assert sorted(p.stem.split("_", 1)[1].rsplit("_", 1)[0] for p in pieces) == [
        "buy_and_hold",
        "momentum",
        "sma_crossover",
    ]
    (retry,) = instance.all_logs(broken.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert all(p.stat().st_mtime < retry.timestamp for p in pieces)  # not rewritten after
    messages = [e.user_message for e in instance.all_logs(broken.run_id)]
    assert "resuming from 3 checkpointed pieces" in messages

    options = dg.ReexecutionOptions.from_failure(broken.run_id, instance)
    reconstructable = dg.build_reconstructable_job(
        "tests.tetra.test_recovery", "synthetic_job", reconstructable_args=("tetra_assessment",)
    )
    fixed = {"ops": {"backtest_results": {"config": {"reversion_window": 20}}}}
    parent = instance.get_run_by_id(broken.run_id)
    tags = {k: v for k, v in parent.tags.items() if not k.startswith("dagster/run")}  # as the CLI
    with dg.execute_job(
        reconstructable, instance, run_config=fixed, tags=tags, reexecution_options=options
    ) as resumed:
        assert resumed.success
    assert latest_metadata(instance, "backtest_results", WEEK)["checkpoints_reused"] == 3
    assert not folder.exists() or not any(folder.rglob("*.parquet"))  # cleared
    result = stored(data_root, "backtest_results", WEEK)

    clean = run_partition_range(job, instance, WEEK, WEEK, run_config=fixed)
    assert clean.success
    assert latest_metadata(instance, "backtest_results", WEEK)["checkpoints_reused"] == 0
    pd.testing.assert_frame_equal(result, stored(data_root, "backtest_results", WEEK))
    assert set(result["strategy"]) == {
        "buy_and_hold",
        "sma_crossover",
        "momentum",
        "mean_reversion",
    }
