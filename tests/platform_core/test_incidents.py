"""Incidents after review: one locked step per occurrence, retries not counted twice, one
incident for a pipeline's own channels and the global rule, no silent drop, warnings and
health checks not paged, SMS templates checked at load, secrets kept out of the alert log."""

import json
from pathlib import Path

import dagster as dg
import pytest

from platform_core import runstats
from platform_core.alert_sensors import alert_failed_run, build_check_failure_sensor, evaluate_rules
from platform_core.alerts import (
    HEALTH_GROUP,
    Alerting,
    RuleSpec,
    effective_alerting,
    notifier_from_env,
)
from platform_core.datastore import DataStore
from platform_core.incidents import Escalation, Incidents
from platform_core.notifier import Alert, Notifier
from platform_core.platform_config import ConfigError, load
from tests.platform_core.alerting import FAIL, SMS_TEMPLATE, channels, config, quotes
from tests.platform_core.conftest import free_port

RULE = RuleSpec("failed", "run_failed", "high", ("log",))


def failed_run(instance: dg.DagsterInstance, parent: str | None = None) -> dg.DagsterRun:
    FAIL.set()
    tags = {runstats.PARENT_TAG: parent} if parent else None
    result = dg.materialize([quotes], instance=instance, raise_on_error=False, tags=tags)
    return instance.get_run_by_id(result.run_id)


def test_a_retry_is_not_a_new_consecutive_failure(tmp_path: Path, instance) -> None:
    incidents = Incidents(tmp_path)
    escalation = Escalation(after=2, severity="critical", channels=("log",))
    first = failed_run(instance)
    assert incidents.occur("k", RULE, first, escalation)[0] == "opened"
    retry = failed_run(instance, parent=first.run_id)
    state, incident = incidents.occur("k", RULE, retry, escalation)
    assert (state, incident.count, incident.runs) == ("open", 1, [first.run_id, retry.run_id])
    assert incidents.occur("k", RULE, retry, escalation)[1].count == 1  # seen: counted once
    state, incident = incidents.occur("k", RULE, failed_run(instance), escalation)
    assert (state, incident.count, incident.severity) == ("escalated", 2, "critical")


def test_an_occurrence_after_a_resolution_opens_a_new_incident(tmp_path: Path, instance) -> None:
    """The resolution between two sensors' steps: no KeyError, a fresh incident."""
    incidents = Incidents(tmp_path)
    run = failed_run(instance)
    incidents.occur("k", RULE, run)
    before = incidents.path.stat().st_mtime_ns
    assert incidents.resolve("nothing-open") is None
    assert incidents.path.stat().st_mtime_ns == before  # nothing popped, nothing written
    assert incidents.resolve("k") is not None
    assert incidents.occur("k", RULE, run)[0] == "opened"


def test_a_pipelines_notify_joins_the_global_rule(
    tmp_path: Path, instance, http_receiver, secrets
) -> None:
    body = (
        channels(tmp_path, free_port(), http_receiver.base)
        + """  rules:
    - {name: failed, condition: "pipeline_status == 'failed'", severity: high, channels: [slack]}
locations:
  test:
    pipelines:
      prices: {failure_actions: [notify: [sms]]}
"""
    )
    path = config(tmp_path, body)
    with pytest.raises(ConfigError, match="no such code location"):
        load(path)  # "test" is not a code location of this workspace
    path.write_text(body.replace("  test:", "  tetra:"))
    cfg = load(path)
    alerting = effective_alerting(cfg, {}, "tetra", ("prices",))
    (rule,) = alerting.rules_for("run_failed", "tetra", "prices")
    assert (rule.name, rule.channels) == ("failed", ("slack", "sms"))
    notifier = notifier_from_env(DataStore(root=str(tmp_path), location="tetra"), cfg)
    defs = dg.Definitions(assets=[quotes])
    outcome = alert_failed_run(instance, failed_run(instance), "tetra", alerting, defs, notifier)
    assert outcome == {"tetra/failed/prices": "opened"}  # one incident, not one per rule
    assert len(http_receiver.bodies("/slack")) == len(http_receiver.bodies("/sms")) == 1


def test_an_alert_with_no_enabled_channel_goes_to_the_log(tmp_path: Path) -> None:
    notifier = Notifier(store=DataStore(root=str(tmp_path), location="t"), channels="log")
    outcome = notifier.send(Alert("s", "b"), channels=["pagerduty"])
    assert outcome == {"*": "no enabled channel among: pagerduty"}
    (line,) = Path(notifier.store.alert_log()).read_text().splitlines()
    entry = json.loads(line)
    assert entry["subject"] == "s" and entry["undelivered"] == outcome


