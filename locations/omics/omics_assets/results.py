"""A run's step result records, read back from the instance (what the API returns): the
record each step's materialization carries (``completed``, or ``reused``), the record a
failed step's ``dg.Failure`` carries (or its description, when the step failed before it ran:
a config or an upstream it could not read), the reason of a step skipped at run time, and
``not run`` for the steps after a failure."""

from typing import Any

import dagster as dg

from omics_assets.assets.steps import STATUS_CHECK
from omics_assets.workflows import WorkflowDefinition
from platform_core.errors import root_cause


def _record(status: str, errors: list[str] | None = None, reason: str = "") -> dict[str, Any]:
    record: dict[str, Any] = {
        "status": status,
        "output": {},
        "errors": errors or [],
        "warnings": [],
        "metadata": {},
    }
    return record | ({"reason": reason} if reason else {})


def _failed(data: Any) -> dict[str, Any]:
    """A failed step's record from its failure event."""
    user = data.user_failure_data
    carried = (user.metadata or {}).get("step_result") if user else None
    if carried is not None:
        return dict(carried.value)
    text = user.description if user else (root_cause(data.error) if data.error else "")
    return _record("failed", [(text or "step failed").strip()])


def run_results(
    instance: dg.DagsterInstance, run_id: str, definition: WorkflowDefinition
) -> dict[str, dict[str, Any]]:
    """Each enabled step's result record in the Dagster run ``run_id``, in step order."""
    found: dict[str, dict[str, Any]] = {}
    kinds = {
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        dg.DagsterEventType.STEP_FAILURE,
    }
    for entry in instance.all_logs(run_id, of_type=kinds):
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            meta = materialization.metadata
            record = dict(meta["step_result"].value) | {"status": meta["status"].value}
            found[materialization.asset_key.path[-1]] = record
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if evaluation.check_name == STATUS_CHECK and not evaluation.passed:
                reason = evaluation.description or ""
                found[evaluation.asset_key.path[-1]] = _record("skipped", reason=reason)
        elif event.step_key:
            found[event.step_key.removeprefix(f"{definition.name}__")] = _failed(
                event.step_failure_data
            )
    return {
        step: found.get(step, _record("not run", reason="a step before it failed"))
        for step in definition.steps
    }
