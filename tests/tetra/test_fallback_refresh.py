"""``tetra_fallback_refresh`` (issue 33): a fallback is replaced by the next good fetch
without a person. A real outage (the price folder goes away) then recovery; the sensor is
evaluated as the daemon would (``build_sensor_context`` on the location's repository) and its
run requests are run."""

from pathlib import Path

import dagster as dg
import pytest

from tests.support import latest_metadata
from tests.tetra.conftest import run_job, stored, write_symbol_csv
from tests.tetra.test_failure_actions import check_passed
from tetra_assets.defs import sensors
from tetra_assets.location import LOCATION
from tetra_assets.resources import MarketDataProvider

DAY, WEEK = "2018-01-09", "2018-01-08"


def tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    defs = LOCATION.definitions()
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, repository_def=defs.get_repository_def()
    ) as context:
        return defs.resolve_sensor_def(sensors.SENSOR_NAME)(context)


def requested(result: dg.SensorResult) -> list[tuple[str, str | None]]:
    return [(r.job_name or "", r.partition_key) for r in result.run_requests or []]


def run_request(
    instance: dg.DagsterInstance, request: dg.RunRequest, provider: MarketDataProvider
) -> dg.ExecuteInProcessResult:
    key = request.partition_key or ""
    return run_job(instance, request.job_name or "", key, key, provider)


def test_the_sensor_is_running_by_default_every_ten_minutes() -> None:
    sensor = LOCATION.definitions().resolve_sensor_def(sensors.SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 600


def test_outage_then_recovery_replaces_the_fallback_and_rebuilds_the_week(
    instance: dg.DagsterInstance, data_root: Path, tmp_path: Path
) -> None:
    prices = tmp_path / "prices"
    write_symbol_csv(prices, "ACME", "2017-10-02", "2018-01-12")
    provider = MarketDataProvider(kind="csv", csv_dir=str(prices))
    assert run_job(instance, "tetra_data", "2017-10-02", WEEK, provider).success
    first = tick(instance, None)
    assert requested(first) == []  # nothing fell back

    prices.rename(prices.with_name("offline"))
    assert run_job(instance, "tetra_data", DAY, DAY, provider).success
    assert run_job(instance, "tetra_scenarios", WEEK, WEEK, provider).success  # reads it
    outage = tick(instance, first.cursor)
    (request,) = outage.run_requests or []
    assert (request.job_name, request.partition_key) == ("tetra_data", DAY)
    fallback_id = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("market_data"), asset_partitions=[DAY]), 1
    ).records[0]
    economic_id = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("economic_data"), asset_partitions=[DAY]), 1
    ).records[0]
    top = max(fallback_id.storage_id, economic_id.storage_id)  # both fell back: one run
    assert request.run_key == f"tetra_fallback_refresh:tetra_data:{DAY}:{top}"
    assert requested(tick(instance, outage.cursor)) == []  # once per fallback

    still_down = run_request(instance, request, provider)  # the refresh falls back again
    assert still_down.success and latest_metadata(instance, "market_data", DAY)["fallback"]
    again = tick(instance, outage.cursor)
    (retry,) = again.run_requests or []
    assert retry.partition_key == DAY and retry.run_key != request.run_key  # a new fallback

    prices.with_name("offline").rename(prices)  # the feed is back
    fresh = run_request(instance, retry, provider)
    assert fresh.success
    assert latest_metadata(instance, "market_data", DAY)["fallback"] is False
    assert check_passed(fresh, "market_data_not_fallback")
    assert stored(data_root, "market_data", DAY)["date"].dt.strftime("%F").tolist() == [DAY]

    recovered = tick(instance, again.cursor)  # the week read DAY as a fallback: rebuilt
    assert requested(recovered) == [("tetra_weekly", WEEK)]
    weekly = run_request(instance, (recovered.run_requests or [])[0], provider)
    assert weekly.success
    assert latest_metadata(instance, "scenario_definitions", WEEK)["fallback_inputs"] == {}
    assert requested(tick(instance, recovered.cursor)) == []  # nothing left to refresh


def test_runs_per_tick_are_bounded_and_the_rest_follow(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More pending fallbacks than a tick may request: the first MAX_RUNS_PER_TICK, then the
    others on the next tick, none twice."""
    monkeypatch.setattr(sensors, "MAX_RUNS_PER_TICK", 2)
    days = ["2018-01-09", "2018-01-10", "2018-01-11"]
    for day in days:  # fallbacks as the data assets record them
        meta = {"fallback": True, "fallback_from": "carried forward", "fallback_error": "down"}
        instance.report_runless_asset_event(
            dg.AssetMaterialization("market_data", partition=day, metadata=meta)
        )
    first = tick(instance, None)
    assert requested(first) == [("tetra_data", days[0]), ("tetra_data", days[1])]
    second = tick(instance, first.cursor)
    assert requested(second) == [("tetra_data", days[2])]
    assert requested(tick(instance, second.cursor)) == []


def test_a_run_in_progress_is_not_requested_again(instance: dg.DagsterInstance) -> None:
    """Both data assets fell back on a day: one run is asked for; while it stores them one by
    one (market_data fresh, economic_data not yet), no second run is asked for."""

    def report(asset: str, fallback: bool) -> None:
        meta = {"fallback": fallback}
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset, partition=DAY, metadata=meta)
        )

    report("economic_data", True)
    report("market_data", True)
    first = tick(instance, None)
    assert requested(first) == [("tetra_data", DAY)]
    report("market_data", False)  # the refresh run's first step
    second = tick(instance, first.cursor)
    assert requested(second) == []
    report("economic_data", False)
    assert requested(tick(instance, second.cursor)) == []