def test_a_url_in_an_error_is_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_HOOK", "hooks.example.org/T000/secret-token")  # no scheme
    specs = '{"log": {"type": "log"}, "hook": {"type": "slack", "url_env": "TEST_HOOK"}}'
    store = DataStore(root=str(tmp_path), location="t")
    notifier = Notifier(store=store, channels_json=specs)
    outcome = notifier.send(Alert("s", "b"))
    assert outcome["hook"].startswith("error: ValueError") and "<redacted>" in outcome["hook"]
    assert "secret-token" not in Path(store.alert_log()).read_text()


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ('{"text": {subject}}', "does not render to JSON"),
        ('{"text": "{subject}"', "does not render to JSON"),
    ],
)
def test_a_bad_sms_template_is_refused_at_load(tmp_path: Path, template: str, says: str) -> None:
    text = channels(tmp_path, free_port(), "http://127.0.0.1:9").replace(SMS_TEMPLATE, template)
    path = config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert f"{path} line 11: alerting.channels.sms.payload_template" in str(caught.value)
    assert says in str(caught.value)


def test_warnings_and_health_checks_are_not_paged(tmp_path: Path, instance) -> None:
    @dg.asset(
        group_name="prices",
        check_specs=[dg.AssetCheckSpec("soft", asset="prices")],
    )
    def prices() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            check_results=[dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN)]
        )

    health = dg.AssetSpec("platform_health", group_name=HEALTH_GROUP)

    @dg.asset_check(asset=health.key)
    def disk() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False)

    defs = dg.Definitions(assets=[prices, health], asset_checks=[disk])
    dg.materialize([prices], instance=instance)  # its WARN check fails
    failed = dg.AssetCheckEvaluation(asset_key=health.key, check_name="disk", passed=False)
    instance.report_runless_asset_event(failed)  # as the health sensor records it
    store = DataStore(root=str(tmp_path), location="t")
    notifier = Notifier(store=store)
    sensor = build_check_failure_sensor("t")
    with dg.build_sensor_context(
        instance=instance,
        resources={"notifier": notifier},
        repository_def=defs.get_repository_def(),
    ) as context:
        sensor(context)
    assert not Path(store.alert_log()).exists()
    rule = RuleSpec("health", "check_failed", "medium", pipelines=(HEALTH_GROUP,))
    assert rule.matches("t", HEALTH_GROUP) and not RULE.matches("t", HEALTH_GROUP)


def test_a_finished_runs_events_are_read_once(instance, monkeypatch: pytest.MonkeyPatch) -> None:
    defs = dg.Definitions(assets=[quotes])
    failed_run(instance)
    calls: list[str] = []
    real = runstats.run_groups
    monkeypatch.setattr(
        runstats, "run_groups", lambda i, run, d: calls.append(run.run_id) or real(i, run, d)
    )
    for _ in range(3):  # three sensor ticks
        assert runstats.RunHistory(instance, defs, "t").stats("prices").status == "FAILURE"
    assert len(calls) == 1


def test_a_pipelines_own_failure_incident_resolves(tmp_path: Path, instance) -> None:
    """No run-failure rule covers the pipeline: its ``notify`` channels make the incident,
    and its next success closes it."""
    alerting = Alerting(rules=(), notify={("t", "prices"): ("log",)})
    notifier = Notifier(store=DataStore(root=str(tmp_path), location="t"))
    defs = dg.Definitions(assets=[quotes])

    def tick() -> dict[str, str]:
        return evaluate_rules(instance, defs, "t", alerting, notifier)[0]

    failed_run(instance)
    assert tick() == {"t/prices_failure_actions/prices": "opened"}
    FAIL.clear()
    dg.materialize([quotes], instance=instance)
    assert tick() == {"t/prices_failure_actions/prices": "resolved"}


def test_a_success_between_two_failures_starts_a_new_incident(tmp_path: Path, instance) -> None:
    """The resolving sensor has not ticked yet; the failures in a row say 1 again."""
    incidents = Incidents(tmp_path)
    escalation = Escalation(after=2, severity="critical", channels=("log",))
    incidents.occur("k", RULE, failed_run(instance), escalation, in_a_row=1)
    state, incident = incidents.occur("k", RULE, failed_run(instance), escalation, in_a_row=1)
    assert (state, incident.count, incident.escalated) == ("opened", 1, False)
    state, incident = incidents.occur("k", RULE, failed_run(instance), escalation, in_a_row=2)
    assert (state, incident.count) == ("escalated", 2)
