"""20 runs submitted at once across the three locations, through the web server's GraphQL
API, queued on Postgres and launched by the daemon: all succeed, never more than the queue
limit at once, never more BLAST/HH-suite steps at once than the ecod_tools pool allows, and
every step's events are in the log."""

from itertools import combinations

import dagster as dg
from dagster_graphql import DagsterGraphQLClient

from ecod_assets.cli import main as ecod
from ecod_assets.resources import TOOL_POOL
from imaging_assets.demo import write_demo_plate
from imaging_assets.inputs import register_plate
from imaging_assets.partitions import plates
from imaging_assets.science.synthetic import TileGrid
from tests.production.conftest import wait_for_runs
from tests.support import store

QUEUE_LIMIT = 2  # deploy/dagster.yaml concurrency.runs.max_concurrent_runs
TOOL_STEPS = {"blast_hits", "hhsearch_profiles", "hhsearch_hits"}
DATES = ["2018-06-01", "2018-06-04", "2018-06-05", "2018-06-06", "2018-06-07", "2018-06-08"]

DEPLOYED_LOCATIONS = ("tetra", "ecod", "imaging")  # the deployment serves only these (conftest)


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    level = peak = 0
    for _, change in events:
        level += change
        peak = max(peak, level)
    return peak


def test_twenty_runs_at_once_respect_queue_and_pool(production) -> None:
    root, env = production
    inst = dg.DagsterInstance.get()
    assert ecod(["reference"]) == 0
    batches = []
    for index in range(7):
        fasta = root / f"batch{index}.fasta"
        demo = ["demo", "--out", str(root), "--name", fasta.stem, "--chains", "8"]
        assert ecod([*demo, "--seed", str(index)]) == 0
        assert ecod(["submit", str(fasta), "--batch-id", f"batch{index}"]) == 0
        batches.append(f"batch{index}")
    plate_names = []
    for index in range(7):
        plate = write_demo_plate(
            root / "plates", f"plate{index}", "generic", 1, TileGrid(tile=128), 1, index
        )
        plate_names.append(register_plate(store("imaging"), plate))
    inst.add_dynamic_partitions(plates.name, plate_names)

    client = DagsterGraphQLClient("127.0.0.1", port_number=int(env["DAGSTER_WEB_PORT"]))
    submitted = [
        client.submit_job_execution(
            "tetra_data", "tetra", "__repository__", tags={"dagster/partition": d}
        )
        for d in DATES
    ]
    submitted += [
        client.submit_job_execution(
            "ecod_full", "ecod", "__repository__", tags={"dagster/partition": b}
        )
        for b in batches
    ]
    submitted += [
        client.submit_job_execution(
            "imaging_plate", "imaging", "__repository__", tags={"dagster/partition": p}
        )
        for p in plate_names
    ]
    assert len(submitted) == 20

    records = wait_for_runs(inst, submitted, timeout=1500)  # ~3 minutes on an idle machine

    # the queue: never more than QUEUE_LIMIT runs in flight
    windows = [(r.start_time, r.end_time) for r in records]
    assert _max_overlap(windows) <= QUEUE_LIMIT
    assert _max_overlap(windows) == QUEUE_LIMIT  # and the queue was used, not serialised

    # the pool: BLAST/HH-suite steps of different runs never overlap (limit 1, from
    # deploy/dagster.yaml alone: nothing set it on this fresh instance)
    assert inst.event_log_storage.get_concurrency_info(TOOL_POOL).slot_count == 1
    tool_steps = [
        (stat.start_time, stat.end_time)
        for run_id in submitted[len(DATES) : len(DATES) + len(batches)]
        for stat in inst.get_run_step_stats(run_id)
        if stat.step_key in TOOL_STEPS
    ]
    assert len(tool_steps) == 3 * len(batches)
    assert not any(a[0] < b[1] and b[0] < a[1] for a, b in combinations(tool_steps, 2))

    # no event lost: every step of every run started and succeeded, every asset materialized
    for run_id in submitted:
        stats = inst.get_run_step_stats(run_id)
        assert stats and all(s.status.value == "SUCCESS" for s in stats), run_id
        logs = inst.all_logs(run_id)
        starts = sum(
            1 for e in logs if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"
        )
        successes = sum(
            1
            for e in logs
            if e.dagster_event and e.dagster_event.event_type_value == "STEP_SUCCESS"
        )
        assert starts == successes == len(stats), run_id
    for asset, keys in (
        ("market_data", DATES),
        ("classification", batches),
        ("stitched_plate", plate_names),
    ):
        assert set(keys) <= inst.get_materialized_partitions(dg.AssetKey(asset)), asset
