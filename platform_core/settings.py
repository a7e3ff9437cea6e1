"""Resources configured from environment variables (the only place secrets come from)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

import dagster as dg

from platform_core.alerts import Notifier

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


Resource = TypeVar("Resource", bound=dg.ConfigurableResource)


def resource_from_env(cls: type[Resource], env: Mapping[str, str]) -> Resource:
    """``cls`` with each field whose variable (``env``: field -> variable) is set given as a
    ``dg.EnvVar``: the value is read at run time where the step or sensor runs, and the UI and
    GraphQL show only the variable's name, so a secret (SMTP password, webhook URL with its
    token) never leaves the process. Unset fields keep the resource's defaults."""
    fields = {}
    for field, name in env.items():
        if os.environ.get(name):
            is_int = cls.model_fields[field].annotation is int
            fields[field] = dg.EnvVar.int(name) if is_int else dg.EnvVar(name)
    return cls(**fields)


def notifier_from_env() -> Notifier:
    """The Notifier of ``NOTIFIER_ENV`` (default: the ``log`` channel)."""
    return resource_from_env(Notifier, NOTIFIER_ENV)
