"""What a step reads from upstream workflows (``inputs: {workflow: latest | run key}`` and
``reads: [workflow.step]``): the graph's deps, and the values of the run it reads, from the
instance's materializations (the same for an asset, the plan and the API)."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from omics_assets.workflows import LATEST, RESULT_FILE
from platform_core.checkpoint import FINGERPRINT_KEY, latest_materialization

RECENT = 50  # runs of an upstream workflow searched for the latest with every step read


def upstream_deps(reads: Sequence[str], inputs: Mapping[str, str]) -> list[dg.AssetDep]:
    """The deps of ``workflow.step`` reads: the upstream's last partition (``latest``) or
    the run its ``inputs:`` names."""
    deps = []
    for read in reads:
        workflow, _, step = read.rpartition(".")
        choice = inputs[workflow]
        mapping = (
            dg.LastPartitionMapping()
            if choice == LATEST
            else dg.SpecificPartitionsPartitionMapping([choice])
        )
        deps.append(dg.AssetDep(dg.AssetKey([workflow, step]), partition_mapping=mapping))
    return deps


def _value(record: dg.EventLogRecord, run: str) -> dict[str, Any]:
    """A step's value (as its asset returns it) from its materialization."""
    meta = record.asset_materialization.metadata
    output = meta["step_result"].value["output"]
    return {
        "step": record.asset_key.path[-1],
        "dir": meta["output_dir"].value,
        "fingerprint": meta[FINGERPRINT_KEY].value,
        "files": output["files"],
        "metrics": output["metrics"],
        "run": run,
    }


def _run_values(
    instance: dg.DagsterInstance, workflow: str, steps: Sequence[str], run: str
) -> dict[str, dict[str, Any]] | str:
    """The values of ``steps`` of ``workflow`` in ``run`` by ``workflow.step``, or why not
    (a step without a materialization there, or whose files are gone)."""
    found = {}
    for step in steps:
        record = latest_materialization(instance, dg.AssetKey([workflow, step]), run)
        value = _value(record, run) if record else None
        if value is None or not (Path(value["dir"]) / RESULT_FILE).exists():
            return (
                f"reads {workflow}.{step} of run {run}, which has no completed "
                f"{workflow}/{step} (never materialized there, or its files are gone)"
            )
        found[f"{workflow}.{step}"] = value
    return found


def _latest_values(
    instance: dg.DagsterInstance, workflow: str, steps: Sequence[str]
) -> dict[str, dict[str, Any]] | str:
    """The values of ``steps`` in the run (partition) of ``workflow`` materialized most
    recently with every one complete (the lineage's ``LastPartitionMapping`` is the last run
    added: the same but when an older run was re-materialized, or the newest lost its
    files), or why there is none."""
    first = dg.AssetKey([workflow, steps[0]])
    for record in instance.fetch_materializations(first, limit=RECENT).records:
        run = record.asset_materialization.partition
        found = _run_values(instance, workflow, steps, run) if run else ""
        if isinstance(found, dict):
            return found
    return (
        f"reads {', '.join(f'{workflow}.{s}' for s in steps)}, but workflow {workflow} "
        f"has no run with them yet: run `omics run --workflow {workflow}` first"
    )


def upstream_values(
    instance: dg.DagsterInstance, inputs: Mapping[str, str], reads: Sequence[str]
) -> dict[str, dict[str, Any]] | str:
    """Per ``workflow.step`` read, the value of that step in the run ``inputs`` names (the
    latest with every step read, for ``latest``); each has the ``run`` it came from. Why
    not, when a run or a step of it is missing."""
    by_workflow: dict[str, list[str]] = {}
    for read in reads:
        workflow, _, step = read.rpartition(".")
        by_workflow.setdefault(workflow, []).append(step)
    found: dict[str, dict[str, Any]] = {}
    for workflow, steps in by_workflow.items():
        choice = inputs.get(workflow, LATEST)
        values = (
            _latest_values(instance, workflow, steps)
            if choice == LATEST
            else _run_values(instance, workflow, steps, choice)
        )
        if isinstance(values, str):
            return values
        found |= values
    return found
