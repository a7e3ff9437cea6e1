"""The models of the platform config file (``platform_core.platform_config`` loads them):
pydantic, unknown keys refused, the seed's spellings accepted (condition strings, channels
named by their type, ``"${VAR}"`` secrets, failure actions as a list of one-key maps)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

SECRET_KEYS = {  # how the seed names a secret -> the field holding its variable's name
    "password": "password_env",
    "webhook_url": "url_env",
    "api_key": "routing_key_env",
    "routing_key": "routing_key_env",
    "token": "token_env",
}
RENAMED = {"smtp_server": "host", "service_id": "source", **SECRET_KEYS}
_VAR = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_CONDITIONS = {  # the seed's condition strings
    re.compile(r"""^pipeline_status\s*==\s*['"]failed['"]$"""): "run_failed",
    re.compile(r"^(check_failed|freshness_failed)$"): None,
    re.compile(r"^(data_age_hours|error_rate|duration_minutes)\s*>\s*(\S+)$"): None,
}


def _refuse(key: str, reason: str) -> PydanticCustomError:
    """A validation error at ``key`` (a dotted path) below the validated object."""
    return PydanticCustomError("platform_config", "{reason}", {"key": key, "reason": reason})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Severity = Literal["low", "medium", "high", "critical"]


class Condition(Strict):
    """When a rule fires: the seed's strings (``"error_rate > 0.1"``) or ``{kind, threshold}``."""

    kind: Literal[
        "run_failed", "check_failed", "data_age_hours", "error_rate", "duration_minutes",
        "freshness_failed",
    ]  # fmt: skip
    threshold: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        for pattern, kind in _CONDITIONS.items():
            match = pattern.fullmatch(text)
            if match is None:
                continue
            if kind or len(match.groups()) == 1:
                return {"kind": kind or match.group(1)}
            try:
                return {"kind": match.group(1), "threshold": float(match.group(2))}
            except ValueError:
                raise _refuse("", f"threshold {match.group(2)!r} is not a number") from None
        raise _refuse(
            "",
            f"unknown condition {value!r}; one of: pipeline_status == 'failed', check_failed, "
            "freshness_failed, data_age_hours > N, error_rate > X, duration_minutes > N",
        )

    @model_validator(mode="after")
    def _threshold(self) -> Condition:
        needs = self.kind in ("data_age_hours", "error_rate", "duration_minutes")
        if needs != (self.threshold is not None):
            raise _refuse("threshold", f"{self.kind} {'needs' if needs else 'takes no'} threshold")
        return self


class LogChannel(Strict):
    type: Literal["log"] = "log"
    path: str | None = None


class EmailChannel(Strict):
    type: Literal["email"] = "email"
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "dagster@localhost"
    recipients: list[str] = []
    user_env: str | None = None
    password_env: str | None = None


class WebhookChannel(Strict):
    type: Literal["webhook", "slack"]
    enabled: bool = True
    url_env: str
    channel: str | None = None


class PagerDutyChannel(Strict):
    """``url`` (or ``url_env``: a URL that carries a key is a secret)."""

    type: Literal["pagerduty"] = "pagerduty"
    enabled: bool = True
    routing_key_env: str
    url: str = "https://events.pagerduty.com/v2/enqueue"
    url_env: str | None = None
    source: str = "asset-platform"


class SmsChannel(Strict):
    """An HTTP SMS gateway: ``payload_template`` is JSON text with ``{to} {severity}
    {subject} {body} {location} {pipeline}`` inside its strings; ``url`` or ``url_env``."""

    type: Literal["sms"] = "sms"
    enabled: bool = True
    url: str | None = None
    url_env: str | None = None
    token_env: str | None = None
    to: list[str]
    payload_template: str

    @model_validator(mode="after")
    def _renders(self) -> SmsChannel:
        from platform_core.notifier import Alert, sms_payload

        if not (self.url or self.url_env):
            raise _refuse("url", "the gateway's url is required")
        trial = Alert('a "quoted" {subject}', "line one\nline two", "high", "loc", "pipe")
        try:
            json.loads(sms_payload(self.payload_template, self.to, trial))
        except ValueError as error:
            raise _refuse(
                "payload_template",
                f"does not render to JSON ({error}); put each {{placeholder}} inside a string",
            ) from None
        return self


Channel = Annotated[
    LogChannel | EmailChannel | WebhookChannel | PagerDutyChannel | SmsChannel,
    Field(discriminator="type"),
]
CHANNEL_TYPES = ("log", "email", "webhook", "slack", "pagerduty", "sms")


class Rule(Strict):
    """``locations``/``pipelines``: where it applies, [] = everywhere."""

    name: str
    condition: Condition
    severity: Severity
    channels: list[str]
    locations: list[str] = []
    pipelines: list[str] = []
    window_runs: int = Field(20, ge=1)
    window_hours: float = Field(24.0, gt=0)
    min_runs: int = Field(5, ge=1)

    @model_validator(mode="after")
    def _sane(self) -> Rule:
        if "/" in self.name or not self.name.strip():
            raise _refuse("name", "a rule name is not empty and has no '/'")
        if self.condition.kind == "error_rate" and not 0 <= (self.condition.threshold or 0) < 1:
            raise _refuse("condition", "an error-rate threshold is a fraction in [0, 1)")
        return self


