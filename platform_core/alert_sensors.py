"""The alert sensors of a location: failed runs (``<l>_run_failure_alert``), failed checks,
stale assets, and ``<l>_alert_rules`` (error rate, data age, long runs, resolutions, failed
runs with no code-location origin). They raise and resolve incidents
(``platform_core.incidents``) by the rules of ``platform_core.alerts``.
"""

import json
import time
from dataclasses import replace
from datetime import UTC, datetime

import dagster as dg

from platform_core.alerts import LEGACY, Alerting
from platform_core.dagster_internals import AssetCheckExecutionRecordStatus, FreshnessState
from platform_core.errors import root_cause
from platform_core.incidents import raise_alert, resolve_alert
from platform_core.notifier import Alert, Notifier
from platform_core.runstats import RunHistory, belongs, location_runs, run_groups

RECHECK_SECONDS = 60.0  # runs updated this long before the cursor are looked at again


def _failed_pipelines(
    instance: dg.DagsterInstance, run: dg.DagsterRun, defs: dg.Definitions | None
) -> list[str]:
    """The asset groups whose steps failed in ``run``; the job's name when it has none."""
    if defs is None:
        return [run.job_name]
    groups = run_groups(instance, run, defs)
    return sorted(g for g, status in groups.items() if status == "FAILURE") or [run.job_name]


def _run_pipelines(
    instance: dg.DagsterInstance, run: dg.DagsterRun, defs: dg.Definitions | None
) -> list[str]:
    """The asset groups a run plans to materialize (its planned events); the job's name when
    it has none."""
    if defs is None:
        return [run.job_name]
    planned = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    graph = defs.resolve_asset_graph()
    keys = {r.event_log_entry.dagster_event.asset_key for r in planned}
    return sorted({graph.get(k).group_name for k in keys if graph.has(k)}) or [run.job_name]


def alert_failed_run(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    location: str,
    alerting: Alerting,
    defs: dg.Definitions | None,
    notifier: Notifier,
) -> dict[str, str]:
    """Raise (or count, or escalate) the run_failed incident of each failed pipeline. A
    pipeline's failures in a row are its runs' (``RunHistory``: a retried run counts by its
    retry), so a success between two failures starts a new incident."""
    step_errors = [
        f"{entry.step_key}: {root_cause(entry.dagster_event.step_failure_data.error)}"
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        if entry.dagster_event.step_failure_data.error
    ]
    alert = Alert(
        subject=f"{location}: run {run.run_id[:8]} of {run.job_name} failed",
        body=f"job={run.job_name} run_id={run.run_id} tags={dict(run.tags)}\n"
        + ("\n".join(step_errors) or "run failed"),
        location=location,
    )
    outcome: dict[str, str] = {}
    history = RunHistory(instance, defs, location) if defs is not None else None
    groups = {n.group_name for n in defs.resolve_asset_graph().asset_nodes} if defs else set()
    for pipeline in _failed_pipelines(instance, run, defs):
        in_a_row = history.stats(pipeline).consecutive_failures if pipeline in groups else None
        for rule in alerting.rules_for("run_failed", location, pipeline):
            key = f"{location}/{rule.name}/{pipeline}"
            piped = replace(alert, pipeline=pipeline)
            outcome[key] = raise_alert(
                notifier, alerting, rule, key, piped, run, escalate=True, in_a_row=in_a_row
            )
    return outcome


def build_run_failure_sensor(
    location: str, alerting: Alerting = LEGACY, defs: dg.Definitions | None = None
) -> dg.SensorDefinition:
    """A sensor (RUNNING by default) that raises the incident of every failed run of the
    location's code servers (runs with no origin: ``<location>_alert_rules``)."""

    @dg.run_failure_sensor(
        name=f"{location}_run_failure_alert",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends every failed run of this location to the notifier.",
    )
    def run_failure_alert(context: dg.RunFailureSensorContext, notifier: Notifier) -> None:
        run = context.dagster_run
        outcome = alert_failed_run(context.instance, run, location, alerting, defs, notifier)
        context.log.info(f"incidents: {outcome}")

    return run_failure_alert


