"""kill -9 of a run's process in the middle of stitching: run monitoring marks the run failed,
the failure reaches the notifier, and the instance's run retry re-executes it from the failed
step: the completed assets are not recomputed, wells finished before the kill are reused, and
the half-written well is never read. (`hcs resume` / `ecod resume` do the same by hand when
retries are off; tests/ecod covers that path.)"""

import os
import re
import signal
from pathlib import Path

import dagster as dg
from dagster_graphql import DagsterGraphQLClient

from imaging_assets.demo import plate_wells, write_demo_plate
from imaging_assets.inputs import register_plate, stitched_store
from imaging_assets.partitions import plates
from imaging_assets.science.synthetic import TileGrid
from tests.imaging.support import latest_check
from tests.production.conftest import wait_until
from tests.support import latest_metadata, store

WELLS = 24

DEPLOYED_LOCATIONS = ("imaging",)  # the deployment serves only these (conftest)


def _process_of(inst: dg.DagsterInstance, run_id: str) -> int:
    """PID of the process executing a run, from the run's "Started process" engine event."""
    for entry in inst.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        match = re.search(r"Started process for run \(pid: (\d+)\)", entry.message or "")
        if match:
            return int(match.group(1))
    raise AssertionError(f"no process start recorded for {run_id}")


def test_kill_9_mid_stage_then_resume(production) -> None:
    root, env = production
    inst = dg.DagsterInstance.get()
    folder = write_demo_plate(
        root / "plates", "killed", "imagexpress", WELLS, TileGrid(tile=512), 2, 1
    )
    plate = register_plate(store("imaging"), folder)
    inst.add_dynamic_partitions(plates.name, [plate])
    client = DagsterGraphQLClient("127.0.0.1", port_number=int(env["DAGSTER_WEB_PORT"]))
    run_id = client.submit_job_execution(
        "imaging_plate",
        "imaging",
        "__repository__",
        run_config={"resources": {"imaging": {"config": {"num_workers": 1}}}},
        tags={"dagster/partition": plate},
    )
    zarr = stitched_store(store("imaging"), plate)
    wells = [(row, str(column)) for row, column in plate_wells(WELLS)]

    def done() -> list[tuple[str, str]]:
        return [w for w in wells if (zarr / w[0] / w[1] / "0" / "zarr.json").exists()]

    wait_until(lambda: len(done()) >= 2, 300, "the first stitched wells", interval=0.05)
    os.kill(_process_of(inst, run_id), signal.SIGKILL)
    finished_before_kill = done()
    assert len(finished_before_kill) < WELLS, "the run finished before it could be killed"

    wait_until(
        lambda: inst.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE, 120, "monitoring"
    )
    alerts = Path(env["PLATFORM_DATA_ROOT"]) / "alerts.log"
    wait_until(lambda: alerts.exists() and run_id in alerts.read_text(), 120, "the failure alert")

    # the instance's run retries (dagster.yaml) resume it from the failed step
    def retry() -> dg.DagsterRun | None:
        found = inst.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": run_id}), limit=1)
        return found[0] if found and found[0].is_finished else None

    wait_until(lambda: retry() is not None, 300, "the retry run")
    resumed = retry()
    assert resumed.status == dg.DagsterRunStatus.SUCCESS
    assert resumed.tags.get("dagster/retry_strategy", "FROM_FAILURE") == "FROM_FAILURE"
    steps = {s.step_key for s in inst.get_run_step_stats(resumed.run_id)}
    assert not steps & {"plate_manifest", "plate_validation", "tile_positions"}
    assert {"stitched_plate", "plate_qc"} <= steps
    stitched = latest_metadata(inst, "stitched_plate", plate)
    assert stitched["wells_reused"] >= len(finished_before_kill)
    assert stitched["wells_reused"] + stitched["wells_written"] == WELLS
    assert not list(zarr.rglob(".0.*"))  # no temporary or retired well image left
    assert latest_check(inst, "stitched_plate", "plate_opens_in_ome_zarr", plate)
