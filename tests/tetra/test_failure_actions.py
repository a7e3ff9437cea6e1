"""Failure actions per pipeline (issue 33): retry counts by group from the platform config
file, and the data pipeline's fallback to the last good value, said out loud (metadata, a
WARN check) and replaced by the next good fetch."""

from pathlib import Path

import dagster as dg
import pytest

from platform_core.platform_config import ConfigError
from tests.support import latest_metadata
from tests.tetra.conftest import event_count, failure_text, run_job, stored, write_symbol_csv
from tetra_assets.location import LOCATION
from tetra_assets.resources import MarketDataProvider

MARKET = dg.AssetKey("market_data")


def retry_of(asset: str) -> dg.RetryPolicy | None:
    graph = LOCATION.definitions().resolve_asset_graph()
    return graph.get(dg.AssetKey(asset)).assets_def.op.retry_policy


def use_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    monkeypatch.setenv("PLATFORM_CONFIG", str(path))


def check_passed(result: dg.ExecuteInProcessResult, name: str) -> bool:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation.passed


def test_seed_retry_counts_by_default() -> None:
    assert retry_of("market_data").max_retries == 3
    assert retry_of("market_events").max_retries == 3


def test_retry_counts_come_from_the_platform_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_config(
        tmp_path,
        monkeypatch,
        "locations:\n  tetra:\n    pipelines:\n      data:\n        failure_actions:\n"
        "          - retry_count: 5\n          - backoff: fixed\n",
    )
    monkeypatch.delenv("TETRA_RETRY_DELAY_SECONDS")  # the file's delay, not the suite's
    policy = retry_of("market_data")
    assert (policy.max_retries, policy.delay, policy.backoff) == (5, 30.0, None)


def test_outage_retries_the_configured_count_then_fails_without_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance, csv_dir: Path
) -> None:
    provider = MarketDataProvider(kind="csv", csv_dir=str(csv_dir))
    assert run_job(instance, "tetra_data", "2018-01-08", "2018-01-08", provider).success
    use_config(
        tmp_path,
        monkeypatch,
        "locations:\n  tetra:\n    pipelines:\n      data:\n        failure_actions:\n"
        "          retry_count: 1\n          fallback: null\n",
    )
    csv_dir.rename(csv_dir.with_name("offline"))
    result = run_job(instance, "tetra_data", "2018-01-09", "2018-01-09", provider)
    assert not result.success  # no fallback asked for: the outage fails the run, as before
    assert event_count(instance, result.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY) == 1
    assert "is not reachable" in failure_text(result)


def test_outage_falls_back_to_the_last_good_session_and_the_next_fetch_replaces_it(
    instance: dg.DagsterInstance, data_root: Path, tmp_path: Path
) -> None:
    prices = tmp_path / "prices"
    write_symbol_csv(prices, "ACME", "2017-10-02", "2018-01-12")
    provider = MarketDataProvider(kind="csv", csv_dir=str(prices))
    assert run_job(instance, "tetra_data", "2017-10-02", "2018-01-08", provider).success
    good = stored(data_root, "market_data", "2018-01-08")

    prices.rename(prices.with_name("offline"))  # the feed goes away (a real unreachable source)
    outage = run_job(instance, "tetra_data", "2018-01-09", "2018-01-09", provider)
    assert outage.success
    assert event_count(instance, outage.run_id, dg.DagsterEventType.STEP_UP_FOR_RETRY) >= 3
    meta = latest_metadata(instance, "market_data", "2018-01-09")
    assert meta["fallback"] is True
    assert meta["fallback_from"] == "carried forward from 2018-01-08"
    assert "is not reachable" in meta["fallback_error"]
    kept = stored(data_root, "market_data", "2018-01-09")
    assert (kept["date"] == "2018-01-09").all()
    assert kept["close"].tolist() == good["close"].tolist()  # the last good value
    assert not check_passed(outage, "market_data_not_fallback")
    (warn,) = [
        e
        for e in outage.get_asset_check_evaluations()
        if e.check_name == "market_data_not_fallback"
    ]
    assert warn.severity == dg.AssetCheckSeverity.WARN
    assert "2018-01-09" in warn.metadata["fallback_partitions"].value

    weekly = run_job(instance, "tetra_scenarios", "2018-01-08", "2018-01-08", provider)
    assert weekly.success
    scenario_meta = instance.get_latest_materialization_event(
        dg.AssetKey("scenario_definitions")
    ).asset_materialization.metadata
    assert scenario_meta["fallback_inputs"].value == {"market_data": ["2018-01-09"]}

    prices.with_name("offline").rename(prices)  # the feed is back
    fresh = run_job(instance, "tetra_data", "2018-01-09", "2018-01-09", provider)
    assert fresh.success
    assert latest_metadata(instance, "market_data", "2018-01-09")["fallback"] is False
    assert check_passed(fresh, "market_data_not_fallback")
    assert stored(data_root, "market_data", "2018-01-09")["close"].iloc[0] != good["close"].iloc[0]


