"""Scale-out on Celery: with DAGSTER_CELERY_BROKER_URL set, runs launched by the daemon send
every step to two dagster-celery workers started with deploy/worker.sh. Both workers take
steps, every step of every run goes through a worker, and the stored results equal those of
the same partitions run locally by the CLIs. RabbitMQ (127.0.0.1:5672) carries a run of each
location; Redis (127.0.0.1:6379, broker and result backend) a Tetra run."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import zarr
from dagster_graphql import DagsterGraphQLClient

from ecod_assets.cli import main as ecod
from imaging_assets.demo import write_demo_plate
from imaging_assets.inputs import register_plate
from imaging_assets.partitions import plates
from imaging_assets.science.synthetic import TileGrid
from platform_core.executors import BACKEND_ENV, BROKER_ENV
from tests.production.conftest import ROOT, deploy, wait_until
from tests.support import store

RABBITMQ = {
    BROKER_ENV: os.environ.get("PLATFORM_TEST_AMQP", "pyamqp://guest:guest@127.0.0.1:5672//")
}
REDIS_URL = os.environ.get("PLATFORM_TEST_REDIS", "redis://127.0.0.1:6379/7")
REDIS = {BROKER_ENV: REDIS_URL, BACKEND_ENV: REDIS_URL}
WORKERS = ("w1", "w2")
DATE = "2018-06-01"
# location -> (job, partition) launched through the webserver
LAUNCHES = {
    "tetra": ("tetra_data", DATE),
    "ecod": ("ecod_full", "b1"),
    "imaging": ("imaging_plate", "p1"),
}
# The science results of each location (tool logs and timings are not results).
RESULTS = {
    "tetra": ["market_data", "market_events", "economic_data"],
    "ecod": [
        *("batch_chains", "blast_chain_hits", "blast_domain_hits", "domain_summary"),
        *("domain_partition", "classification"),
    ],
    "imaging": ["tile_positions", "plate_qc"],
}
RUN_DEPENDENT_COLUMNS = {"seconds", "peak_mb"}  # how long a well took, on whichever host


@pytest.fixture
def deployment_env(request: pytest.FixtureRequest) -> dict[str, str]:
    return request.param


def _celery(*args: str, env: dict[str, str]) -> None:
    command = [str(ROOT / ".venv/bin/celery"), "-A", "platform_core.celery_worker", *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _start_workers(env: dict[str, str]) -> None:
    _celery("purge", "--force", "--queues", "dagster", env=env)  # nothing left from earlier
    for name in WORKERS:
        deploy_worker = subprocess.run(
            [str(ROOT / "deploy" / "worker.sh"), name], env=env, capture_output=True, text=True
        )
        assert deploy_worker.returncode == 0, deploy_worker.stderr
    logs = [Path(env["DAGSTER_HOME"]) / "run" / f"celery-{name}.log" for name in WORKERS]
    wait_until(
        lambda: all(log.exists() and " ready." in log.read_text() for log in logs),
        60,
        f"both workers to be ready (logs: {logs})",
    )


def _run_locally(root: Path, locations: tuple[str, ...], plate_dir: Path, fasta: Path) -> Path:
    """The same partitions through the CLIs (in-process executor, embedded SQLite)."""
    commands = {
        "tetra": [["tetra", "run", "--pipeline", "data", "--date", DATE]],
        "ecod": [
            ["ecod", "reference"],
            ["ecod", "submit", str(fasta), "--batch-id", "b1"],
            ["ecod", "run", "--batch", "b1"],
        ],
        "imaging": [["hcs", "run", str(plate_dir), "--workers", "1"]],
    }
    local = root / "local"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env |= {"DAGSTER_HOME": str(local / "home"), "PLATFORM_DATA_ROOT": str(local / "data")}
    (local / "home").mkdir(parents=True)
    bin_dir = Path(sys.executable).parent
    for command in (c for location in locations for c in commands[location]):
        result = subprocess.run(
            [str(bin_dir / command[0]), *command[1:]], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
    return local / "data"


def _stored(data: Path, location: str, asset: str, partition: str) -> Any:
    [path] = (data / location / asset).glob(f"{partition}.*")
    if path.suffix in (".parquet", ".arrow"):
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_feather(path)
        return frame.drop(columns=sorted(RUN_DEPENDENT_COLUMNS & set(frame.columns)))
    return path.read_text().replace(str(data), "<data root>")


def _all_arrays(group: zarr.Group, prefix: str = "") -> dict[str, np.ndarray]:
    arrays = {f"{prefix}{name}": np.asarray(array) for name, array in group.arrays()}
    for name, child in group.groups():
        arrays |= _all_arrays(child, f"{prefix}{name}/")
    return arrays


def _celery_steps(inst: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Step key -> the Celery worker that ran it (dagster-celery's engine event)."""
    steps = {}
    for entry in inst.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        metadata = entry.dagster_event.event_specific_data.metadata
        if "Celery worker" in metadata:
            steps[entry.step_key] = metadata["Celery worker"].value
    return steps


