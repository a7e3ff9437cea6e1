"""Production benchmark: what the platform costs per run, on the embedded SQLite instance and
on Postgres, side by side in one run.

    .venv/bin/python bench/production.py [--sequential 5] [--queued 100] [--cli-runs 5]
                                         [--sensor-drops 3] [--ui-repeats 3]

For each instance (SQLite: the repository's dagster.yaml; Postgres: deploy/dagster.yaml on a
fresh database of PLATFORM_BENCH_POSTGRES, default the local server) it starts dagster-daemon
and dagster-webserver on 127.0.0.1 over two locations (bench/trivial_location.py and imaging)
and measures:

- launch overhead: ``trivial_job`` (one step that does nothing) submitted through the
  webserver's GraphQL API one run at a time: submitted -> started (queue + launch) and
  submitted -> finished;
- throughput: ``--queued`` such runs submitted at once (queue limit 2, as deployed);
- the plain ``dagster asset materialize`` CLI: one process per run, same asset and instance;
- sensor latency: a plate folder dropped into the imaging inbox (sensor every 5 s) ->
  run requested and -> run started;
- on Postgres, the web UI in Debian chromium: the imaging asset graph, and the status page of
  ``daily_marker`` with its 1,000 partitions materialized (one single-run backfill).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import dagster as dg
import psycopg2
import yaml
from dagster_graphql import DagsterGraphQLClient

from platform_core.datastore import DataStore

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
SERVER = os.environ.get("PLATFORM_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
CHROMIUM = "/usr/bin/chromium"
PARTITION_RANGE = "2020-01-01...2022-09-26"  # daily_marker's 1,000 days
IMAGING_ASSETS = ["plate_manifest", "plate_validation", "tile_positions", "stitched_plate"]


class Deployment:
    """Daemon + webserver for one instance, each in its own process group."""

    def __init__(
        self,
        kind: str,
        folder: Path,
        postgres_url: str | None,
        locations: dict[str, str] | None = None,
    ) -> None:
        """``locations``: name -> definitions module (default: the trivial bench location,
        from its file, and imaging)."""
        self.kind = kind
        self.home = folder / "home"
        self.data = folder / "data"
        self.home.mkdir(parents=True)
        config = ROOT / ("deploy/dagster.yaml" if postgres_url else "dagster.yaml")
        shutil.copy(config, self.home / "dagster.yaml")
        modules = locations or {"imaging": "imaging_assets.definitions"}
        entries: list[dict] = [
            {"python_module": {"module_name": module, "location_name": name}}
            for name, module in modules.items()
        ]
        if locations is None:
            trivial = str(ROOT / "bench" / "trivial_location.py")
            entries.insert(0, {"python_file": {"relative_path": trivial, "location_name": "bench"}})
        workspace = {"load_from": entries}
        self.workspace = folder / "workspace.yaml"
        self.workspace.write_text(yaml.safe_dump(workspace))
        self.port = _free_port()
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "PLATFORM_DATA_ROOT": str(self.data),
            "PLATFORM_INBOX_INTERVAL_SECONDS": "5",
            "IMAGING_INBOX_SETTLE_SECONDS": "0",
        }
        if postgres_url:
            self.env["DAGSTER_POSTGRES_URL"] = postgres_url
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Deployment:
        os.environ.update({k: self.env[k] for k in ("DAGSTER_HOME", "PLATFORM_DATA_ROOT")})
        if "DAGSTER_POSTGRES_URL" in self.env:
            os.environ["DAGSTER_POSTGRES_URL"] = self.env["DAGSTER_POSTGRES_URL"]
        logs = self.home / "logs"
        logs.mkdir()
        for name, command in (
            ("daemon", [BIN / "dagster-daemon", "run", "-w", self.workspace]),
            (
                "webserver",
                [
                    BIN / "dagster-webserver",
                    "-w",
                    self.workspace,
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                ],
            ),
        ):
            with (logs / f"{name}.log").open("w") as log:
                self.processes.append(
                    subprocess.Popen(
                        [str(c) for c in command],
                        env=self.env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        _wait(lambda: _answers(f"{self.url}/server_info"), 180, "webserver")
        self.instance = dg.DagsterInstance.from_config(str(self.home))
        self.client = DagsterGraphQLClient("127.0.0.1", port_number=self.port)
        _wait(lambda: len(self.instance.get_daemon_heartbeats()) >= 4, 120, "daemon heartbeats")
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.instance.dispose()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def submit(self, job: str, location: str, tags: dict[str, str] | None = None) -> str:
        return self.client.submit_job_execution(job, location, "__repository__", tags=tags)

    def wait_finished(self, run_ids: list[str], timeout: float) -> list[dg.RunRecord]:
        def records() -> list[dg.RunRecord]:
            return list(self.instance.get_run_records(dg.RunsFilter(run_ids=run_ids)))

        _wait(
            lambda: (
                all(r.dagster_run.is_finished for r in records()) and len(records()) == len(run_ids)
            ),
            timeout,
            f"{len(run_ids)} runs",
        )
        done = records()
        failed = [r.dagster_run.run_id for r in done if r.dagster_run.status.value != "SUCCESS"]
        assert not failed, f"runs failed: {failed}"
        return done


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def sequential_launches(deployment: Deployment, count: int) -> dict[str, float]:
    """One trivial run at a time: median seconds submitted -> started and -> finished."""
    to_start, to_finish = [], []
    for _ in range(count):
        submitted = time.time()
        [record] = deployment.wait_finished([deployment.submit("trivial_job", "bench")], 120)
        to_start.append(record.start_time - submitted)
        to_finish.append(record.end_time - submitted)
    return {"to_start": statistics.median(to_start), "to_finish": statistics.median(to_finish)}


def queued_throughput(deployment: Deployment, count: int) -> dict[str, float]:
    started = time.monotonic()
    run_ids = [deployment.submit("trivial_job", "bench") for _ in range(count)]
    submitted = time.monotonic() - started
    deployment.wait_finished(run_ids, 60 * count)
    wall = time.monotonic() - started
    return {"submit_s": submitted, "wall_s": wall, "per_run_s": wall / count}


def materialize_command(*selection: str) -> list[str]:
    """The plain ``dagster asset materialize`` CLI on the bench location."""
    trivial_location = str(ROOT / "bench" / "trivial_location.py")
    return [str(BIN / "dagster"), "asset", "materialize", "-f", trivial_location, *selection]


def cli_materialize(deployment: Deployment, count: int) -> float:
    """Median wall seconds of one ``dagster asset materialize`` process."""
    times = []
    for _ in range(count):
        started = time.monotonic()
        subprocess.run(
            materialize_command("--select", "trivial"),
            env=deployment.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        times.append(time.monotonic() - started)
    return statistics.median(times)


def sensor_latency(deployment: Deployment, drops: int) -> dict[str, float]:
    """Plate folders dropped one at a time: median seconds to run requested and started."""
    from imaging_assets.demo import write_demo_plate
    from imaging_assets.science.synthetic import TileGrid

    stage = deployment.data.parent / "stage"
    inbox = DataStore(root=str(deployment.data), location="imaging").inbox()
    inbox.mkdir(parents=True, exist_ok=True)
    sensor = dg.RunsFilter(tags={"dagster/sensor_name": "plate_inbox_sensor"})
    requested, started = [], []
    for index in range(drops):
        plate = write_demo_plate(stage, f"drop{index}", "generic", 1, TileGrid(tile=128), 1, index)
        (plate / ".complete").touch()
        time.sleep(5 * (index / drops))  # drops at different phases of the sensor interval
        dropped = time.time()
        shutil.move(plate, inbox / plate.name)
        _wait(
            lambda n=index + 1: len(deployment.instance.get_run_records(sensor)) >= n,
            120,
            "sensor run",
        )
        [record] = deployment.instance.get_run_records(sensor, limit=1)
        [record] = deployment.wait_finished([record.dagster_run.run_id], 180)
        requested.append(record.create_timestamp.timestamp() - dropped)
        started.append(record.start_time - dropped)
    return {"requested": statistics.median(requested), "started": statistics.median(started)}


def ui_timings(deployment: Deployment, repeats: int) -> dict[str, list[float]]:
    """Seconds from navigation to the page's content in Debian chromium (first, then warm)."""
    from playwright.sync_api import expect, sync_playwright

    subprocess.run(
        materialize_command("--select", "daily_marker", "--partition-range", PARTITION_RANGE),
        env=deployment.env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    materialized = deployment.instance.get_materialized_partitions(dg.AssetKey("daily_marker"))
    assert len(materialized) == 1000, len(materialized)
    pages = {
        "asset graph (imaging)": (
            f"{deployment.url}/locations/imaging/asset-groups/imaging",
            lambda page: [
                expect(page.get_by_text(name, exact=True).first).to_be_visible()
                for name in IMAGING_ASSETS
            ],
        ),
        "1,000-partition status page": (
            f"{deployment.url}/assets/daily_marker?view=partitions",
            lambda page: expect(page.get_by_text("Materialized (1000)")).to_be_visible(),
        ),
    }
    timings: dict[str, list[float]] = {name: [] for name in pages}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(120_000)
        page.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
        page.add_locator_handler(  # the UI's community pop-up, if it shows anyway
            page.get_by_text("Join the Dagster community"),
            lambda: page.get_by_role("button", name="Skip").click(),
        )
        for _ in range(repeats):
            for name, (url, ready) in pages.items():
                page.goto("about:blank")
                started = time.monotonic()
                page.goto(url, wait_until="commit")
                ready(page)
                timings[name].append(time.monotonic() - started)
        shots = ROOT / "test-artifacts" / "bench"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=shots / "partitions_1000.png")
        browser.close()
    return timings


