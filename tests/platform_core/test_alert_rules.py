"""Alert rules from a platform config: the wire payloads of every channel on loopback servers,
incidents over real runs (one alert, escalation, resolved), error rate, data age, long runs,
routing, the log fallback for a channel that is down, and bad rules refused with file and line."""

import json
import threading
import time
from email import message_from_bytes
from pathlib import Path

import dagster as dg
import pytest

from platform_core.alert_sensors import (
    build_check_failure_sensor,
    evaluate_rules,
)
from platform_core.alerts import alert_definitions, effective_alerting, notifier_from_env
from platform_core.datastore import DataStore
from platform_core.incidents import raise_alert, resolve_alert
from platform_core.notifier import Alert
from platform_core.platform_config import ConfigError, load
from tests.platform_core.alerting import (
    FAIL,
    Ticker,
    channels,
    config,
    logged,
    quotes,
)
from tests.platform_core.conftest import free_port


def test_every_channel_sends_its_wire_payload(
    tmp_path: Path, smtp_server, http_receiver, secrets
) -> None:
    port, inbox = smtp_server
    rules = """  rules:
    - {name: failed, condition: "pipeline_status == 'failed'", severity: high,
       channels: [email, slack, pagerduty, sms]}
"""
    cfg = load(config(tmp_path, channels(tmp_path, port, http_receiver.base) + rules))
    alerting = effective_alerting(cfg)
    notifier = notifier_from_env(DataStore(root=str(tmp_path), location="test"), cfg)
    key = "test/failed/prices"
    alert = Alert("test: run 1234 of prices failed", "boom", location="test", pipeline="prices")
    assert raise_alert(notifier, alerting, alerting.rules[0], key, alert) == "opened"
    assert raise_alert(notifier, alerting, alerting.rules[0], key, alert) == "open"  # no 2nd
    resolve_alert(notifier, key, "prices: run 5678 succeeded")

    mails = [message_from_bytes(raw) for _, _, raw in inbox.messages]
    assert [m["Subject"] for m in mails] == [
        "[HIGH] test: run 1234 of prices failed",
        "[HIGH] resolved: test: failed prices",
    ]
    assert mails[0]["To"] == "ops@example.org" and mails[0]["From"] == "dagster@localhost"
    assert http_receiver.bodies("/slack") == [
        {"text": "*[HIGH] test: run 1234 of prices failed*\nboom", "channel": "#data-alerts"},
        {
            "text": "*[HIGH] resolved: test: failed prices*\nprices: run 5678 succeeded",
            "channel": "#data-alerts",
        },
    ]
    trigger, resolve = http_receiver.bodies("/pd")
    assert trigger == {
        "routing_key": "pd-routing-key",
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": "test: run 1234 of prices failed",
            "source": "asset-platform",
            "severity": "error",
            "custom_details": {"body": "boom", "location": "test", "pipeline": "prices"},
        },
    }
    assert resolve == {"routing_key": "pd-routing-key", "event_action": "resolve", "dedup_key": key}
    sms = [(h, b) for p, h, b in http_receiver.requests if p == "/sms"]
    assert sms[0][0]["Authorization"] == "Bearer sms-token"
    assert sms[0][1] == {
        "to": "+15550100",
        "text": "[high] test: run 1234 of prices failed",
        "where": "test/prices",
    }
    assert sms[1][1]["text"] == "[high] resolved: test: failed prices"
    assert logged(tmp_path) == []  # everything delivered: no fallback entry


def test_a_channel_that_is_down_leaves_the_alert_in_the_log(tmp_path: Path, http_receiver) -> None:
    rules = """  rules:
    - {name: failed, condition: check_failed, severity: medium, channels: [email]}
"""
    cfg = load(config(tmp_path, channels(tmp_path, free_port(), http_receiver.base) + rules))
    alerting = effective_alerting(cfg)
    notifier = notifier_from_env(DataStore(root=str(tmp_path), location="test"), cfg)
    alert = Alert("test: check positive failed on prices", "1 negative")
    raise_alert(notifier, alerting, alerting.rules[0], "test/failed/positive", alert)
    (entry,) = logged(tmp_path)
    assert entry["subject"] == "test: check positive failed on prices"
    assert entry["undelivered"]["email"].startswith("error: ConnectionRefusedError")


