"""A run's step result records, read back from the instance (what the API returns): the
record each step's materialization carries (``completed``, or ``reused``), the error of a
step that failed, the reason of a step skipped at run time, and ``not run`` for the steps
after a failure."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from omics_assets.assets.steps import STATUS_CHECK
from omics_assets.workflows import WorkflowDefinition


def _record(status: str, errors: list[str] | None = None, reason: str = "") -> dict[str, Any]:
    record: dict[str, Any] = {
        "status": status,
        "output": {},
        "errors": errors or [],
        "warnings": [],
        "metadata": {},
    }
    return record | ({"reason": reason} if reason else {})


def run_results(
    instance: dg.DagsterInstance, run_id: str, definition: WorkflowDefinition
) -> dict[str, dict[str, Any]]:
    """Each enabled step's result record in the Dagster run ``run_id``, in step order."""
    found: dict[str, dict[str, Any]] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            meta: Mapping[str, Any] = materialization.metadata
            step = materialization.asset_key.path[-1]
            record = dict(meta["step_result"].value)
            found[step] = record | {"status": meta["status"].value}
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if evaluation.check_name == STATUS_CHECK and not evaluation.passed:
                found[evaluation.asset_key.path[-1]] = _record(
                    "skipped", reason=evaluation.description or ""
                )
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE and event.step_key:
            step = event.step_key.removeprefix(f"{definition.name}__")
            error = event.event_specific_data.error
            message = error.message.strip() if error else "failed"
            found[step] = _record("failed", [message])
    return {
        s: found.get(s, _record("not run", reason="a step before it failed"))
        for s in definition.steps
    }
