"""Production-mode fixtures: a fresh database on the local Postgres server per test module."""

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER = os.environ.get("PLATFORM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def _admin(server: str) -> "psycopg2.extensions.connection":
    connection = psycopg2.connect(f"{server}/postgres")
    connection.autocommit = True
    return connection


def create_database(server: str, name: str) -> str:
    """``CREATE DATABASE`` on ``server`` (``postgresql://user@host:port``); returns its
    DAGSTER_POSTGRES_URL."""
    with closing(_admin(server)) as connection, connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    return f"{server.replace('postgresql://', 'postgresql+psycopg2://')}/{name}"


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A new, empty database (dropped afterwards) as a DAGSTER_POSTGRES_URL."""
    name = f"dagster_test_{uuid.uuid4().hex[:10]}"
    yield create_database(SERVER, name)
    with closing(_admin(SERVER)) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')


def wait_until(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.5
) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def deploy(script: str, env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(ROOT / "deploy" / script)], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def deployment_env() -> dict[str, str]:
    """Extra environment of a module's deployment (test modules override this fixture)."""
    return {}


@pytest.fixture
def production(
    tmp_path: Path,
    postgres_url: str,
    deployment_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
):
    """deploy/up.sh on a fresh Postgres database (daemon + web UI), stopped afterwards (with
    any Celery workers started by deploy/worker.sh); yields (root folder, environment).
    Inbox sensors look every 5 s here."""
    env = {
        "DAGSTER_HOME": str(tmp_path / "home"),
        "PLATFORM_DATA_ROOT": str(tmp_path / "data"),
        "DAGSTER_POSTGRES_URL": postgres_url,
        "DAGSTER_WEB_PORT": str(free_port()),
        "PLATFORM_INBOX_INTERVAL_SECONDS": "5",
        "ECOD_INBOX_SETTLE_SECONDS": "0",
        "IMAGING_INBOX_SETTLE_SECONDS": "0",
        **deployment_env,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    full_env = {**os.environ, **env}
    deploy("up.sh", full_env)
    try:
        yield tmp_path, full_env
    finally:
        deploy("down.sh", full_env)