def _create_database() -> tuple[str, str]:
    name = f"dagster_bench_{uuid.uuid4().hex[:8]}"
    with closing(psycopg2.connect(f"{SERVER}/postgres")) as admin:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    return name, f"{SERVER.replace('postgresql://', 'postgresql+psycopg2://')}/{name}"


def _drop_database(name: str) -> None:
    with closing(psycopg2.connect(f"{SERVER}/postgres")) as admin:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=5)
    parser.add_argument("--queued", type=int, default=100)
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument("--sensor-drops", type=int, default=3)
    parser.add_argument("--ui-repeats", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, dict[str, object]] = {}
    database, postgres_url = _create_database()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-production-") as tmp:
            for kind, url in (("sqlite", None), ("postgres", postgres_url)):
                with Deployment(kind, Path(tmp) / kind, url) as deployment:
                    row: dict[str, object] = {}
                    row["sequential"] = sequential_launches(deployment, args.sequential)
                    row["cli"] = cli_materialize(deployment, args.cli_runs)
                    row["queued"] = queued_throughput(deployment, args.queued)
                    row["sensor"] = sensor_latency(deployment, args.sensor_drops)
                    if kind == "postgres" and Path(CHROMIUM).exists():
                        row["ui"] = ui_timings(deployment, args.ui_repeats)
                    results[kind] = row
                    print(kind, row, flush=True)
    finally:
        _drop_database(database)
    _report(results, args)
    return 0


