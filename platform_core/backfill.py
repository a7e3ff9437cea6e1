"""Backfills for every location's CLI: a real Dagster backfill when a daemon serves the
instance (it shows on the UI's Backfills page, can be cancelled there, and its failed
partitions re-executed), otherwise the same work in this process. Both cut the work the same
way, from the definitions alone:

- phases: an asset that reads *other* partitions of an upstream asset of the same backfill
  (a partition mapping that is not the identity, e.g. market events reading 70 earlier days)
  waits for that asset's whole range; everything else runs together;
- runs: each phase's partition range in chunks of the assets' ``BackfillPolicy``
  (``max_partitions_per_run``), as many at once as there are cores (the run queue's limit
  under a daemon).
"""

import argparse
import importlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dagster as dg

from platform_core.cli import (
    Progress,
    failure_summary,
    print_json,
    print_table,
    quiet_warnings,
    run_job,
)
from platform_core.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    AssetGraph,
    PartitionBackfill,
    PartitionRangeSelector,
    PartitionsByAssetSelector,
    PartitionsSelector,
)
from platform_core.pool import map_shared, warm_shared

BACKFILL_DAEMON = "BACKFILL"
HEARTBEAT_FRESH_SECONDS = 60.0  # the daemon beats every 30 s: one beat may be late
# a backfill's status values (BulkActionStatus) while the daemon works on it, and on success
ACTIVE = {"REQUESTED", "CANCELING", "FAILING"}
SUCCEEDED = {"COMPLETED", "COMPLETED_SUCCESS"}


