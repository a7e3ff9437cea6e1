"""Where a job's steps run: on this host by default, on Celery workers when a broker is set.

Setting ``DAGSTER_CELERY_BROKER_URL`` (e.g. ``pyamqp://guest:guest@127.0.0.1:5672//`` or
``redis://127.0.0.1:6379/0``) in the environment of the code servers sends every step of every
job to the ``dagster`` queue, where ``deploy/worker.sh`` workers run them against the same
instance and storage. ``DAGSTER_CELERY_BACKEND_URL`` is the result backend (default ``rpc://``,
which needs an AMQP broker; use a Redis URL with a Redis broker). Both URLs are read from the
environment when the run starts, so they are not written into run config or event logs.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster_celery import celery_executor

BROKER_ENV = "DAGSTER_CELERY_BROKER_URL"
BACKEND_ENV = "DAGSTER_CELERY_BACKEND_URL"
DEFAULT_BACKEND = "rpc://"


def celery_settings() -> tuple[str, str]:
    """(broker URL, result backend URL) from the environment; KeyError when no broker is set."""
    return os.environ[BROKER_ENV], os.environ.get(BACKEND_ENV, DEFAULT_BACKEND)


def step_executor(local: dg.ExecutorDefinition) -> dg.ExecutorDefinition:
    """``local``, or dagster-celery's executor when ``DAGSTER_CELERY_BROKER_URL`` is set."""
    if not os.environ.get(BROKER_ENV):
        return local
    backend: str | dict[str, str] = (
        {"env": BACKEND_ENV} if os.environ.get(BACKEND_ENV) else DEFAULT_BACKEND
    )
    return celery_executor.configured({"broker": {"env": BROKER_ENV}, "backend": backend})
