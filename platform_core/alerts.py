"""Alert rules: which events alert, how severely, on which channels (``platform_core.notifier``).

Rules (``effective_alerting``) come from the platform config's ``alerting:`` section; without
one, from ``PLATFORM_ALERT_*`` as before, plus a low-severity long-running rule (120 min).
A pipeline's ``failure_actions.notify`` adds its channels to the run-failure rule of that
pipeline (one incident, the union of the channels). Incidents (``platform_core.incidents``)
make one alert per incident and one "resolved" message; the sensors that raise them are in
``platform_core.alert_sensors``.
"""

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import dagster as dg

from platform_core.datastore import DataStore
from platform_core.keys import comma_list
from platform_core.notifier import Notifier
from platform_core.settings import resource_from_env

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
HEALTH_GROUP = "platform_health"  # the health checks' group: alerts only where a rule names it


@dataclass(frozen=True)
class RuleSpec:
    """A rule as the sensors use it; ``channels`` None: every enabled channel. ``min_runs``:
    the fewest runs in the window for an error rate to count."""

    name: str
    kind: str
    severity: str
    channels: tuple[str, ...] | None = None
    threshold: float | None = None
    locations: tuple[str, ...] = ()
    pipelines: tuple[str, ...] = ()
    window_runs: int = 20
    window_hours: float = 24.0
    min_runs: int = 5

    def matches(self, location: str, pipeline: str) -> bool:
        if pipeline == HEALTH_GROUP and pipeline not in self.pipelines:
            return False  # health checks mirror runs and the system: alert only when asked
        return (not self.locations or location in self.locations) and (
            not self.pipelines or pipeline in self.pipelines
        )


@dataclass(frozen=True)
class Alerting:
    """The effective rules, escalation, channel specs (None: the legacy Notifier fields) and
    each pipeline's own failure channels (``(location, pipeline)`` -> channels)."""

    rules: tuple[RuleSpec, ...]
    escalate_after: int = 3
    escalation_severity: str = "critical"
    escalation_channels: tuple[str, ...] = ()
    channels: Mapping[str, dict[str, Any]] | None = None
    notify: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def rules_with(self, kind: str) -> list[RuleSpec]:
        return [r for r in self.rules if r.kind == kind]

    def rules_for(self, kind: str, location: str, pipeline: str) -> list[RuleSpec]:
        """The rules of ``kind`` for a pipeline. A failed run's first rule takes the
        pipeline's own channels too (or is made of them when no rule matches)."""
        found = [r for r in self.rules_with(kind) if r.matches(location, pipeline)]
        own = self.notify.get((location, pipeline))
        if kind != "run_failed" or not own:
            return found
        if not found:
            return [RuleSpec(f"{pipeline}_failure_actions", kind, "high", own)]
        first = found[0]
        channels = first.channels and tuple(dict.fromkeys([*first.channels, *own]))
        return [replace(first, channels=channels), *found[1:]]


LEGACY = Alerting(
    rules=(
        RuleSpec("run_failed", "run_failed", "high"),
        RuleSpec("check_failed", "check_failed", "medium"),
        RuleSpec("freshness_failed", "freshness_failed", "medium"),
        RuleSpec("long_running", "duration_minutes", "low", threshold=120.0),
    )
)


def effective_alerting(
    cfg: Any = None,
    environ: Mapping[str, str] = os.environ,
    location: str | None = None,
    groups: tuple[str, ...] = (),
) -> Alerting:
    """The rules of ``cfg`` (a ``platform_config.LoadedConfig``): ``LEGACY`` without an
    ``alerting:`` section. With one, ``PLATFORM_SMTP_*`` override the email channels' fields
    (user and password by default), ``PLATFORM_WEBHOOK_URL`` the channel named ``webhook``,
    ``PLATFORM_ALERT_CHANNELS`` restricts the enabled set, and each pipeline's
    ``failure_actions.notify`` (plus the escalation channels for ``escalation: page_oncall``)
    joins its run-failure rule."""
    model = getattr(getattr(cfg, "model", None), "alerting", None)
    if model is None:
        return LEGACY
    channels = {name: spec.model_dump() for name, spec in model.channels.items()}
    enabled = comma_list(environ.get(NOTIFIER_ENV["channels"], ""))
    for name, spec in channels.items():
        if enabled and name not in enabled and spec["type"] not in enabled:
            spec["enabled"] = False
        if spec["type"] == "email":
            for key in ("host", "sender"):
                spec[key] = environ.get(NOTIFIER_ENV[f"smtp_{key}"]) or spec[key]
            spec["port"] = int(environ.get(NOTIFIER_ENV["smtp_port"]) or spec["port"])
            recipients = comma_list(environ.get(NOTIFIER_ENV["smtp_recipients"], ""))
            spec["recipients"] = recipients or spec["recipients"]
            for key in ("user", "password"):
                spec[f"{key}_env"] = spec[f"{key}_env"] or NOTIFIER_ENV[f"smtp_{key}"]
        if name == "webhook" and environ.get(NOTIFIER_ENV["webhook_url"]):
            spec["url_env"] = NOTIFIER_ENV["webhook_url"]
    escalation = model.escalation
    notify: dict[tuple[str, str], tuple[str, ...]] = {}
    for group in groups if location else ():
        actions = cfg.pipeline(location, group).failure_actions
        extra = list(escalation.channels) if actions.escalation == "page_oncall" else []
        if actions.notify or extra:
            notify[(location, group)] = tuple(dict.fromkeys([*actions.notify, *extra]))
    return Alerting(
        tuple(_rule(r) for r in model.rules),
        escalation.after_consecutive_failures,
        escalation.severity,
        tuple(escalation.channels),
        channels,
        notify,
    )


def _rule(rule: Any) -> RuleSpec:
    """A ``platform_models.Rule`` as a ``RuleSpec``."""
    return RuleSpec(
        name=rule.name,
        kind=rule.condition.kind,
        severity=rule.severity,
        channels=tuple(rule.channels),
        threshold=rule.condition.threshold,
        locations=tuple(rule.locations),
        pipelines=tuple(rule.pipelines),
        window_runs=rule.window_runs,
        window_hours=rule.window_hours,
        min_runs=rule.min_runs,
    )


def notifier_from_env(store: DataStore, cfg: Any = None) -> Notifier:
    """The Notifier of ``NOTIFIER_ENV`` (default: the ``log`` channel into ``store``'s log),
    with the configured channels of ``cfg``'s ``alerting:`` section when it has one."""
    channels = effective_alerting(cfg).channels
    given = {"channels_json": json.dumps(channels, sort_keys=True)} if channels else {}
    return resource_from_env(Notifier, NOTIFIER_ENV, store=store, **given)


def alert_definitions(
    location: str, loaded_defs: dg.Definitions, cfg: Any = None
) -> dg.Definitions:
    """The location's alert sensors: failed runs, failed checks, stale assets and
    ``<location>_alert_rules`` (resolutions, error rate, data age, long runs, failed runs
    with no code-location origin)."""
    from platform_core.alert_sensors import alert_rules_sensor, alert_sensors
    from platform_core.runstats import pipelines

    alerting = effective_alerting(cfg, location=location, groups=tuple(pipelines(loaded_defs)))
    sensors = alert_sensors(location, alerting, loaded_defs)
    return dg.Definitions(sensors=[*sensors, alert_rules_sensor(location, alerting, loaded_defs)])