def _report(results: dict[str, dict[str, object]], args: argparse.Namespace) -> None:
    print("\n| figure | SQLite | Postgres |\n|---|---|---|")
    rows = [
        (
            "trivial run via the queue: submitted -> started (median s)",
            lambda r: r["sequential"]["to_start"],
        ),
        (
            "trivial run via the queue: submitted -> finished (median s)",
            lambda r: r["sequential"]["to_finish"],
        ),
        ("`dagster asset materialize`, one process per run (median s)", lambda r: r["cli"]),
        (f"{args.queued} queued trivial runs: wall (s)", lambda r: r["queued"]["wall_s"]),
        (f"{args.queued} queued trivial runs: per run (s)", lambda r: r["queued"]["per_run_s"]),
        (
            "sensor latency: plate dropped -> run requested (median s)",
            lambda r: r["sensor"]["requested"],
        ),
        (
            "sensor latency: plate dropped -> run started (median s)",
            lambda r: r["sensor"]["started"],
        ),
    ]
    for label, value in rows:
        print(f"| {label} | {value(results['sqlite']):.2f} | {value(results['postgres']):.2f} |")
    for name, times in results["postgres"].get("ui", {}).items():
        warm = statistics.median(times[1:]) if len(times) > 1 else times[0]
        print(f"| UI (Postgres) {name}: first / warm median (s) | | {times[0]:.2f} / {warm:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
