"""The ``Notifier`` resource and its channels.

Channels: ``log`` (one JSON line per alert; the default), ``email`` (SMTP), ``webhook``/``slack``
(POST ``{"text", "channel"}``), ``pagerduty`` (Events API v2: trigger, then resolve under the
incident's ``dedup_key``) and ``sms`` (POST a JSON template to an HTTP gateway with a bearer
token). Secrets come only from the environment: the legacy fields as ``dg.EnvVar``
(``alerts.notifier_from_env``), the configured channels' by variable name, read at send time.
An alert no channel delivered goes to the log channel with ``"undelivered": {channel:
reason}``; a URL in a reason is redacted (it may carry a token).
"""

import json
import os
import re
import smtplib
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from platform_core.datastore import DataStore
from platform_core.keys import comma_list

if TYPE_CHECKING:
    from platform_core.incidents import Incidents

PAGERDUTY_SEVERITY = {"low": "info", "medium": "warning", "high": "error", "critical": "critical"}
SMS_FIELDS = ("to", "severity", "subject", "body", "location", "pipeline")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(SMS_FIELDS) + r")\}")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


@dataclass(frozen=True)
class Alert:
    """One message; ``incident`` is the incident key (PagerDuty's ``dedup_key``; an escalation
    triggers ``<key>/escalated``, so PagerDuty shows the raised severity, and its resolution
    resolves both)."""

    subject: str
    body: str
    severity: str = "error"
    location: str = ""
    pipeline: str = ""
    incident: str = ""
    resolved: bool = False
    escalated: bool = False


