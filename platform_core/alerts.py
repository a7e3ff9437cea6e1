"""Notifications: a ``Notifier`` resource and the sensors that feed it.

Channels: ``log`` (append one JSON line per alert to a file; the default), ``email`` (SMTP) and
``webhook`` (HTTP POST of Slack-compatible JSON ``{"text": ...}``). Secrets (SMTP password,
webhook URL) come only from environment variables, as ``dg.EnvVar`` (``notifier_from_env``).

Every location registers ``alert_sensors(location)``, three sensors that notify through it:
any failed run, any failed asset check, and any asset whose ``FreshnessPolicy`` the instance's
freshness daemon (``freshness: enabled`` in dagster.yaml) finds failing.
"""

import json
import smtplib
import urllib.request
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import dagster as dg

from platform_core.dagster_internals import AssetCheckExecutionRecordStatus, FreshnessState
from platform_core.datastore import DataStore
from platform_core.errors import root_cause
from platform_core.keys import comma_list
from platform_core.settings import resource_from_env

CHANNELS = ("log", "email", "webhook")
# Notifier field -> the environment variable that sets it.
NOTIFIER_ENV = {
    "channels": "PLATFORM_ALERT_CHANNELS",
    "log_path": "PLATFORM_ALERT_LOG",
    "smtp_host": "PLATFORM_SMTP_HOST",
    "smtp_port": "PLATFORM_SMTP_PORT",
    "smtp_sender": "PLATFORM_SMTP_SENDER",
    "smtp_recipients": "PLATFORM_SMTP_RECIPIENTS",
    "smtp_user": "PLATFORM_SMTP_USER",
    "smtp_password": "PLATFORM_SMTP_PASSWORD",
    "webhook_url": "PLATFORM_WEBHOOK_URL",
}