def build_check_failure_sensor(
    location: str, minimum_interval_seconds: int = 60, alerting: Alerting = LEGACY
) -> dg.SensorDefinition:
    """A sensor (RUNNING by default) that raises an incident per failed asset check and
    partition, resolved by a later passing evaluation. The cursor maps each check to the id of
    the last evaluation seen (SQLite and Postgres alike)."""

    @dg.sensor(
        name=f"{location}_check_failure_alert",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=minimum_interval_seconds,
        description="Sends failed asset checks (data quality, freshness) to the notifier.",
    )
    def check_failure_alert(context: dg.SensorEvaluationContext, notifier: Notifier):
        seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        graph = context.repository_def.asset_graph
        storage = context.instance.event_log_storage
        statuses = {
            AssetCheckExecutionRecordStatus.FAILED,
            AssetCheckExecutionRecordStatus.SUCCEEDED,
        }
        sent = 0
        for check in sorted(graph.asset_check_keys, key=lambda k: k.to_user_string()):
            name, asset = check.to_user_string(), check.asset_key.to_user_string()
            records = storage.get_asset_check_execution_history(check, limit=50, status=statuses)
            pipeline = graph.get(check.asset_key).group_name
            for record in sorted(
                (r for r in records if r.id > seen.get(name, 0)), key=lambda r: r.id
            ):
                seen[name] = record.id
                for rule in alerting.rules_for("check_failed", location, pipeline):
                    key = f"{location}/{rule.name}/{check.name}@{asset}/{record.partition or '-'}"
                    where = f" partition {record.partition}" if record.partition else ""
                    if record.status == AssetCheckExecutionRecordStatus.SUCCEEDED:
                        resolve_alert(notifier, key, f"check {check.name} passed on {asset}{where}")
                        continue
                    evaluation = record.evaluation
                    if evaluation.severity == dg.AssetCheckSeverity.WARN:
                        continue  # a warning is shown in the UI, not paged
                    meta = {
                        k: getattr(v, "value", v) for k, v in (evaluation.metadata or {}).items()
                    }
                    alert = Alert(
                        f"{location}: check {check.name} failed on {asset}{where}",
                        f"{evaluation.description or ''}\n{json.dumps(meta, default=str)}",
                        location=location,
                        pipeline=pipeline,
                    )
                    sent += raise_alert(notifier, alerting, rule, key, alert) == "opened"
        context.update_cursor(json.dumps(seen, sort_keys=True))
        return None if sent else dg.SkipReason("no new failed asset checks")

    return check_failure_alert


def build_freshness_failure_sensor(
    location: str, minimum_interval_seconds: int = 60, alerting: Alerting = LEGACY
) -> dg.SensorDefinition:
    """A sensor (RUNNING by default) that raises an incident when an asset of the location
    turns stale (its freshness state, kept by the daemon, is FAIL) and resolves it on PASS.
    The cursor holds, per asset, when the last notified failure began: a new stale spell seen
    without the PASS in between replaces the incident."""

    @dg.sensor(
        name=f"{location}_freshness_alert",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=minimum_interval_seconds,
        description="Sends assets whose freshness policy fails (overdue data) to the notifier.",
    )
    def freshness_alert(context: dg.SensorEvaluationContext, notifier: Notifier):
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        graph = context.repository_def.asset_graph
        keys = [k for k in graph.get_all_asset_keys() if graph.get(k).freshness_policy]
        sent = 0
        for asset, record in sorted(context.instance.get_freshness_state_records(keys).items()):
            name, since = asset.to_user_string(), record.updated_at.isoformat()
            pipeline = graph.get(asset).group_name
            for rule in alerting.rules_for("freshness_failed", location, pipeline):
                key = f"{location}/{rule.name}/{name}"
                if record.freshness_state == FreshnessState.PASS:
                    resolve_alert(notifier, key, f"{name} is fresh again since {since}")
                elif record.freshness_state == FreshnessState.FAIL and seen.get(name) != since:
                    resolve_alert(notifier, key, "", silent=True)  # the PASS between was missed
                    policy = graph.get(asset).freshness_policy
                    alert = Alert(
                        f"{location}: {name} is stale",
                        f"freshness policy {policy} failing since {since}",
                        location=location,
                        pipeline=pipeline,
                    )
                    sent += raise_alert(notifier, alerting, rule, key, alert) == "opened"
            if record.freshness_state == FreshnessState.FAIL:
                seen[name] = since
        context.update_cursor(json.dumps(seen, sort_keys=True))
        return None if sent else dg.SkipReason("no asset turned stale")

    return freshness_alert


def alert_sensors(
    location: str, alerting: Alerting = LEGACY, defs: dg.Definitions | None = None
) -> list[dg.SensorDefinition]:
    """The alert sensors every location registers: failed runs, failed checks, stale assets."""
    return [
        build_run_failure_sensor(location, alerting, defs),
        build_check_failure_sensor(location, alerting=alerting),
        build_freshness_failure_sensor(location, alerting=alerting),
    ]