class Notifier(dg.ConfigurableResource):
    """Send an alert on every configured channel; one failing channel does not stop the others.
    The ``log`` channel appends to ``log_path``, by default the storage owner's alert log.
    ``channels_json`` (the configured channels, secrets as variable names) replaces the legacy
    ``channels`` list and fields when set."""

    store: DataStore
    channels: str = "log"  # comma list of log, email, webhook
    log_path: str | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "dagster@localhost"
    smtp_recipients: str = ""  # comma list of addresses
    smtp_user: str | None = None
    smtp_password: str | None = None
    webhook_url: str | None = None
    timeout_seconds: float = 10.0
    channels_json: str | None = None

    def incidents(self) -> "Incidents":
        from platform_core.incidents import Incidents

        return Incidents(self.store.area("alerts"))

    def _specs(self) -> dict[str, dict[str, Any]]:
        if self.channels_json:
            return json.loads(self.channels_json)
        fields = ("host", "port", "sender", "user", "password")
        email = {f: getattr(self, f"smtp_{f}") for f in fields}
        legacy = {
            "log": {"type": "log", "path": self.log_path},
            "email": {"type": "email", "recipients": comma_list(self.smtp_recipients), **email},
            "webhook": {"type": "webhook", "url": self.webhook_url},
        }
        return {name: legacy.get(name, {"type": name}) for name in comma_list(self.channels)}

    def notify(self, subject: str, body: str, severity: str = "error") -> dict[str, str]:
        """Deliver on every enabled channel; returns ``{channel: "ok" | "error: ..."}``."""
        return self.send(Alert(subject, body, severity))

    def send(self, alert: Alert, channels: Sequence[str] | None = None) -> dict[str, str]:
        """Deliver ``alert`` to ``channels`` (None: every enabled one; disabled or unknown ones
        are skipped). What failed, or an alert no channel took, is written to the log channel
        with the reasons: an alert is never dropped silently."""
        specs = self._specs()
        enabled = [n for n, s in specs.items() if s.get("enabled", True)]
        wanted = enabled if channels is None else [c for c in channels if c in enabled]
        outcome: dict[str, str] = {}
        for name in wanted:
            try:
                self._deliver(specs[name], alert)
                outcome[name] = "ok"
            except Exception as exc:  # report, keep going: alerts must not mask each other
                outcome[name] = _redacted(f"error: {type(exc).__name__}: {exc}", specs[name])
        undelivered = {name: why for name, why in outcome.items() if why != "ok"}
        if not outcome:
            asked = ", ".join(channels if channels is not None else specs) or "none"
            undelivered = {"*": f"no enabled channel among: {asked}"}
        if undelivered:
            log = next((s for s in specs.values() if s["type"] == "log"), {"type": "log"})
            self._to_log(log, alert, undelivered)
        return outcome or undelivered

    def _deliver(self, spec: dict[str, Any], alert: Alert) -> None:
        kind = spec["type"]
        if kind == "log":
            self._to_log(spec, alert)
        elif kind == "email":
            self._to_email(spec, alert)
        elif kind in ("webhook", "slack"):
            text = f"*[{alert.severity.upper()}] {alert.subject}*\n{alert.body}"
            extra = {"channel": spec["channel"]} if spec.get("channel") else {}
            self._post(_secret(spec, "url"), {"text": text, **extra}, kind)
        elif kind == "pagerduty":
            for event in pagerduty_events(spec, alert):
                self._post(_secret(spec, "url"), event, kind)
        elif kind == "sms":
            token = _secret(spec, "token", required=False)
            auth = {"Authorization": f"Bearer {token}"} if token else {}
            payload = json.loads(sms_payload(spec["payload_template"], spec.get("to"), alert))
            self._post(_secret(spec, "url"), payload, kind, auth)
        else:
            raise ValueError(f"unknown channel type {kind!r}")

    def _to_log(
        self, spec: dict[str, Any], alert: Alert, undelivered: dict[str, str] | None = None
    ) -> None:
        path = Path(spec.get("path") or self.log_path or self.store.alert_log())
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = ("severity", "subject", "body")  # the rest only when set
        record = {k: v for k, v in asdict(alert).items() if v or k in kept}
        record = {"time": datetime.now(UTC).isoformat(timespec="seconds"), **record}
        record |= {"undelivered": undelivered} if undelivered else {}
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def _to_email(self, spec: dict[str, Any], alert: Alert) -> None:
        recipients = spec.get("recipients") or []
        if not recipients:
            raise ValueError("email channel enabled but has no recipients")
        msg = EmailMessage()
        msg["Subject"] = f"[{alert.severity.upper()}] {alert.subject}"
        msg["From"] = spec["sender"]
        msg["To"] = ", ".join(recipients)
        msg.set_content(alert.body)
        with smtplib.SMTP(spec["host"], spec["port"], timeout=self.timeout_seconds) as smtp:
            password = _secret(spec, "password", required=False)
            user = _secret(spec, "user", required=False) or (spec["sender"] if password else None)
            if user:  # the seed gives only a password: the sender logs in
                smtp.starttls()
                smtp.login(user, password or "")
            smtp.send_message(msg)

    def _post(
        self, url: str | None, payload: dict, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        if not url:
            raise ValueError(f"{kind} channel enabled but its URL is not set")
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            if response.status >= 300:
                raise RuntimeError(f"{kind} answered HTTP {response.status}")


def _redacted(text: str, spec: dict[str, Any]) -> str:
    """``text`` without the channel's URL, token or key (an error message may quote them)."""
    for field in ("url", "token", "routing_key", "password"):
        value = _secret(spec, field, required=False)
        if isinstance(value, str) and len(value) > 3:
            text = text.replace(value, "<redacted>")
    return _URL.sub("<url>", text)


def _secret(spec: dict[str, Any], field: str, required: bool = True) -> str | None:
    """The variable named by ``spec[field + "_env"]`` when it is set, else ``spec[field]``."""
    name = spec.get(f"{field}_env")
    value = (os.environ.get(name) if name else None) or spec.get(field)
    if required and not value:
        raise ValueError(f"{spec['type']} channel: {name or field} is not set")
    return value


def pagerduty_events(spec: dict[str, Any], alert: Alert) -> list[dict[str, Any]]:
    """The Events API v2 bodies: one trigger (under ``<incident>/escalated`` when escalated),
    or the resolves of the incident's dedup keys."""
    key = alert.incident or alert.subject
    keys = [key, f"{key}/escalated"] if alert.escalated else [key]
    routing = {"routing_key": _secret(spec, "routing_key")}
    if alert.resolved:
        return [{**routing, "event_action": "resolve", "dedup_key": k} for k in keys]
    details = {"body": alert.body, "location": alert.location, "pipeline": alert.pipeline}
    summary = {"summary": alert.subject[:1024], "source": spec.get("source", "asset-platform")}
    severity = PAGERDUTY_SEVERITY.get(alert.severity, "error")
    payload = {**summary, "severity": severity, "custom_details": details}
    return [{**routing, "event_action": "trigger", "dedup_key": keys[-1], "payload": payload}]


def sms_payload(template: str, to: Sequence[str] | None, alert: Alert) -> str:
    """``template`` with each ``{name}`` of ``SMS_FIELDS`` replaced, in one pass, by the
    JSON-escaped value (a placeholder stands inside a JSON string: ``"to": "{to}"``), so a
    subject holding ``{body}`` stays as it is."""
    values = {"to": ",".join(to or []), **{f: getattr(alert, f) for f in SMS_FIELDS[1:]}}
    return _PLACEHOLDER.sub(lambda m: json.dumps(values[m.group(1)])[1:-1], template)