def run_partition_range(
    job: dg.JobDefinition,
    inst: dg.DagsterInstance,
    first: str,
    last: str,
    asset_selection: Sequence[dg.AssetKey] | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> dg.ExecuteInProcessResult:
    """One run over the partition range [first, last] (single-run backfill); a range of one
    partition is a plain run of that partition, as Dagster's backfill launches it."""
    if first == last:
        return run_job(job, inst, first, asset_selection, tags, run_config)
    range_tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
    return run_job(job, inst, None, asset_selection, {**range_tags, **(tags or {})}, run_config)


def _timed_run(
    job: dg.JobDefinition,
    inst: dg.DagsterInstance,
    first: str,
    last: str,
    asset_selection: Sequence[dg.AssetKey],
    tags: Mapping[str, str],
    run_config: Mapping[str, Any],
) -> dict[str, Any]:
    """How one partition-range run ended: run_id, partitions, seconds, success, error (one
    line)."""
    started = time.monotonic()
    result = run_partition_range(job, inst, first, last, asset_selection, tags, run_config)
    return {
        "run_id": result.run_id,
        "partitions": f"{first}..{last}",
        "seconds": round(time.monotonic() - started, 2),
        "success": result.success,
        "error": "" if result.success else failure_summary(result),
    }


def _run_range_worker(
    module: str,
    instance_ref: str,
    job_name: str,
    first: str,
    last: str,
    asset_selection: list[str],
    tags: dict[str, str],
    run_config: dict[str, Any],
) -> dict[str, Any]:
    """One partition-range run in a worker process (see run_side_by_side)."""
    quiet_warnings()
    job = importlib.import_module(module).defs.resolve_job_def(job_name)
    keys = [dg.AssetKey.from_user_string(a) for a in asset_selection]
    return _timed_run(job, _worker_instance(instance_ref), first, last, keys, tags, run_config)


def _import_quietly(module: str) -> None:
    quiet_warnings()
    importlib.import_module(module)


def warm_workers(module: str) -> None:
    """Start the worker processes of an in-process backfill now, importing ``module``: their
    start-up (~3 s of imports) overlaps the CLI's own planning instead of its first runs."""
    warm_shared(os.cpu_count() or 1, _import_quietly, module)


_WORKER_INSTANCES: dict[str, dg.DagsterInstance] = {}


def _worker_instance(instance_ref: str) -> dg.DagsterInstance:
    """The instance of a serialized ref, opened once per worker process: opening one costs
    ~0.13 s, a tenth of a short run."""
    if instance_ref not in _WORKER_INSTANCES:
        ref = dg.deserialize_value(instance_ref)
        _WORKER_INSTANCES[instance_ref] = dg.DagsterInstance.from_ref(ref)  # type: ignore[arg-type]
    return _WORKER_INSTANCES[instance_ref]


def run_side_by_side(
    module: str,
    inst: dg.DagsterInstance,
    runs: Sequence[tuple[str, str, str, Sequence[dg.AssetKey]]],
    tags: Mapping[str, str],
    run_config: Mapping[str, Any],
    workers: int,
    on_result: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Each (job, first, last, asset selection) as one partition-range run, ``workers`` at
    once (this process and ``workers - 1`` pool processes, the first run here): a backfill on
    every core. Only for runs that do not read each other's outputs. The jobs come from
    ``<module>.defs``; the runs go to ``inst`` (not ephemeral); ``on_result(done)`` after each
    run (progress)."""
    ref, config = dg.serialize_value(inst.get_ref()), dict(run_config)
    calls = [
        (module, ref, job, first, last, [k.to_user_string() for k in keys], dict(tags), config)
        for job, first, last, keys in runs
    ]
    return map_shared(_run_range_worker, calls, workers, on_result=on_result)


def daemon_serves(inst: dg.DagsterInstance) -> bool:
    """Whether a backfill daemon heartbeat on this instance is recent (``dagster dev``,
    ``deploy/up.sh``): then a submitted backfill will be worked on."""
    beat = inst.get_daemon_heartbeats().get(BACKFILL_DAEMON)
    return beat is not None and time.time() - beat.timestamp < HEARTBEAT_FRESH_SECONDS


def run_phases(graph: AssetGraph, selection: Sequence[dg.AssetKey]) -> list[list[dg.AssetKey]]:
    """``selection`` (in dependency order) in phases: an asset goes one phase after a selected
    parent whose *other* partitions it reads, in the parent's phase otherwise."""
    selected, phase = set(selection), {}
    for key in selection:
        node = graph.get(key)
        phase[key] = max(
            (
                phase[parent] + (0 if _identity(node.partition_mappings.get(parent)) else 1)
                for parent in node.parent_keys
                if parent in selected
            ),
            default=0,
        )
    return [[k for k in selection if phase[k] == p] for p in range(max(phase.values()) + 1)]


def _identity(mapping: dg.PartitionMapping | None) -> bool:
    if mapping is None or isinstance(mapping, dg.IdentityPartitionMapping):
        return True
    return isinstance(mapping, dg.TimeWindowPartitionMapping) and (
        mapping.start_offset == mapping.end_offset == 0
    )


def policy_chunks(
    graph: AssetGraph, keys: Sequence[dg.AssetKey], partitions: Sequence[str]
) -> list[tuple[str, str]]:
    """``partitions`` (sorted) as contiguous (first, last) runs of at most the smallest
    ``max_partitions_per_run`` of the assets' backfill policies, as Dagster cuts them: a
    single-run policy takes every partition, an asset without a policy one per run."""
    sizes = [
        1 if policy is None else policy.max_partitions_per_run or len(partitions)
        for policy in (graph.get(k).backfill_policy for k in keys)
    ]
    size = min(sizes, default=len(partitions)) or 1
    return [
        (partitions[i], partitions[min(i + size, len(partitions)) - 1])
        for i in range(0, len(partitions), size)
    ]


def run_in_process(
    module: str,
    defs: dg.Definitions,
    inst: dg.DagsterInstance,
    jobs: Mapping[str, Mapping[dg.AssetKey, Sequence[str]]],
    tags: Mapping[str, str],
    progress: Callable[[str], None],
    run_config: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Each job over its assets' sorted partitions here, as one plan: phase after phase over
    every job's assets together (an asset waits only for the upstream ranges it reads, even
    those of another job), a phase's assets grouped by job and partitions, each group in
    chunks of its backfill policy, the runs of a phase on every core, the heaviest first; a
    failed phase stops the next. Per run: job, run_id, partitions, assets (how many), seconds,
    success, error."""
    graph, config = defs.resolve_asset_graph(), dict(run_config or {})
    job_of = {key: job for job, selected in jobs.items() for key in selected}
    partitions = {key: keys for selected in jobs.values() for key, keys in selected.items()}
    selection = [k for k in graph.toposorted_asset_keys if k in partitions]
    plan = []
    for phase in run_phases(graph, selection):
        groups: dict[tuple[str, tuple[str, ...]], list[dg.AssetKey]] = {}
        for key in phase:
            groups.setdefault((job_of[key], tuple(partitions[key])), []).append(key)
        weighed = [
            (_weight(graph, keys, span, first, last), (job, first, last, keys))
            for (job, span), keys in groups.items()
            for first, last in policy_chunks(graph, keys, span)
        ]
        weighed.sort(key=lambda pair: -pair[0])
        plan.append([chunk for _, chunk in weighed])
    alike = len(jobs) == 1 and len(set(map(tuple, partitions.values()))) == 1
    if alike and all(len(runs) == 1 for runs in plan):  # one run: Dagster orders its steps
        (job,), keys = jobs, partitions[selection[0]]
        plan = [[(job, keys[0], keys[-1], selection)]]
    reports: list[dict[str, Any]] = []
    for number, runs in enumerate(plan, 1):
        started = time.monotonic()
        what = f"{'+'.join(dict.fromkeys(job for job, *_ in runs))} phase {number}/{len(plan)}"
        if len(runs) > 1:  # on every core, the next run as soon as a core is free
            counter = _counter(progress, what, len(runs), started)
            workers = os.cpu_count() or 1
            ran = run_side_by_side(module, inst, runs, tags, config, workers, counter)
        else:
            ((job, first, last, keys),) = runs
            ran = [_timed_run(defs.resolve_job_def(job), inst, first, last, keys, tags, config)]
            progress(f"{what}: 1 run ({time.monotonic() - started:.1f} s)")
        reports += [
            {"job": job, **report, "assets": len(keys)}
            for report, (job, *_, keys) in zip(ran, runs, strict=True)
        ]
        if not all(report["success"] for report in reports):
            return reports
    return reports


def _weight(
    graph: AssetGraph, keys: Sequence[dg.AssetKey], span: Sequence[str], first: str, last: str
) -> float:
    """A run's expected work, to start the heaviest first: its assets times the time its
    partitions cover (seconds), or times how many of ``span`` it has when they are not time
    windows."""
    partitions_def = graph.get(keys[0]).partitions_def
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        start = partitions_def.time_window_for_partition_key(first).start
        covered = partitions_def.time_window_for_partition_key(last).end - start
        return len(keys) * covered.total_seconds()
    return len(keys) * (span.index(last) - span.index(first) + 1)


def _counter(
    progress: Callable[[str], None], what: str, total: int, started: float
) -> Callable[[int], None]:
    def done(count: int) -> None:
        elapsed = time.monotonic() - started
        progress(f"{what}: runs {count}/{total} ({elapsed:.1f} s, {os.cpu_count() or 1} at once)")

    return done


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
    poll_seconds: float = 2.0,
) -> tuple[str, list[dg.RunRecord]]:
    """Wait until the daemon has finished the backfill (completed, failed or cancelled);
    returns its final status and its runs. Progress: runs finished / launched."""
    last_line = ""
    while True:
        backfill = inst.get_backfill(backfill_id)
        runs = list(inst.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id})))
        finished = [r for r in runs if r.dagster_run.is_finished]
        line = f"backfill {backfill_id}: {backfill.status.value}, runs {len(finished)}/{len(runs)}"
        if line != last_line:
            progress(line)
            last_line = line
        if backfill.status.value not in ACTIVE and len(finished) == len(runs):
            return backfill.status.value, runs
        time.sleep(poll_seconds)


def submit_and_report(
    inst: dg.DagsterInstance,
    defs: dg.Definitions,
    partitions: Mapping[dg.AssetKey, Sequence[str]],
    tags: Mapping[str, str],
    title: str,
    args: argparse.Namespace,
    progress: Progress,
    run_config: Mapping[str, Any] | None = None,
) -> int:
    """The CLI's work as one Dagster backfill; unless ``args.no_wait``, wait for it and print
    its runs (``args.json``: as JSON). Exit code 0 when every run succeeded, else 1."""
    backfill_id = submit_backfill(inst, defs, partitions, tags, title, run_config)
    print(f"backfill {backfill_id} submitted ({title}); the UI shows it under Backfills")
    if args.no_wait:
        return 0
    status, runs = wait_for_backfill(inst, backfill_id, progress)
    progress.done()
    rows = [
        {
            "job": r.dagster_run.job_name,
            "status": r.dagster_run.status.value,
            "partitions": "..".join(
                r.dagster_run.tags.get(tag, "")
                for tag in (ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG)
            ),
            "run_id": r.dagster_run.run_id,
        }
        for r in sorted(runs, key=lambda r: r.create_timestamp)
    ]
    if args.json:
        print_json({"backfill": backfill_id, "status": status, "runs": rows})
    else:
        print_table(rows, ["job", "status", "partitions", "run_id"])
    if status not in SUCCEEDED or any(r["status"] != "SUCCESS" for r in rows):
        print(f"error: backfill {backfill_id} ended {status}", file=sys.stderr)
        return 1
    return 0