@pytest.mark.parametrize(
    ("rule", "line", "says"),
    [
        ('{name: r, condition: "cpu > 3", severity: low, channels: [log]}', 6, "cpu > 3"),
        ("{name: r, condition: check_failed, severity: low, channels: [pager]}", 6, "'pager'"),
        ('{name: r, condition: "error_rate > 1.5", severity: low, channels: [log]}', 6, "[0, 1)"),
        ('{name: r, condition: "error_rate > x", severity: low, channels: [log]}', 6, "'x' is not"),
        ("{name: a/b, condition: check_failed, severity: low, channels: [log]}", 6, "no '/'"),
        (
            "{name: r, condition: check_failed, severity: low, channels: [log], window_runs: 0}",
            6,
            "greater than or equal to 1",
        ),
        (
            "{name: r, condition: check_failed, severity: low, channels: [log]}\n"
            "    - {name: r, condition: check_failed, severity: low, channels: [log]}",
            7,
            "rule name 'r' is used twice",
        ),
        (
            "{name: r, condition: check_failed, severity: low, channels: [log],"
            " locations: [nowhere]}",
            6,
            "locations.0: no such code location",
        ),
    ],
)
def test_bad_rules_are_refused_with_file_and_line(
    tmp_path: Path, rule: str, line: int, says: str
) -> None:
    path = config(tmp_path, f"alerting:\n  channels:\n    log: {{}}\n\n  rules:\n    - {rule}\n")
    with pytest.raises(ConfigError) as error:
        load(path)
    assert f"{path} line {line}" in str(error.value) and says in str(error.value)


def test_failures_alert_once_escalate_at_three_and_resolve(
    tmp_path: Path, instance, http_receiver, secrets
) -> None:
    rules = """  rules:
    - {name: failed, condition: "pipeline_status == 'failed'", severity: high, channels: [slack]}
    - {name: other_only, condition: "pipeline_status == 'failed'", severity: high,
       channels: [sms], pipelines: [weather]}
  escalation: {after_consecutive_failures: 3, channels: [pagerduty]}
"""
    cfg = load(config(tmp_path, channels(tmp_path, free_port(), http_receiver.base) + rules))
    ticker = Ticker(tmp_path, instance, [quotes], cfg)

    def texts() -> list[str]:
        return [b["text"].splitlines()[0] for b in http_receiver.bodies("/slack")]

    ticker.run(ok=False)
    assert len(texts()) == 1 and texts()[0].startswith("*[HIGH] test: run ")
    ticker.run(ok=False)
    ticker.tick()  # the same runs again: no second alert
    assert len(texts()) == 1 and http_receiver.bodies("/pd") == []
    ticker.run(ok=False)
    assert texts()[1].startswith("*[CRITICAL] escalated after 3 consecutive failures: test: run")
    (trigger,) = http_receiver.bodies("/pd")
    assert trigger["payload"]["severity"] == "critical"
    ticker.run(ok=True)
    assert texts()[2] == "*[CRITICAL] resolved: test: failed prices*"
    # the escalation is an event of its own (PagerDuty would fold a same-key trigger into the
    # open one, severity unchanged); the resolution closes both keys
    assert trigger["dedup_key"] == "test/failed/prices/escalated"
    events = [(b["event_action"], b["dedup_key"]) for b in http_receiver.bodies("/pd")[1:]]
    assert events == [("resolve", "test/failed/prices"), ("resolve", trigger["dedup_key"])]
    assert http_receiver.bodies("/sms") == []  # routed to another pipeline only
    ticker.run(ok=False)  # a new incident after the resolution
    assert len(texts()) == 4 and texts()[3].startswith("*[HIGH] test: run ")


def test_error_rate_over_a_window_of_runs(tmp_path: Path, instance, http_receiver, secrets) -> None:
    rules = """  rules:
    - {name: errors, condition: "error_rate > 0.3", severity: high, channels: [slack],
       window_runs: 5}
"""
    cfg = load(config(tmp_path, channels(tmp_path, free_port(), http_receiver.base) + rules))
    ticker = Ticker(tmp_path, instance, [quotes], cfg)
    for ok in [False] * 2 + [True] * 3:
        ticker.run(ok, tick=False)
    ticker.tick()  # 2 failures in the last 5 runs
    ticker.tick()
    (opened,) = http_receiver.bodies("/slack")
    assert opened["text"].startswith("*[HIGH] test: prices: error_rate 0.4 (over 5 runs)")
    ticker.run(ok=True)  # the window holds 1 failure in 5
    assert http_receiver.bodies("/slack")[1]["text"].startswith("*[HIGH] resolved: test: errors")


