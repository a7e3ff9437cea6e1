"""Work handed to the daemon: a CLI's request as a Dagster asset backfill (on the UI's
Backfills page, cancellable there, its failed partitions re-executable), waited on with
progress. Whether a daemon serves the instance decides which path a ``run`` takes."""

import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dagster as dg

from platform_core.cli import Progress
from platform_core.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    AssetGraph,
    PartitionBackfill,
    PartitionRangeSelector,
    PartitionsByAssetSelector,
    PartitionsSelector,
)
from platform_core.runstats import run_failure
from platform_core.session import CLI_TAG, Request, Session

# a backfill's status values (BulkActionStatus) while the daemon works on it, and on success
ACTIVE = {"REQUESTED", "CANCELING", "FAILING"}
SUCCEEDED = {"COMPLETED", "COMPLETED_SUCCESS"}


def submit_backfill(
    inst: dg.DagsterInstance,
    defs: dg.Definitions,
    partitions: Mapping[dg.AssetKey, Sequence[str]],
    tags: Mapping[str, str],
    title: str,
    run_config: Mapping[str, Any] | None = None,
) -> str:
    """An asset backfill of ``partitions`` (per asset, a sorted list of keys) for the daemon,
    each of its runs with ``run_config``; returns its id. Dagster has no public call for this:
    ``PartitionBackfill`` is fenced (platform_core.dagster_internals)."""
    backfill_id, graph = uuid.uuid4().hex[:8], defs.resolve_asset_graph()
    with dg.partition_loading_context(dynamic_partitions_store=inst):  # dynamic keys
        backfill = PartitionBackfill.from_partitions_by_assets(
            backfill_id=backfill_id,
            asset_graph=graph,
            backfill_timestamp=time.time(),
            tags=dict(tags),
            dynamic_partitions_store=inst,
            partitions_by_assets=[
                PartitionsByAssetSelector(
                    asset_key=key, partitions=PartitionsSelector(ranges=_ranges(graph, key, keys))
                )
                for key, keys in partitions.items()
            ],
            title=title,
            description=f"submitted by {os.path.basename(sys.argv[0]) or 'a CLI'}",
            run_config=dict(run_config) if run_config else None,
        )
    inst.add_backfill(backfill)
    return backfill_id


def _ranges(
    graph: AssetGraph, key: dg.AssetKey, keys: Sequence[str]
) -> list[PartitionRangeSelector]:
    """One range from the first to the last key; for dynamic partitions (kept in the order
    they were added, not sorted) a range per key, so no other partition falls inside."""
    if isinstance(graph.get(key).partitions_def, dg.DynamicPartitionsDefinition):
        return [PartitionRangeSelector(k, k) for k in keys]
    return [PartitionRangeSelector(keys[0], keys[-1])]


def wait_for_backfill(
    inst: dg.DagsterInstance,
    backfill_id: str,
    progress: Callable[[str], None],
    targets: Mapping[dg.AssetKey, Sequence[str]] | None = None,
    after: int | None = None,
    poll_seconds: float = 2.0,
) -> tuple[str, list[dg.RunRecord]]:
    """Wait until the daemon has finished the backfill (completed, failed or cancelled), or
    until its runs have succeeded and materialized every partition of ``targets`` (event
    storage ids after ``after``): the daemon marks the backfill completed only on its next
    loop, up to 30 s later. Returns its status and its runs. Progress: runs finished /
    launched, and the steps of the runs in progress."""
    last_line = ""
    while True:
        backfill = inst.get_backfill(backfill_id)
        runs = list(inst.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id})))
        finished = [r for r in runs if r.dagster_run.is_finished]
        line = f"backfill {backfill_id}: {backfill.status.value}, runs {len(finished)}/{len(runs)}"
        for record in runs:
            if not record.dagster_run.is_finished:
                stats = inst.get_run_step_stats(record.dagster_run.run_id)
                done = sum(1 for s in stats if s.end_time)
                running = ", ".join(s.step_key for s in stats if not s.end_time)
                line += f"; run {record.dagster_run.run_id[:8]}: {done} steps done"
                line += f", running {running}" if running else ""
        if line != last_line:
            progress(line)
            last_line = line
        if backfill.status.value not in ACTIVE and len(finished) == len(runs):
            return backfill.status.value, runs
        latest = latest_runs(runs)  # a retried run's retry, not the failure it replaced
        succeeded = all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in latest)
        if runs and succeeded and targets is not None and _materialized(inst, targets, after):
            return "COMPLETED_SUCCESS", runs
        time.sleep(poll_seconds)


def run_partitions(run: dg.DagsterRun) -> str:
    """The partition (``k``) or range (``a..b``) a run covers."""
    return run.tags.get("dagster/partition") or "..".join(
        run.tags.get(tag, "")
        for tag in (ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG)
    )


def latest_runs(runs: Sequence[dg.RunRecord]) -> list[dg.RunRecord]:
    """The newest run per job and partitions (a run retried by the instance's run retries
    is replaced by its retry), oldest first."""
    newest = {}
    for record in sorted(runs, key=lambda r: r.create_timestamp):
        newest[(record.dagster_run.job_name, run_partitions(record.dagster_run))] = record
    return sorted(newest.values(), key=lambda r: r.create_timestamp)


def _materialized(
    inst: dg.DagsterInstance, targets: Mapping[dg.AssetKey, Sequence[str]], after: int | None
) -> bool:
    """Whether every partition of ``targets`` was materialized after event id ``after``."""
    return all(
        set(keys) <= inst.get_materialized_partitions(key, after_cursor=after)
        for key, keys in targets.items()
    )


def submit_and_wait(
    session: Session, request: Request, progress: Progress, wait: bool = True
) -> tuple[str, str, list[dict[str, Any]]]:
    """A command's request as one Dagster backfill, its runs tagged with the request's tags
    and those of the jobs that run it here; unless not ``wait``, wait for it. Returns the
    backfill's id, its status and its runs (job, run_id, partitions, status, error)."""
    inst, defs, partitions = session.instance, session.defs, request.partitions
    tags = {  # the job's own (ECOD's run timeout), as a run of the job would carry them
        **{k: v for job in request.jobs for k, v in defs.resolve_job_def(job).tags.items()},
        **request.tags,
    }
    title = request.title or f"{request.tags.get(CLI_TAG, 'run')} {', '.join(request.jobs)}"
    after = inst.event_log_storage.get_maximum_record_id()
    backfill_id = submit_backfill(inst, defs, partitions, tags, title, request.run_config)
    print(f"backfill {backfill_id} submitted ({title}): the UI shows it", file=sys.stderr)
    if not wait:
        return backfill_id, "REQUESTED", []
    status, runs = wait_for_backfill(inst, backfill_id, progress, partitions, after)
    progress.done()
    rows = [
        {
            "job": r.dagster_run.job_name,
            "run_id": r.dagster_run.run_id,
            "partitions": run_partitions(r.dagster_run),
            "status": r.dagster_run.status.value,
            "error": ""
            if r.dagster_run.status.value == "SUCCESS"
            else run_failure(inst, r.dagster_run.run_id),
        }
        for r in latest_runs(runs)
    ]
    if status not in SUCCEEDED and all(row["status"] == "SUCCESS" for row in rows):
        keys = sorted({k for keys in partitions.values() for k in keys})  # cancelled, or failed
        span = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}" if keys else ""
        error = f"backfill {backfill_id} ended {status}"
        rows.append({"job": "", "run_id": "", "partitions": span, "status": status, "error": error})
    return backfill_id, status, rows
