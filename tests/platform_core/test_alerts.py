"""The notifier against a real SMTP server and a real HTTP server on loopback."""

import json
import time
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path

import dagster as dg

from platform_core.alert_sensors import (
    build_check_failure_sensor,
    build_freshness_failure_sensor,
    build_run_failure_sensor,
)
from platform_core.datastore import DataStore
from platform_core.notifier import Notifier


def test_all_channels_deliver(tmp_path: Path, smtp_server, webhook_server) -> None:
    port, inbox = smtp_server
    url, posted = webhook_server
    notifier = Notifier(
        store=DataStore(root=str(tmp_path / "unused"), location="test"),
        channels="log,email,webhook",
        log_path=str(tmp_path / "alerts.log"),
        smtp_port=port,
        smtp_recipients="ops@example.org",
        webhook_url=url,
    )
    outcome = notifier.notify("market_data stale", "partition 2018-01-02 missing", "warn")
    assert outcome == {"log": "ok", "email": "ok", "webhook": "ok"}

    logged = [json.loads(line) for line in (tmp_path / "alerts.log").read_text().splitlines()]
    assert logged[0]["subject"] == "market_data stale" and logged[0]["severity"] == "warn"

    sender, recipients, raw = inbox.messages[0]
    assert sender == "dagster@localhost"
    mail = message_from_bytes(raw)
    assert recipients == ["ops@example.org"]
    assert mail["Subject"] == "[WARN] market_data stale"
    assert "partition 2018-01-02 missing" in mail.get_payload()

    assert posted == [{"text": "*[WARN] market_data stale*\npartition 2018-01-02 missing"}]


def test_a_failing_channel_does_not_stop_the_others(tmp_path: Path, webhook_server) -> None:
    url, posted = webhook_server
    notifier = Notifier(
        store=DataStore(root=str(tmp_path), location="test"),
        channels="email,webhook,pager",
        smtp_port=1,  # nothing listens: connection refused
        smtp_recipients="ops@example.org",
        webhook_url=url,
    )
    outcome = notifier.notify("s", "b")
    assert outcome["email"].startswith("error: ConnectionRefusedError")
    assert outcome["webhook"] == "ok"
    assert "unknown channel type 'pager'" in outcome["pager"]
    assert len(posted) == 1


def test_run_failure_sensor_notifies(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    @dg.asset
    def broken() -> None:
        raise RuntimeError("vendor API returned 503")

    result = dg.materialize([broken], instance=instance, raise_on_error=False)
    assert not result.success
    sensor = build_run_failure_sensor("test")
    failure = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0]
    log = tmp_path / "alerts.log"
    with dg.build_run_status_sensor_context(  # a context manager: the notifier nests the store
        sensor_name=sensor.name,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=failure.dagster_event,
        resources={"notifier": Notifier(store=DataStore(root=str(tmp_path), location="test"))},
    ) as context:
        sensor(context.for_run_failure())
    alert = json.loads(log.read_text())
    job = result.dagster_run.job_name
    assert alert["subject"] == f"test: run {result.run_id[:8]} of {job} failed"
    assert result.run_id in alert["body"]
    assert "broken: RuntimeError: vendor API returned 503" in alert["body"]


def test_check_failure_sensor_notifies_each_failure_once(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    @dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="prices")])
    def prices():
        yield dg.Output(None)
        yield dg.AssetCheckResult(check_name="positive", passed=False, description="1 negative")

    dg.materialize([prices], instance=instance)
    log = tmp_path / "alerts.log"
    sensor = build_check_failure_sensor("test")
    resources = {"notifier": Notifier(store=DataStore(root=str(tmp_path), location="test"))}
    repo = dg.Definitions(assets=[prices], sensors=[sensor]).get_repository_def()
    with dg.build_sensor_context(
        instance=instance, resources=resources, repository_def=repo
    ) as context:
        sensor(context)
    alerts = [json.loads(line) for line in log.read_text().splitlines()]
    assert [a["subject"] for a in alerts] == ["test: check positive failed on prices"]
    assert "1 negative" in alerts[0]["body"]

    with dg.build_sensor_context(
        instance=instance, resources=resources, repository_def=repo, cursor=context.cursor
    ) as context:
        sensor(context)  # nothing new: no second alert
    assert len(log.read_text().splitlines()) == 1


def test_freshness_sensor_notifies_each_stale_spell_once(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """The daemon records a FreshnessStateChange when a policy starts failing (reported here as
    the daemon does; the private event class is pinned by this import): one alert per spell,
    none for an asset that is fresh again or has no policy."""
    from platform_core.dagster_internals import FreshnessState, FreshnessStateChange

    policy = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=1))

    @dg.asset(freshness_policy=policy)
    def prices() -> None: ...

    @dg.asset(freshness_policy=policy)
    def volumes() -> None: ...

    def change(key: str, new: FreshnessState, old: FreshnessState, at: float) -> None:
        instance.report_runless_asset_event(
            FreshnessStateChange(
                key=dg.AssetKey(key), new_state=new, previous_state=old, state_change_timestamp=at
            )
        )

    now = time.time()
    change("prices", FreshnessState.FAIL, FreshnessState.PASS, now - 60)
    change("volumes", FreshnessState.PASS, FreshnessState.UNKNOWN, now - 60)
    log = tmp_path / "alerts.log"
    sensor = build_freshness_failure_sensor("test")
    resources = {"notifier": Notifier(store=DataStore(root=str(tmp_path), location="test"))}
    repo = dg.Definitions(assets=[prices, volumes], sensors=[sensor]).get_repository_def()

    def evaluate(cursor: str | None) -> str | None:
        with dg.build_sensor_context(
            instance=instance, resources=resources, repository_def=repo, cursor=cursor
        ) as context:
            sensor(context)
            return context.cursor

    def subjects() -> list[str]:
        return [json.loads(line)["subject"] for line in log.read_text().splitlines()]

    cursor = evaluate(evaluate(None))  # the second tick sees the same spell: no new alert
    assert subjects() == ["test: prices is stale"]
    change("prices", FreshnessState.PASS, FreshnessState.FAIL, now - 30)
    change("prices", FreshnessState.FAIL, FreshnessState.PASS, now)  # a new stale spell
    evaluate(cursor)
    assert subjects() == ["test: prices is stale"] * 2
