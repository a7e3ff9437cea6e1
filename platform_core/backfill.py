"""The in-process runner of every location's CLI: a request's work here, on every core, cut
into runs as the daemon cuts an asset backfill of it (platform_core.daemon), from the
definitions alone:

- phases: as Dagster's asset backfill daemon does, an asset that reads *other* partitions of
  an upstream asset of the same backfill (market events reading 70 earlier days) runs with
  it only when both target the same partitions, all in one run; otherwise it waits for that
  asset's whole range (so does an asset with another partitions definition or policy);
- runs: each phase's partition range in chunks of the assets' ``BackfillPolicy``
  (``max_partitions_per_run``), as many at once as there are cores (the run queue's limit
  under a daemon).
"""

import importlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dagster as dg

from platform_core.cli import quiet_warnings, run_job
from platform_core.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    AssetGraph,
)
from platform_core.pool import map_shared, warm_shared
from platform_core.runstats import run_failure


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
        "error": "" if result.success else run_failure(inst, result.run_id),
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


def run_phases(
    graph: AssetGraph,
    selection: Sequence[dg.AssetKey],
    partitions: Mapping[dg.AssetKey, Sequence[str]],
) -> list[list[dg.AssetKey]]:
    """``selection`` (in dependency order, each asset with its targeted ``partitions``) in
    phases, as Dagster's asset backfill daemon orders them: an asset shares its selected
    parent's phase (and runs) when the two can share a run, else goes one phase after it."""
    selected, phase = set(selection), {}
    for key in selection:
        phase[key] = max(
            (
                phase[parent] + (0 if _same_run(graph, key, parent, partitions) else 1)
                for parent in graph.get(key).parent_keys
                if parent in selected
            ),
            default=0,
        )
    return [[k for k in selection if phase[k] == p] for p in range(max(phase.values()) + 1)]


def _same_run(
    graph: AssetGraph,
    child: dg.AssetKey,
    parent: dg.AssetKey,
    partitions: Mapping[dg.AssetKey, Sequence[str]],
) -> bool:
    """The daemon's rule: the same partitions definition and backfill policy, and either a
    plain mapping (each partition reads its own) or, for a mapping that reads *other*
    partitions (70 earlier days), the same targeted partitions, all in one run of the
    parent's policy."""
    child_node, parent_node = graph.get(child), graph.get(parent)
    if (
        child_node.partitions_def != parent_node.partitions_def
        or child_node.backfill_policy != parent_node.backfill_policy
    ):
        return False
    if _identity(child_node.partition_mappings.get(parent)):
        return True
    policy, targeted = parent_node.backfill_policy, list(partitions[parent])
    return (
        policy is not None
        and targeted == list(partitions[child])
        and (policy.max_partitions_per_run is None or policy.max_partitions_per_run > len(targeted))
    )


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
    for phase in run_phases(graph, selection, partitions):
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
