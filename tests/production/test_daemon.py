"""Postgres instance + deploy/up.sh: the daemon's inbox sensors start real runs, once each,
also across a daemon restart."""

import json
import shutil
import time
import urllib.request

import dagster as dg

from ecod_assets.cli import main as ecod
from imaging_assets.cli import main as hcs
from tests.production.conftest import deploy, wait_until

SENSORS = {"ecod_inbox_sensor": "ecod_full", "plate_inbox_sensor": "imaging_plate"}

DEPLOYED_LOCATIONS = ("ecod", "imaging")  # the deployment serves only these (conftest)


def _sensor_runs(inst: dg.DagsterInstance) -> dict[str, list[dg.RunRecord]]:
    return {
        sensor: list(inst.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": sensor})))
        for sensor in SENSORS
    }


def _wait_for_success(inst: dg.DagsterInstance, timeout: float) -> dict[str, list[dg.RunRecord]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _sensor_runs(inst)
        statuses = [r.dagster_run.status for records in runs.values() for r in records]
        if any(s == dg.DagsterRunStatus.FAILURE for s in statuses):
            raise AssertionError(f"a sensor run failed: {runs}")
        if all(runs.values()) and all(s == dg.DagsterRunStatus.SUCCESS for s in statuses):
            return runs
        time.sleep(2)
    raise AssertionError(f"sensor runs did not succeed within {timeout}s: {_sensor_runs(inst)}")


INBOX_SENSORS = (("ecod", "ecod_inbox_sensor"), ("imaging", "plate_inbox_sensor"))
TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { ticks(limit: 10) { timestamp } } }
  }
}"""


def _ticks(url: str, location: str, sensor: str) -> list[float]:
    """When the daemon evaluated a sensor (newest ten), as the UI's GraphQL API tells."""
    selector = {
        "repositoryLocationName": location,
        "repositoryName": "__repository__",
        "sensorName": sensor,
    }
    body = json.dumps({"query": TICKS, "variables": {"selector": selector}}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())["data"]["sensorOrError"]
    return [tick["timestamp"] for tick in answer.get("sensorState", {}).get("ticks", [])]


def test_inbox_sensors_run_once_under_the_daemon_on_postgres(production) -> None:
    root, env = production
    inst = dg.DagsterInstance.get()
    assert type(inst.run_storage).__name__ == "PostgresRunStorage"
    assert ecod(["reference"]) == 0  # the ECOD runs need the reference library
    stage = root / "stage"
    assert ecod(["demo", "--out", str(stage), "--name", "b1", "--chains", "12"]) == 0
    assert hcs(["demo", "--out", str(stage), "--name", "p1", "--wells", "1", "--tile", "256"]) == 0
    (stage / "p1" / ".complete").touch()
    inboxes = {
        "ecod": root / "data" / "ecod" / "inbox",
        "imaging": root / "data" / "imaging" / "inbox",
    }
    for inbox in inboxes.values():
        inbox.mkdir(parents=True)
    dropped = time.time()
    shutil.move(stage / "b1.fasta", inboxes["ecod"] / "b1.fasta")
    shutil.move(stage / "p1", inboxes["imaging"] / "p1")

    runs = _wait_for_success(inst, timeout=240)
    for sensor, job in SENSORS.items():
        [record] = runs[sensor]
        assert record.dagster_run.job_name == job
        latency = record.create_timestamp.timestamp() - dropped
        print(f"{sensor}: run requested {latency:.1f}s after the drop")
    assert runs["ecod_inbox_sensor"][0].dagster_run.tags["dagster/partition"] == "b1"
    assert runs["plate_inbox_sensor"][0].dagster_run.tags["dagster/partition"] == "p1"
    assert (root / "data" / "ecod" / "classification" / "b1.parquet").exists()
    assert (root / "data" / "imaging" / "stitched_plate" / "p1.ome.zarr" / "zarr.json").exists()

    # a daemon restart re-reads the sensors' cursors: nothing runs twice, however many ticks
    deploy("down.sh", env)
    deploy("up.sh", env)
    restarted = time.time()
    url = f"http://127.0.0.1:{env['DAGSTER_WEB_PORT']}/graphql"
    wait_until(
        lambda: all(
            len([t for t in _ticks(url, location, sensor) if t > restarted]) >= 3
            for location, sensor in (
                ("ecod", "ecod_inbox_sensor"),
                ("imaging", "plate_inbox_sensor"),
            )
        ),
        300,
        "three ticks of each inbox sensor after the restart",
        1,
    )
    again = _sensor_runs(inst)
    assert {s: len(r) for s, r in again.items()} == {s: 1 for s in SENSORS}