class Escalation(Strict):
    after_consecutive_failures: int = Field(3, ge=1)
    severity: Severity = "critical"
    channels: list[str] = []


def _channel_fields(name: str, raw: Any) -> Any:
    """A channel as written (the seed's keys, ``"${VAR}"`` secrets, no ``type``) in the
    models' terms."""
    if not isinstance(raw, Mapping):
        return raw
    out: dict[str, Any] = {}
    if "type" not in raw and name in CHANNEL_TYPES:
        out["type"] = name
    for key, value in raw.items():
        if key == "url" and isinstance(value, str) and _VAR.fullmatch(value):
            key, value = "url_env", _VAR.fullmatch(value).group(1)  # type: ignore[union-attr]
        elif key in SECRET_KEYS:
            match = _VAR.fullmatch(value) if isinstance(value, str) else None
            if match is None:
                raise _refuse(
                    f"channels.{name}.{key}",
                    'a secret is given only as "${VARIABLE}" (read from the environment), '
                    "never its value",
                )
            value = match.group(1)
        out[RENAMED.get(key, key)] = value
    return out


class AlertingConfig(Strict):
    channels: dict[str, Channel]
    rules: list[Rule] = []
    escalation: Escalation = Escalation()

    @model_validator(mode="before")
    @classmethod
    def _seed_channels(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and isinstance(value.get("channels"), Mapping):
            channels = {n: _channel_fields(n, c) for n, c in value["channels"].items()}
            return {**value, "channels": channels}
        return value

    @model_validator(mode="after")
    def _known_channels(self) -> AlertingConfig:
        used = [(f"rules.{i}.channels.{j}", c) for i, r in enumerate(self.rules)
                for j, c in enumerate(r.channels)]  # fmt: skip
        used += [(f"escalation.channels.{j}", c) for j, c in enumerate(self.escalation.channels)]
        for key, name in used:
            if name not in self.channels:
                known = ", ".join(sorted(self.channels)) or "none"
                raise _refuse(key, f"channel {name!r} is not configured (channels: {known})")
        names = [r.name for r in self.rules]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise _refuse(f"rules.{i}.name", f"rule name {name!r} is used twice")
        targets = [(f"rules.{i}", r.channels) for i, r in enumerate(self.rules)]
        targets += [("escalation", self.escalation.channels)] if self.escalation.channels else []
        for key, names in targets:
            if not any(getattr(self.channels[n], "enabled", True) for n in names):
                raise _refuse(f"{key}.channels", f"every channel of {names} is disabled")
        return self


class FailureActions(Strict):
    """What a pipeline (asset group) does on failure; the seed's list of one-key maps too."""

    notify: list[str] = []
    retry_count: int = Field(0, ge=0)
    retry_delay_seconds: float = Field(30.0, ge=0)
    backoff: Literal["exponential", "fixed"] = "exponential"
    fallback: Literal["use_cached_data", "use_previous_scenarios"] | None = None
    partial_recovery: bool = False
    checkpoint_recovery: bool = False
    escalation: Literal["page_oncall"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _seed_list(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        merged: dict[str, Any] = {}
        for i, item in enumerate(value):
            if not isinstance(item, Mapping) or len(item) != 1 or next(iter(item)) in merged:
                raise _refuse(str(i), "each entry is one action (`- retry_count: 3`), once")
            merged |= item
        return merged


class PipelineConfig(Strict):
    """A pipeline's (asset group's) operations: failure actions, the data age it is stale
    after, and the cron of its schedule where the location schedules it (Tetra)."""

    failure_actions: FailureActions = FailureActions()
    max_data_age_hours: float | None = Field(None, gt=0)
    schedule: str | None = None

    @model_validator(mode="after")
    def _cron(self) -> PipelineConfig:
        if self.schedule is not None:
            import dagster as dg

            try:
                dg.ScheduleDefinition(name="check", cron_schedule=self.schedule, job_name="x")
            except dg.DagsterInvalidDefinitionError:
                raise _refuse("schedule", f"{self.schedule!r} is not a cron expression") from None
        return self


class HealthConfig(Strict):
    interval_seconds: int = Field(300, ge=1)
    min_free_disk_gb: float = Field(1.0, ge=0)
    max_memory_used_fraction: float = Field(0.95, gt=0, le=1)
    webserver_url: str | None = None  # None: DAGSTER_WEB_HOST/PORT, else 127.0.0.1:3000
    endpoints: dict[str, str] = {}
    require: list[Literal["database", "disk_space", "memory", "daemon_heartbeat", "webserver"]] = [
        "database", "disk_space", "memory",
    ]  # fmt: skip


class CommonSettings(Strict):
    """Keys every location's section may hold (``platform_core.inbox``)."""

    inbox_settle_seconds: float | None = Field(None, ge=0)


class StepsConfig(Strict):
    modules: list[str] = []


class PlatformConfig(Strict):
    """The whole file. ``alerting`` None: the legacy ``PLATFORM_ALERT_*`` behaviour."""

    alerting: AlertingConfig | None = None
    health: HealthConfig = HealthConfig()
    steps: StepsConfig = StepsConfig()
    inbox_interval_seconds: int | None = Field(None, ge=1)
    locations: dict[str, dict[str, Any]] = {}
