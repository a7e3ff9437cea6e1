"""Production-mode fixtures: a fresh database on the local Postgres server per test module."""

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import psycopg2
import pytest
import yaml

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"  # Debian's (deploy/apt-packages.txt)
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


def run_failure(inst: "dg.DagsterInstance", run_id: str) -> str:
    """Why a run did not succeed, in one line per failed step (or the run's own failure)."""
    steps = [
        f"{e.step_key}: {e.dagster_event.step_failure_data.error.message.strip()}"
        for e in inst.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        if e.dagster_event.step_failure_data.error
    ]
    runs = [e.message for e in inst.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)]
    return "; ".join(steps or runs) or "no failure event"


def wait_for_runs(
    inst: "dg.DagsterInstance", run_ids: list[str], timeout: float
) -> list["dg.RunRecord"]:
    """Wait until every run has finished; then each must have succeeded. A failure names the
    runs that did not finish in time (with their status) or did not succeed (and why).
    ``timeout`` is a ceiling sized for a machine under load, not an expected duration."""
    deadline = time.monotonic() + timeout
    while True:
        records = [inst.get_run_record_by_id(run_id) for run_id in run_ids]
        if all(r.dagster_run.is_finished for r in records):
            break
        if time.monotonic() > deadline:
            unfinished = {
                f"{r.dagster_run.job_name} {r.dagster_run.run_id[:8]}": r.dagster_run.status.value
                for r in records
                if not r.dagster_run.is_finished
            }
            raise AssertionError(f"runs unfinished after {timeout}s: {unfinished}")
        time.sleep(2)
    failed = {
        f"{r.dagster_run.job_name} {r.dagster_run.run_id[:8]} "
        f"({r.dagster_run.status.value})": run_failure(inst, r.dagster_run.run_id)
        for r in records
        if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS
    }
    assert not failed, failed
    return records


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
def deployed_locations(request: pytest.FixtureRequest) -> tuple[str, ...] | None:
    """The code locations a module's deployment serves: its ``DEPLOYED_LOCATIONS``, or all of
    workspace.yaml. Each served location costs a code server in the daemon and one in the web
    server, so a module that drives only some locations names them."""
    return getattr(request.module, "DEPLOYED_LOCATIONS", None)


def _workspace_of(locations: tuple[str, ...], folder: Path) -> Path:
    """A workspace file with only ``locations`` of the repository's workspace.yaml."""
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    entries = [
        e for e in workspace["load_from"] if e["python_module"]["location_name"] in locations
    ]
    assert len(entries) == len(locations), locations
    path = folder / "workspace.yaml"
    path.write_text(yaml.safe_dump({"load_from": entries}))
    return path


@pytest.fixture
def production(
    tmp_path: Path,
    postgres_url: str,
    deployment_env: dict[str, str],
    deployed_locations: tuple[str, ...] | None,
    monkeypatch: pytest.MonkeyPatch,
):
    """deploy/up.sh on a fresh Postgres database (daemon + web UI), stopped afterwards (with
    any Celery workers started by deploy/worker.sh); yields (root folder, environment).
    Inbox sensors look every 5 s here."""
    if deployed_locations is not None:
        deployment_env = {
            **deployment_env,
            "DAGSTER_WORKSPACE": str(_workspace_of(deployed_locations, tmp_path)),
        }
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


@contextmanager
def browser_page() -> Iterator["Page"]:
    """A page of Debian's chromium (Playwright; installed by run.sh), patient enough for a
    loaded 2-core machine, with the UI's one-time community pop-up kept out of the way."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(180_000)
        # the pop-up may cover the page at any moment (and swallow a click): dismissed in the
        # browser's storage before any page loads, as its Skip button does, and skipped
        # whenever it shows up before an action anyway
        page.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
        page.add_locator_handler(
            page.get_by_text("Join the Dagster community"),
            lambda: page.get_by_role("button", name="Skip").click(),
        )
        try:
            yield page
        finally:
            browser.close()
