"""What a step reads from upstream workflows (``inputs: {workflow: latest | run key}`` and
``reads: [workflow.step]``): the graph's deps, and the values of the run it reads, from the
instance's materializations (the same for an asset, the plan and the API)."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from omics_assets.workflows import RESULT_FILE
from platform_core.checkpoint import FINGERPRINT_KEY, latest_materialization

LATEST = "latest"
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
    folder = Path(meta["output_dir"].value)
    output = meta["step_result"].value["output"]
    return {
        "step": record.asset_key.path[-1],
        "dir": str(folder),
        "fingerprint": meta[FINGERPRINT_KEY].value,
        "files": output["files"],
        "metrics": output["metrics"],
        "run": run,
        "complete": (folder / RESULT_FILE).exists(),
    }


def _complete(instance: dg.DagsterInstance, workflow: str, step: str, run: str) -> bool:
    """Whether ``workflow/step`` has a materialization in ``run`` whose files are there."""
    record = latest_materialization(instance, dg.AssetKey([workflow, step]), run)
    return record is not None and _value(record, run)["complete"]


def _latest_run(instance: dg.DagsterInstance, workflow: str, steps: Sequence[str]) -> str | None:
    """The run (partition) of ``workflow`` materialized most recently with every step read
    complete (the lineage's ``LastPartitionMapping`` is the last run added: the same but
    when an older run was re-materialized, or the newest lost its files)."""
    first = dg.AssetKey([workflow, steps[0]])
    for record in instance.fetch_materializations(first, limit=RECENT).records:
        run = record.asset_materialization.partition
        if run and all(_complete(instance, workflow, s, run) for s in steps):
            return run
    return None


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
        run = _latest_run(instance, workflow, steps) if choice == LATEST else choice
        if run is None:
            return (
                f"reads {', '.join(f'{workflow}.{s}' for s in steps)}, but workflow {workflow} "
                f"has no run with them yet: run `omics run --workflow {workflow}` first"
            )
        for step in steps:
            record = latest_materialization(instance, dg.AssetKey([workflow, step]), run)
            value = _value(record, run) if record else None
            if value is None or not value["complete"]:
                return (
                    f"reads {workflow}.{step} of run {run}, which has no completed "
                    f"{workflow}/{step} (its files gone?)"
                )
            found[f"{workflow}.{step}"] = value
    return found