class Notifier(dg.ConfigurableResource):
    """Send an alert on every configured channel; one failing channel does not stop the others.
    The ``log`` channel appends to ``log_path``, by default the storage owner's alert log."""

    store: DataStore
    channels: str = "log"  # comma list of CHANNELS
    log_path: str | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "dagster@localhost"
    smtp_recipients: str = ""  # comma list of addresses
    smtp_user: str | None = None
    smtp_password: str | None = None
    webhook_url: str | None = None
    timeout_seconds: float = 10.0

    def _log_file(self) -> Path:
        return Path(self.log_path) if self.log_path else self.store.alert_log()

    def notify(self, subject: str, body: str, severity: str = "error") -> dict[str, str]:
        """Deliver the alert; returns ``{channel: "ok" | "error: ..."}``."""
        outcome: dict[str, str] = {}
        senders = {"log": self._to_log, "email": self._to_email, "webhook": self._to_webhook}
        for channel in comma_list(self.channels):
            try:
                if channel not in senders:
                    raise ValueError(f"unknown channel {channel!r}; use one of {CHANNELS}")
                senders[channel](subject, body, severity)
                outcome[channel] = "ok"
            except Exception as exc:  # report, keep going: alerts must not mask each other
                outcome[channel] = f"error: {type(exc).__name__}: {exc}"
        return outcome

    def _to_log(self, subject: str, body: str, severity: str) -> None:
        path = self._log_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "severity": severity,
            "subject": subject,
            "body": body,
        }
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def _to_email(self, subject: str, body: str, severity: str) -> None:
        recipients = comma_list(self.smtp_recipients)
        if not recipients:
            raise ValueError("email channel enabled but smtp_recipients is empty")
        msg = EmailMessage()
        msg["Subject"] = f"[{severity.upper()}] {subject}"
        msg["From"] = self.smtp_sender
        msg["To"] = ", ".join(recipients)
        msg.set_content(body)
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_seconds) as smtp:
            if self.smtp_user:
                smtp.starttls()
                smtp.login(self.smtp_user, self.smtp_password or "")
            smtp.send_message(msg)

    def _to_webhook(self, subject: str, body: str, severity: str) -> None:
        if not self.webhook_url:
            raise ValueError("webhook channel enabled but webhook_url is not set")
        payload = json.dumps({"text": f"*[{severity.upper()}] {subject}*\n{body}"}).encode()
        request = urllib.request.Request(
            self.webhook_url,
            data=payload,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            if response.status >= 300:
                raise RuntimeError(f"webhook answered HTTP {response.status}")


def notifier_from_env(store: DataStore) -> Notifier:
    """The Notifier of ``NOTIFIER_ENV`` (default: the ``log`` channel into ``store``'s log)."""
    return resource_from_env(Notifier, NOTIFIER_ENV, store=store)


def build_run_failure_sensor(location: str) -> dg.SensorDefinition:
    """A sensor (RUNNING by default) that notifies on every failed run in the location."""

    @dg.run_failure_sensor(
        name=f"{location}_run_failure_alert",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends every failed run of this location to the notifier.",
    )
    def run_failure_alert(context: dg.RunFailureSensorContext, notifier: Notifier) -> None:
        run = context.dagster_run
        step_errors = [
            f"{entry.step_key}: {root_cause(entry.dagster_event.step_failure_data.error)}"
            for entry in context.instance.all_logs(
                run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE
            )
            if entry.dagster_event.step_failure_data.error
        ]
        error = "\n".join(step_errors) or context.failure_event.message or "run failed"
        outcome = notifier.notify(
            subject=f"{location}: run {run.run_id[:8]} of {run.job_name} failed",
            body=f"job={run.job_name} run_id={run.run_id} tags={dict(run.tags)}\n{error}",
        )
        context.log.info(f"notified: {outcome}")

    return run_failure_alert


def build_check_failure_sensor(
    location: str, minimum_interval_seconds: int = 60
) -> dg.SensorDefinition:
    """A sensor (RUNNING by default) that notifies on failed asset checks, freshness included.

    The cursor maps each check of the location to the id of the last failed evaluation seen,
    so each failure is notified exactly once (works on SQLite and Postgres storage alike).
    """

    @dg.sensor(
        name=f"{location}_check_failure_alert",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=minimum_interval_seconds,
        description="Sends failed asset checks (data quality, freshness) to the notifier.",
    )
    def check_failure_alert(context: dg.SensorEvaluationContext, notifier: Notifier):
        seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        check_keys = context.repository_def.asset_graph.asset_check_keys
        storage = context.instance.event_log_storage
        sent = 0
        for key in sorted(check_keys, key=lambda k: k.to_user_string()):
            name = key.to_user_string()
            records = storage.get_asset_check_execution_history(
                key, limit=50, status={AssetCheckExecutionRecordStatus.FAILED}
            )
            new = sorted((r for r in records if r.id > seen.get(name, 0)), key=lambda r: r.id)
            for record in new:
                evaluation = record.evaluation
                meta = {k: getattr(v, "value", v) for k, v in (evaluation.metadata or {}).items()}
                where = f" partition {record.partition}" if record.partition else ""
                notifier.notify(
                    subject=f"{location}: check {key.name} failed on "
                    f"{key.asset_key.to_user_string()}{where}",
                    body=f"{evaluation.description or ''}\n{json.dumps(meta, default=str)}",
                    severity=evaluation.severity.value.lower(),
                )
                seen[name] = record.id
                sent += 1
        context.update_cursor(json.dumps(seen, sort_keys=True))
        if not sent:
            return dg.SkipReason("no new failed asset checks")
        return None

    return check_failure_alert


def build_freshness_failure_sensor(
    location: str, minimum_interval_seconds: int = 60
) -> dg.SensorDefinition:
    """A sensor (RUNNING by default) that notifies when an asset of the location turns stale:
    its freshness state, kept by the daemon from the asset's ``FreshnessPolicy``, is FAIL.
    The cursor holds, per asset, when the last notified failure began, so each stale spell is
    notified once."""

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
        for key, record in sorted(context.instance.get_freshness_state_records(keys).items()):
            name, since = key.to_user_string(), record.updated_at.isoformat()
            if record.freshness_state != FreshnessState.FAIL or seen.get(name) == since:
                continue
            policy = graph.get(key).freshness_policy
            notifier.notify(
                subject=f"{location}: {name} is stale",
                body=f"freshness policy {policy} failing since {since}",
            )
            seen[name] = since
            sent += 1
        context.update_cursor(json.dumps(seen, sort_keys=True))
        return None if sent else dg.SkipReason("no asset turned stale")

    return freshness_alert


def alert_sensors(location: str) -> list[dg.SensorDefinition]:
    """The alert sensors every location registers: failed runs, failed checks, stale assets."""
    return [
        build_run_failure_sensor(location),
        build_check_failure_sensor(location),
        build_freshness_failure_sensor(location),
    ]