@pytest.mark.parametrize(
    ("deployment_env", "locations"),
    [(RABBITMQ, ("tetra", "ecod", "imaging")), (REDIS, ("tetra",))],
    ids=["rabbitmq", "redis"],
    indirect=["deployment_env"],
)
def test_steps_run_on_two_celery_workers_with_local_results(
    production, locations: tuple[str, ...]
) -> None:
    root, env = production
    inst = dg.DagsterInstance.get()
    _start_workers(env)
    fasta = root / "b1.fasta"
    if "ecod" in locations:
        assert ecod(["reference"]) == 0
        assert (
            ecod(["demo", "--out", str(root), "--name", "b1", "--chains", "4", "--seed", "3"]) == 0
        )
        assert ecod(["submit", str(fasta), "--batch-id", "b1"]) == 0
    plate = LAUNCHES["imaging"][1]
    plate_dir = root / "plates" / plate
    if "imaging" in locations:
        write_demo_plate(plate_dir.parent, plate, "generic", 2, TileGrid(tile=128), 1, 0)
        inst.add_dynamic_partitions(plates.name, [register_plate(store("imaging"), plate_dir)])
    client = DagsterGraphQLClient("127.0.0.1", port_number=int(env["DAGSTER_WEB_PORT"]))
    run_ids = [
        client.submit_job_execution(
            LAUNCHES[location][0],
            location,
            "__repository__",
            tags={"dagster/partition": LAUNCHES[location][1]},
        )
        for location in locations
    ]
    wait_until(
        lambda: all(inst.get_run_by_id(r).is_finished for r in run_ids), 420, "the Celery runs", 2
    )
    for run_id in run_ids:
        run = inst.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS, (run.job_name, run.status)

    hostname_by_step: dict[str, str] = {}
    for run_id in run_ids:
        started = {
            e.step_key for e in inst.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
        }
        on_workers = _celery_steps(inst, run_id)
        assert started and set(on_workers) == started  # every step went through a worker
        run = inst.get_run_by_id(run_id)
        recorded = dg.serialize_value(list(inst.all_logs(run_id))) + json.dumps(run.run_config)
        assert env[BROKER_ENV] not in recorded  # the broker URL stays in the environment
        hostname_by_step |= {f"{run_id}:{k}": v for k, v in on_workers.items()}
    used = {hostname.split("@")[0] for hostname in hostname_by_step.values()}
    assert used == set(WORKERS), hostname_by_step  # both workers took steps
    deploy("down.sh", env)  # workers are stopped with the rest
    assert not list((Path(env["DAGSTER_HOME"]) / "run").glob("celery-*.pid"))

    local = _run_locally(root, locations, plate_dir, fasta)
    celery = root / "data"
    for location in locations:
        partition = LAUNCHES[location][1]
        rows = 0
        for asset in RESULTS[location]:
            on_celery = _stored(celery, location, asset, partition)
            on_local = _stored(local, location, asset, partition)
            if isinstance(on_celery, pd.DataFrame):
                pd.testing.assert_frame_equal(on_celery, on_local, obj=f"{location}/{asset}")
                rows += len(on_celery)
            else:
                assert on_celery == on_local, f"{location}/{asset}"
        assert rows > 0, f"{location}: no result rows to compare"
    if "imaging" not in locations:
        return
    pixels = {
        name: _all_arrays(zarr.open_group(data / "imaging/stitched_plate" / f"{plate}.ome.zarr"))
        for name, data in (("celery", celery), ("local", local))
    }
    assert pixels["celery"].keys() == pixels["local"].keys() and len(pixels["celery"]) >= 2
    for path, array in pixels["celery"].items():
        np.testing.assert_array_equal(array, pixels["local"][path], err_msg=path)