def evaluate_rules(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    location: str,
    alerting: Alerting,
    notifier: Notifier,
    after: float = 0.0,
    seen: frozenset[str] = frozenset(),
    now: float | None = None,
) -> tuple[dict[str, str], float, set[str]]:
    """One pass of ``<location>_alert_rules`` over one read of the location's runs: failed
    runs with no origin updated after ``after`` (those in ``seen`` were looked at already),
    run incidents resolved by a success, error rate, data age and long runs (at ``now``,
    Unix seconds; default the clock). Returns what happened per incident key, the new
    ``after`` and the finished runs it looked at."""
    now = time.time() if now is None else now
    outcome: dict[str, str] = {}
    history = RunHistory(instance, defs, location)
    since = after - RECHECK_SECONDS if after else 0.0
    # the runs updated since the last tick, by their update time: a long run that fails after
    # a backfill created many newer runs is among them, not only among the newest 500
    changed = datetime.fromtimestamp(since, UTC) if since else None
    records = location_runs(instance, defs, location, updated_after=changed)
    for record in records:
        run = record.dagster_run
        failed = run.status == dg.DagsterRunStatus.FAILURE and run.remote_job_origin is None
        if failed and run.run_id not in seen:
            outcome.update(alert_failed_run(instance, run, location, alerting, defs, notifier))
    after = max([after, *(r.update_timestamp.timestamp() for r in records)])
    recent = [r for r in records if r.update_timestamp.timestamp() > after - RECHECK_SECONDS]
    seen = {r.dagster_run.run_id for r in recent if r.dagster_run.is_finished}
    groups = sorted({n.group_name for n in defs.resolve_asset_graph().asset_nodes})
    incidents = notifier.incidents()
    names = {r.name for r in alerting.rules_with("run_failed")}
    names |= {f"{p}_failure_actions" for (where, p) in alerting.notify if where == location}
    for name in sorted(names):
        for key in incidents.open_keys(f"{location}/{name}/"):
            pipeline = key.rsplit("/", 1)[1]
            if pipeline in groups:
                runs = history.group_runs(pipeline)
                last = (runs[0][0].dagster_run.run_id, runs[0][1]) if runs else None
            else:  # a job with no assets: its newest finished run of this location
                last = next(
                    ((r.dagster_run.run_id, r.dagster_run.status.value) for r in history.records
                     if r.dagster_run.job_name == pipeline and r.dagster_run.is_finished),
                    None,
                )  # fmt: skip
            if last and last[1] == "SUCCESS":
                outcome[key] = "resolved"
                resolve_alert(notifier, key, f"{pipeline}: run {last[0]} succeeded")
    for rule in (r for r in alerting.rules if r.kind in ("error_rate", "data_age_hours")):
        for group in (g for g in groups if rule.matches(location, g)):
            window = {"window_runs": rule.window_runs, "window_hours": rule.window_hours}
            stats = history.stats(group, now=now, **window)
            key = f"{location}/{rule.name}/{group}"
            if rule.kind == "error_rate":
                value, what = stats.error_rate, f"over {stats.runs_in_window} runs"
                if stats.runs_in_window < rule.min_runs:
                    value = None  # too few runs to judge
            else:
                value, what = stats.data_age_hours, "hours since the last materialization"
            if value is None:
                if resolve_alert(notifier, key, f"{group}: {rule.kind} not measurable ({what})"):
                    outcome[key] = "resolved"
                continue
            text = f"{group}: {rule.kind} {value:.4g} ({what}); threshold {rule.threshold}"
            if rule.threshold is not None and value > rule.threshold:
                alert = Alert(f"{location}: {text}", text, location=location, pipeline=group)
                outcome[key] = raise_alert(notifier, alerting, rule, key, alert)
            elif resolve_alert(notifier, key, text):
                outcome[key] = "resolved"
    duration_rules = alerting.rules_with("duration_minutes")
    started = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    for record in started:
        run, minutes = record.dagster_run, (now - (record.start_time or now)) / 60
        if not belongs(run, location, defs, instance):
            continue
        for pipeline in _run_pipelines(instance, run, defs):
            for rule in (r for r in duration_rules if r.matches(location, pipeline)):
                if rule.threshold is not None and minutes > rule.threshold:
                    what = f"run {run.run_id[:8]} of {run.job_name} running for {minutes:.1f} min"
                    body = f"run_id={run.run_id}; not cancelled"
                    alert = Alert(f"{location}: {what}", body, location=location, pipeline=pipeline)
                    key = f"{location}/{rule.name}/{run.run_id}"
                    outcome[key] = raise_alert(notifier, alerting, rule, key, alert, run)
    for rule in duration_rules:
        for key in incidents.open_keys(f"{location}/{rule.name}/"):
            run = instance.get_run_by_id(key.rsplit("/", 1)[1])
            if run is None or run.is_finished:
                ended = run.status.value if run else "deleted"
                outcome[key] = "resolved"
                resolve_alert(notifier, key, f"the run ended: {ended}")
    return outcome, after, seen


def alert_rules_sensor(
    location: str, alerting: Alerting, defs: dg.Definitions, minimum_interval_seconds: int = 60
) -> dg.SensorDefinition:
    """``<location>_alert_rules`` (RUNNING): ``evaluate_rules`` every minute; the cursor holds
    the update time of the newest run looked at and the finished runs updated in the
    ``RECHECK_SECONDS`` before it (a run stored late with an earlier time is still seen)."""

    @dg.sensor(
        name=f"{location}_alert_rules",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=minimum_interval_seconds,
        description="Alert rules: error rate, data age, long runs, resolved incidents.",
    )
    def alert_rules(context: dg.SensorEvaluationContext, notifier: Notifier):
        first = {"after": time.time(), "seen": []}  # first tick: the last RECHECK_SECONDS only
        cursor = json.loads(context.cursor) if context.cursor else first
        instance, seen = context.instance, frozenset(cursor["seen"])
        outcome, after, seen = evaluate_rules(
            instance, defs, location, alerting, notifier, cursor["after"], seen
        )
        context.update_cursor(json.dumps({"after": after, "seen": sorted(seen)}))
        context.log.info(f"incidents: {outcome}")
        return None if outcome else dg.SkipReason("no incident opened or resolved")

    return alert_rules
