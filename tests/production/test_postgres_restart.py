"""Postgres restarted while the daemon idles: the daemon and webserver keep running, every
daemon heartbeats again, and the next inbox drop still becomes one successful run.

The test owns its Postgres server (a throw-away cluster on a free port, the machine's own
PostgreSQL binaries), so stopping it cannot disturb other tests using the shared server."""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from imaging_assets.cli import main as hcs
from tests.production.conftest import create_database, free_port, wait_until

PG_BIN = next(Path("/usr/lib/postgresql").glob("*/bin"), None)
OUTAGE_SECONDS = 20


class PrivatePostgres:
    """initdb + pg_ctl on a temp folder, trust auth on 127.0.0.1 only."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pg-restart-"))
        self.port = free_port()
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:  # the server refuses to run as root
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        self._pg("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres")

    def _pg(self, tool: str, *args: str) -> None:
        command = [*self._as_postgres, str(PG_BIN / tool), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        log = str(self.folder / "server.log")
        self._pg("pg_ctl", "-D", str(self.folder / "data"), "-o", options, "-l", log, "-w", "start")

    def stop(self, missing_ok: bool = False) -> None:
        if missing_ok and not (self.folder / "data" / "postmaster.pid").exists():
            return
        self._pg("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")

    @property
    def server(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"


DEPLOYED_LOCATIONS = ("imaging",)  # the deployment serves only these (conftest)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    if PG_BIN is None:
        pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql")
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.stop(missing_ok=True)
        shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url(private_postgres: PrivatePostgres) -> str:
    """The deployment's database on the private server (overrides conftest's)."""
    return create_database(private_postgres.server, "dagster")


def _heartbeats(inst: dg.DagsterInstance) -> dict[str, float]:
    return {kind: beat.timestamp for kind, beat in inst.get_daemon_heartbeats().items()}


def test_daemon_recovers_from_a_postgres_restart(private_postgres, production) -> None:
    root, env = production
    inst = dg.DagsterInstance.get()
    wait_until(lambda: len(_heartbeats(inst)) >= 4, 90, "the daemons' first heartbeats")
    daemons = set(_heartbeats(inst))
    pids = {
        name: int((Path(env["DAGSTER_HOME"]) / "run" / f"{name}.pid").read_text())
        for name in ("daemon", "webserver")
    }

    private_postgres.stop()
    with pytest.raises(psycopg2.OperationalError):  # really down
        psycopg2.connect(f"{private_postgres.server}/dagster")
    time.sleep(OUTAGE_SECONDS)  # the daemons' queries fail meanwhile
    private_postgres.start()
    restarted = time.time()

    for name, pid in pids.items():
        assert Path(f"/proc/{pid}").exists(), f"the {name} exited during the outage"
    wait_until(
        lambda: (
            set(_heartbeats(inst)) == daemons
            and all(t > restarted for t in _heartbeats(inst).values())
        ),
        120,
        f"every daemon ({sorted(daemons)}) to heartbeat after the restart",
    )
    inbox = root / "data" / "imaging" / "inbox"
    inbox.mkdir(parents=True)
    assert (
        hcs(["demo", "--out", str(root / "stage"), "--name", "p1", "--wells", "1", "--tile", "128"])
        == 0
    )
    (root / "stage" / "p1" / ".complete").touch()
    shutil.move(root / "stage" / "p1", inbox / "p1")
    sensor = dg.RunsFilter(tags={"dagster/sensor_name": "plate_inbox_sensor"})

    def finished() -> bool:
        records = inst.get_run_records(sensor)
        return bool(records) and all(r.dagster_run.is_finished for r in records)

    wait_until(finished, 180, "the inbox run after the restart")
    [record] = inst.get_run_records(sensor)
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