def test_data_age_over_a_tiny_threshold(tmp_path: Path, instance, http_receiver, secrets) -> None:
    rules = """  rules:
    - {name: old_data, condition: "data_age_hours > 0.0005", severity: medium, channels: [slack]}
"""
    cfg = load(config(tmp_path, channels(tmp_path, free_port(), http_receiver.base) + rules))
    ticker = Ticker(tmp_path, instance, [quotes], cfg)
    ticker.run(ok=True)
    assert http_receiver.bodies("/slack") == []  # fresh
    assert evaluate_rules(instance, ticker.defs, "test", ticker.alerting, ticker.notifier)[0] == {}
    later = time.time() + 2.0  # the data is 2 s old then: over 0.0005 h (1.8 s)
    outcome = evaluate_rules(
        instance, ticker.defs, "test", ticker.alerting, ticker.notifier, now=later
    )[0]
    assert outcome == {"test/old_data/prices": "opened"}
    assert http_receiver.bodies("/slack")[0]["text"].startswith(
        "*[MEDIUM] test: prices: data_age_hours"
    )
    ticker.run(ok=True)
    assert http_receiver.bodies("/slack")[1]["text"].startswith(
        "*[MEDIUM] resolved: test: old_data"
    )


def test_a_long_run_raises_an_alert_and_is_not_cancelled(
    tmp_path: Path, instance, http_receiver, secrets
) -> None:
    started, release = threading.Event(), threading.Event()

    @dg.asset(group_name="prices")
    def slow() -> None:
        started.set()
        assert release.wait(60)

    rules = """  rules:
    - {name: long_running, condition: "duration_minutes > 0.0001", severity: low, channels: [slack]}
"""
    cfg = load(config(tmp_path, channels(tmp_path, free_port(), http_receiver.base) + rules))
    ticker = Ticker(tmp_path, instance, [slow], cfg)
    job = ticker.defs.resolve_job_def("prices_job")  # a job run: no asset selection
    results: list[dg.ExecuteInProcessResult] = []
    thread = threading.Thread(
        target=lambda: results.append(job.execute_in_process(instance=instance))
    )
    thread.start()
    try:
        assert started.wait(30)
        ticker.tick()
        ticker.tick()  # still running: no second alert
    finally:
        release.set()
        thread.join(60)
    (alert,) = http_receiver.bodies("/slack")
    assert alert["text"].startswith("*[LOW] test: run ") and " running for " in alert["text"]
    ticker.tick()
    resolved = http_receiver.bodies("/slack")[1]["text"]
    assert (
        resolved.startswith("*[LOW] resolved: test: long_running")
        and "the run ended: SUCCESS" in resolved
    )
    assert results[0].success


def test_the_location_gets_four_alert_sensors() -> None:
    defs = alert_definitions("test", dg.Definitions(assets=[quotes]), load())
    names = {s.name for s in defs.sensors}
    assert names == {
        "test_run_failure_alert",
        "test_check_failure_alert",
        "test_freshness_alert",
        "test_alert_rules",
    }


def test_a_failed_check_resolves_when_it_passes_again(tmp_path: Path, instance) -> None:

    @dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="prices")])
    def prices():
        yield dg.Output(None)
        yield dg.AssetCheckResult(check_name="positive", passed=not FAIL.is_set())

    sensor = build_check_failure_sensor("test")
    repo = dg.Definitions(assets=[prices], sensors=[sensor]).get_repository_def()
    notifier = notifier_from_env(DataStore(root=str(tmp_path), location="test"))
    cursor = None
    for ok in (False, False, True):
        FAIL.clear() if ok else FAIL.set()
        dg.materialize([prices], instance=instance)
        with dg.build_sensor_context(
            instance=instance, resources={"notifier": notifier}, repository_def=repo, cursor=cursor
        ) as context:
            sensor(context)
            cursor = context.cursor
    subjects = [
        json.loads(line)["subject"] for line in notifier.store.alert_log().read_text().splitlines()
    ]
    assert subjects == [  # the second failure is the same incident
        "test: check positive failed on prices",
        "resolved: test: check_failed positive@prices/-",
    ]


def test_without_an_alerting_section_the_legacy_rules_apply(
    monkeypatch, tmp_path: Path, http_receiver
) -> None:
    monkeypatch.setenv("PLATFORM_ALERT_CHANNELS", "log,webhook")
    monkeypatch.setenv("PLATFORM_WEBHOOK_URL", f"{http_receiver.base}/legacy")
    alerting = effective_alerting(load())
    assert alerting.channels is None  # the Notifier's PLATFORM_ALERT_* fields
    assert [(r.kind, r.severity, r.threshold, r.channels) for r in alerting.rules] == [
        ("run_failed", "high", None, None),
        ("check_failed", "medium", None, None),
        ("freshness_failed", "medium", None, None),
        ("duration_minutes", "low", 120.0, None),
    ]
    notifier = notifier_from_env(DataStore(root=str(tmp_path), location="test"))
    assert notifier.channels_json is None
    with dg.build_resources({"notifier": notifier}) as resources:  # resolves the EnvVars
        assert resources.notifier.notify("s", "b", "high") == {"log": "ok", "webhook": "ok"}
    assert http_receiver.bodies("/legacy") == [{"text": "*[HIGH] s*\nb"}]
