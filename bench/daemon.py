"""A dagster-daemon serving a bench's instance, for the benches' daemon modes."""

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def serving_daemon(env: dict[str, str], workspace: Path) -> Iterator[subprocess.Popen]:
    """``dagster-daemon run`` on ``env``'s instance, once its backfill daemon has sent a
    heartbeat (what the CLIs look for before submitting a backfill); stopped on exit."""
    import dagster as dg

    from platform_core.health import daemon_serves

    daemon = subprocess.Popen(
        [str(ROOT / ".venv/bin/dagster-daemon"), "run", "-w", str(workspace)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
        with dg.DagsterInstance.get() as inst:
            deadline = time.monotonic() + 180
            while not daemon_serves(inst):
                if time.monotonic() > deadline:
                    raise SystemExit("the daemon never sent a heartbeat")
                time.sleep(1)
        yield daemon
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