def test_schedules_take_their_cron_from_the_platform_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crons() -> dict[str, str]:
        return {s.name: s.cron_schedule for s in LOCATION.definitions().schedules or []}

    seed = crons()
    assert seed == {"tetra_daily_data": "0 19 * * 1-5", "tetra_weekly_chain": "0 20 * * 0"}
    pipelines = "locations:\n  tetra:\n    pipelines:\n"
    use_config(tmp_path, monkeypatch, pipelines + "      data: {schedule: '30 18 * * 1-5'}\n")
    assert crons() == {**seed, "tetra_daily_data": "30 18 * * 1-5"}
    use_config(tmp_path, monkeypatch, pipelines + "      metrics: {schedule: '0 21 * * 0'}\n")
    with pytest.raises(ConfigError, match=r"line 4: locations.tetra.pipelines.metrics.schedule"):
        LOCATION.definitions()
    use_config(tmp_path, monkeypatch, pipelines + "      data: {schedule: 'at seven'}\n")
    with pytest.raises(ConfigError, match=r"line 4: .*'at seven' is not a cron expression"):
        LOCATION.definitions()


def test_a_long_outage_fails_past_the_carry_forward_limit(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """A kept value stands in for at most MAX_CARRY_FORWARD_SESSIONS sessions after the last
    real one, counted from real data across runs: a fallback is never carried on."""
    prices = tmp_path / "prices"
    write_symbol_csv(prices, "ACME", "2017-10-02", "2018-01-08")
    provider = MarketDataProvider(kind="csv", csv_dir=str(prices))
    assert run_job(instance, "tetra_data", "2017-10-02", "2018-01-08", provider).success
    prices.rename(prices.with_name("offline"))

    # 2018-01-09 .. 2018-01-19: the 6th session after 01-08 is 01-17 (01-15 is a holiday)
    backfill = run_job(instance, "tetra_data", "2018-01-09", "2018-01-19", provider)
    assert not backfill.success
    assert (
        "the last good session 2018-01-08 is 6 sessions old on 2018-01-17, over the "
        "carry-forward limit of 5 sessions" in failure_text(backfill)
    )
    assert max(instance.get_materialized_partitions(MARKET)) == "2018-01-08"  # none kept

    assert run_job(instance, "tetra_data", "2018-01-09", "2018-01-12", provider).success
    assert (
        latest_metadata(instance, "market_data", "2018-01-12")["fallback_from"]
        == "carried forward from 2018-01-08"
    )
    # The next day's run counts from 01-08 (the real value), not from the kept 01-12.
    assert run_job(instance, "tetra_data", "2018-01-16", "2018-01-16", provider).success
    assert (
        latest_metadata(instance, "market_data", "2018-01-16")["fallback_from"]
        == "carried forward from 2018-01-08"
    )
    late = run_job(instance, "tetra_data", "2018-01-17", "2018-01-17", provider)
    assert not late.success
    assert "2018-01-08 is 6 sessions old on 2018-01-17" in failure_text(late)


@pytest.mark.parametrize(
    ("group", "actions", "line", "key", "owner"),
    [
        ("scenarios", "fallback: use_cached_data", 6, "fallback", "data"),
        ("data", "fallback: use_previous_scenarios", 6, "fallback", "scenarios"),
        ("data", "partial_recovery: true", 6, "partial_recovery", "metrics"),
        (
            "metrics",
            "[{retry_count: 2}, {checkpoint_recovery: true}]",
            5,
            "1.checkpoint_recovery",
            "assessment",
        ),
    ],
)
def test_an_action_a_pipeline_cannot_apply_is_refused_with_file_and_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    group: str,
    actions: str,
    line: int,
    key: str,
    owner: str,
) -> None:
    block = (
        f"        failure_actions: {actions}\n"
        if actions.startswith("[")
        else f"        failure_actions:\n          {actions}\n"
    )
    use_config(
        tmp_path, monkeypatch, f"locations:\n  tetra:\n    pipelines:\n      {group}:\n{block}"
    )
    where = f"platform.yaml line {line}: locations.tetra.pipelines.{group}.failure_actions.{key}"
    with pytest.raises(ConfigError) as refused:
        LOCATION.definitions()
    assert where in str(refused.value)
    assert f"applies to the {owner} pipeline only; {group} cannot use it" in str(refused.value)


def test_actions_on_their_own_pipeline_are_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_config(
        tmp_path,
        monkeypatch,
        "locations:\n  tetra:\n    pipelines:\n"
        "      data: {failure_actions: {fallback: use_cached_data, partial_recovery: false}}\n"
        "      assessment: {failure_actions: [{checkpoint_recovery: true}]}\n",
    )
    assert retry_of("market_data").max_retries == 3
