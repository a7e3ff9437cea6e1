"""Resources configured from environment variables (the only place secrets come from)."""

from __future__ import annotations

import os

from platform_core.alerts import Notifier


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def notifier_from_env() -> Notifier:
    """``PLATFORM_ALERT_CHANNELS`` (log,email,webhook; default log), ``PLATFORM_ALERT_LOG``,
    ``PLATFORM_SMTP_HOST/PORT/SENDER/RECIPIENTS/USER/PASSWORD``, ``PLATFORM_WEBHOOK_URL``."""
    env = os.environ.get
    return Notifier(
        channels=env_list("PLATFORM_ALERT_CHANNELS", "log"),
        log_path=env("PLATFORM_ALERT_LOG"),
        smtp_host=env("PLATFORM_SMTP_HOST", "127.0.0.1"),
        smtp_port=int(env("PLATFORM_SMTP_PORT", "25")),
        smtp_sender=env("PLATFORM_SMTP_SENDER", "dagster@localhost"),
        smtp_recipients=env_list("PLATFORM_SMTP_RECIPIENTS"),
        smtp_user=env("PLATFORM_SMTP_USER"),
        smtp_password=env("PLATFORM_SMTP_PASSWORD"),
        webhook_url=env("PLATFORM_WEBHOOK_URL"),
    )


def inbox_interval_seconds() -> int:
    """How often the inbox sensors look (``PLATFORM_INBOX_INTERVAL_SECONDS``, default 30)."""
    return int(os.environ.get("PLATFORM_INBOX_INTERVAL_SECONDS", "30"))
