"""Alert incidents: one alert when an incident opens, none while it stays open (the
``escalate_after``-th consecutive failure escalates once), one "resolved" message to the
same channels when it closes.

Incidents are stored per location in ``<area alerts>/incidents.json`` behind an ``fcntl``
lock (sensors run in threads and in several code servers); each change is one locked
read-modify-write, written atomically. Keys: ``<location>/<rule>/<pipeline>`` (runs, error
rate, data age), ``.../<check>@<asset>/<partition>`` (checks), ``.../<asset>`` (freshness),
``.../<run id>`` (long runs).
"""

import fcntl
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import dagster as dg

from platform_core.alerts import Alerting, RuleSpec
from platform_core.io import atomic_write
from platform_core.notifier import Alert, Notifier
from platform_core.runstats import PARENT_TAG

Occurrence = Literal["opened", "open", "escalated"]


@dataclass
class Incident:
    """An open (or just resolved) incident; ``channels`` are where its alerts went (None: every
    enabled channel of the notifier), so the resolved message goes to the same ones. ``count``:
    the failed runs it saw, a retry of a counted run not counted again."""

    key: str
    rule: str
    severity: str
    channels: Sequence[str] | None
    opened_at: str = ""
    count: int = 1
    escalated: bool = False
    runs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Escalation:
    after: int
    severity: str
    channels: Sequence[str] | None


class Incidents:
    """The incident file of one location."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "incidents.json"

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Incident]]:
        """The incidents, under an exclusive lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / ".incidents.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            text = self.path.read_text() if self.path.exists() else "{}"
            yield {k: Incident(**v) for k, v in json.loads(text).items()}

    def _save(self, items: dict[str, Incident]) -> None:
        data = json.dumps({k: asdict(v) for k, v in items.items()}, indent=1, sort_keys=True)
        atomic_write(self.path, lambda tmp: tmp.write_text(data))

    def occur(
        self,
        key: str,
        rule: RuleSpec,
        run: dg.DagsterRun | None = None,
        escalation: Escalation | None = None,
        in_a_row: int | None = None,
    ) -> tuple[Occurrence, Incident]:
        """One occurrence of ``key``, in one locked step: open the incident when it is new;
        else count ``run`` (once; a retry of a run it counted adds nothing, and ``in_a_row``,
        the pipeline's failures in a row when known, is the count) and, with ``escalation``,
        escalate once when the count reaches ``escalation.after``. ``in_a_row`` 1 on an open
        incident: a success came between (not yet seen by the resolving sensor), so this
        failure opens a new incident."""
        with self._locked() as items:
            incident = items.get(key)
            fresh = in_a_row == 1 and incident is not None and run is not None
            if fresh and run.run_id not in incident.runs:  # type: ignore[union-attr]
                incident = None
            if incident is None:
                now = datetime.now(UTC).isoformat(timespec="seconds")
                runs = [run.run_id] if run else []
                items[key] = Incident(key, rule.name, rule.severity, rule.channels, now, runs=runs)
                self._save(items)
                return "opened", items[key]
            state: Occurrence = "open"
            if run is not None and run.run_id not in incident.runs:
                if in_a_row is not None:
                    incident.count = in_a_row
                elif run.tags.get(PARENT_TAG) not in incident.runs:
                    incident.count += 1
                incident.runs = [*incident.runs, run.run_id]
                if escalation and not incident.escalated and incident.count >= escalation.after:
                    incident.escalated, state = True, "escalated"
                    incident.severity, incident.channels = escalation.severity, escalation.channels
                self._save(items)
            return state, incident

    def resolve(self, key: str) -> Incident | None:
        """Close the incident ``key``; the closed incident, or None when it was not open (then
        the file is left as it is)."""
        with self._locked() as items:
            incident = items.pop(key, None)
            if incident is not None:
                self._save(items)
            return incident

    def open_keys(self, prefix: str = "") -> list[str]:
        with self._locked() as items:
            return sorted(k for k in items if k.startswith(prefix))


def raise_alert(
    notifier: Notifier,
    alerting: Alerting,
    rule: RuleSpec,
    key: str,
    alert: Alert,
    run: dg.DagsterRun | None = None,
    escalate: bool = False,
    in_a_row: int | None = None,
) -> Occurrence:
    """Open the incident ``key`` and send ``alert`` when it is new; else count the occurrence
    and, when ``escalate``, escalate once after ``alerting.escalate_after`` failed runs in a
    row (``in_a_row`` when known; to the rule's and the escalation's channels, at the
    escalation's severity)."""
    channels = rule.channels and (*rule.channels, *alerting.escalation_channels)
    escalation = (
        Escalation(alerting.escalate_after, alerting.escalation_severity, channels)
        if escalate
        else None
    )
    state, incident = notifier.incidents().occur(key, rule, run, escalation, in_a_row)
    alert = replace(alert, severity=rule.severity, incident=key)
    if state == "opened":
        notifier.send(alert, rule.channels)
    elif state == "escalated":
        subject = f"escalated after {incident.count} consecutive failures: {alert.subject}"
        escalated = replace(alert, subject=subject, severity=incident.severity, escalated=True)
        notifier.send(escalated, incident.channels)
    return state


def resolve_alert(notifier: Notifier, key: str, why: str, silent: bool = False) -> Incident | None:
    """Close the incident ``key`` and send one "resolved" message to its channels."""
    incident = notifier.incidents().resolve(key)
    if incident is not None and not silent:
        location, _, rest = key.partition("/")
        subject = f"resolved: {location}: {incident.rule} {rest.partition('/')[2] or rest}"
        alert = Alert(
            subject,
            why,
            incident.severity,
            location,
            incident=key,
            resolved=True,
            escalated=incident.escalated,
        )
        notifier.send(alert, incident.channels)
    return incident
