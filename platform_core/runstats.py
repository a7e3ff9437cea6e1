"""What a location's runs say about its pipelines (asset groups): last run, error rate, average
duration, consecutive failures, data age. For CLIs, sensors and health checks alike, so it
imports no CLI module."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import dagster as dg

from platform_core.dagster_internals import cron_string_iterator
from platform_core.errors import root_cause

FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
PARENT_TAG = "dagster/parent_run_id"  # on a run that re-executes another (a retry)


def run_failure(inst: dg.DagsterInstance, run_id: str) -> str:
    """Why run ``run_id`` failed, in one line: its first failed step and what it said (a
    ``dg.Failure``'s description, else the innermost error)."""
    for entry in inst.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        data = entry.dagster_event.step_failure_data
        user = data.user_failure_data
        text = user.description if user else (root_cause(data.error) if data.error else "")
        return f"{entry.step_key}: {(text or 'step failed').strip().splitlines()[0]}"
    return "run failed"


def last_run(inst: dg.DagsterInstance, job_names: Iterable[str]) -> dg.RunRecord | None:
    records = [
        record
        for name in job_names
        for record in inst.get_run_records(dg.RunsFilter(job_name=name), limit=1)
    ]
    return max(records, key=lambda r: r.create_timestamp, default=None)


def run_summary(record: dg.RunRecord | None) -> dict[str, Any]:
    if record is None:
        return {"last_run": None, "status": "never run", "duration_s": None, "started": None}
    start, end = record.start_time, record.end_time
    return {
        "last_run": record.dagster_run.run_id,
        "job": record.dagster_run.job_name,
        "status": record.dagster_run.status.value,
        "started": datetime.fromtimestamp(start, UTC).isoformat(timespec="seconds")
        if start
        else None,
        "duration_s": round(end - start, 2) if start and end else None,
    }


def stale_after(policy: dg.FreshnessPolicy, materialized_at: float) -> float:
    """When (Unix seconds) an asset last materialized at ``materialized_at`` turns stale under
    ``policy``, by the rule of Dagster's freshness daemon: a time window fails ``fail_window``
    after the materialization; a cron policy at the first deadline tick whose window (tick
    minus ``lower_bound_delta``) starts after it. For CLIs without a daemon."""
    fail_window = getattr(policy, "fail_window", None)
    if fail_window is not None:
        return materialized_at + fail_window.to_timedelta().total_seconds()
    lower_bound = policy.lower_bound_delta.total_seconds()
    for tick in cron_string_iterator(materialized_at, policy.deadline_cron, policy.timezone):
        if tick.timestamp() - lower_bound > materialized_at:
            return tick.timestamp()
    raise AssertionError("a cron iterator does not end")


def belongs(
    run: dg.DagsterRun,
    location: str,
    defs: dg.Definitions,
    instance: dg.DagsterInstance | None = None,
) -> bool:
    """Whether a run is ``location``'s: one of its jobs, or an asset run (UI, backfill) of its
    assets; with ``instance``, also a run of the Python API (``dg.materialize``: no origin, no
    selection, an ephemeral job) that plans one of its assets."""
    origin = run.remote_job_origin
    if origin is not None:
        return origin.location_name == location
    graph = defs.resolve_asset_graph()
    if run.asset_selection:
        return bool(run.asset_selection & set(graph.get_all_asset_keys()))
    if run.job_name in {job.name for job in defs.jobs or []}:
        return True
    if instance is None or not run.job_name.startswith("__"):
        return False
    planned = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=1
    ).records
    return any(graph.has(r.event_log_entry.dagster_event.asset_key) for r in planned)


def run_groups(
    inst: dg.DagsterInstance, run: dg.DagsterRun, defs: dg.Definitions
) -> dict[str, str]:
    """Group -> SUCCESS, FAILURE or CANCELED for the groups a finished run planned to
    materialize. A failed run fails only the groups of its failed steps; its other groups
    succeed when all their planned assets materialized (else they are left out)."""
    graph = defs.resolve_asset_graph()
    kinds = {
        dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.STEP_FAILURE,
    }
    planned: dict[str, set[dg.AssetKey]] = {}
    done: set[dg.AssetKey] = set()
    failed_steps: set[str] = set()
    step_groups: dict[str, set[str]] = {}
    for entry in inst.all_logs(run.run_id, of_type=kinds):
        event = entry.dagster_event
        key = event.asset_key
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            failed_steps.add(entry.step_key or "")
        elif key is not None and graph.has(key):
            group = graph.get(key).group_name
            if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                done.add(key)
            else:
                planned.setdefault(group, set()).add(key)
            if entry.step_key:
                step_groups.setdefault(entry.step_key, set()).add(group)
    if run.status != dg.DagsterRunStatus.FAILURE:
        return {group: run.status.value for group in planned}
    failed = {g for step in failed_steps for g in step_groups.get(step, planned)}
    return {
        group: "FAILURE" if group in failed else "SUCCESS"
        for group, keys in planned.items()
        if group in failed or keys <= done
    }


def location_runs(
    inst: dg.DagsterInstance,
    defs: dg.Definitions,
    location: str,
    *,
    updated_after: datetime | None = None,
    limit: int = 500,
) -> list[dg.RunRecord]:
    """``location``'s runs among the instance's newest ``limit``, newest first (``belongs``,
    Python API runs included)."""
    records = inst.get_run_records(dg.RunsFilter(updated_after=updated_after), limit=limit)
    return [r for r in records if _belongs_cached(r.dagster_run, location, defs, inst)]


# (what, the location's Definitions, run id) -> the groups of a finished run, or whether it
# belongs: neither changes once the run has finished, so a sensor reads a run's events once
# per process, not per tick.
_FINISHED: OrderedDict[tuple[str, str, int, str], Any] = OrderedDict()
_FINISHED_MAX = 20_000


def _remember(key: tuple[str, str, int, str], finished: bool, compute: Callable[[], Any]) -> Any:
    if key in _FINISHED:
        return _FINISHED[key]
    value = compute()
    if finished:
        _FINISHED[key] = value
        if len(_FINISHED) > _FINISHED_MAX:
            _FINISHED.popitem(last=False)
    return value


def _belongs_cached(
    run: dg.DagsterRun, location: str, defs: dg.Definitions, inst: dg.DagsterInstance
) -> bool:
    key = ("belongs", location, id(defs), run.run_id)
    return _remember(key, run.is_finished, lambda: belongs(run, location, defs, inst))


@dataclass(frozen=True)
class PipelineStats:
    location: str
    pipeline: str
    last_run: str | None
    last_run_at: str | None
    status: str
    error_rate: float | None
    runs_in_window: int
    failures_in_window: int
    avg_duration_s: float | None
    consecutive_failures: int
    data_age_hours: float | None
    data_freshness: Literal["fresh", "stale", "unknown"]


class RunHistory:
    """A location's runs, read once for one sensor tick or one health report: every
    pipeline's figures come from this one read, and a finished run's events are read once per
    process. ``limit``: how many of the instance's newest runs are looked at."""

    def __init__(
        self, inst: dg.DagsterInstance, defs: dg.Definitions, location: str, limit: int = 500
    ) -> None:
        self.inst, self.defs, self.location = inst, defs, location
        self.records = location_runs(inst, defs, location, limit=limit)
        self._graph = defs.resolve_asset_graph()
        self._materialized: dict[dg.AssetKey, float] | None = None

    def groups(self, run: dg.DagsterRun) -> dict[str, str]:
        """``run_groups`` of ``run`` (read once when it has finished)."""
        key = ("groups", self.location, id(self.defs), run.run_id)
        return _remember(key, run.is_finished, lambda: run_groups(self.inst, run, self.defs))

    def group_runs(self, group: str) -> list[tuple[dg.RunRecord, str]]:
        """The group's finished runs, newest first, with the group's outcome; a run that was
        retried counts by its retry (only the retry is listed)."""
        retried = {r.dagster_run.tags.get(PARENT_TAG) for r in self.records}
        found = []
        for record in self.records:
            run = record.dagster_run
            if run.status in FINISHED and run.run_id not in retried:
                status = self.groups(run).get(group)
                if status is not None:
                    found.append((record, status))
        return found

    def stats(
        self,
        group: str,
        *,
        window_runs: int = 20,
        window_hours: float = 24.0,
        max_data_age_hours: float | None = None,
        now: float | None = None,
    ) -> PipelineStats:
        """Group ``group``'s figures: the window is the last ``window_runs`` runs that ended in
        the last ``window_hours``. Stale: an asset's FreshnessPolicy deadline passed, or its
        data is older than ``max_data_age_hours``."""
        now = time.time() if now is None else now
        runs = self.group_runs(group)
        window = [(r, s) for r, s in runs if (r.end_time or 0) >= now - window_hours * 3600]
        window = window[:window_runs]
        failures = sum(s == "FAILURE" for _, s in window)
        durations = [r.end_time - r.start_time for r, _ in window if r.start_time and r.end_time]
        consecutive = next((i for i, (_, s) in enumerate(runs) if s != "FAILURE"), len(runs))
        age, stale = self._data_age(group, now)
        if age is not None and max_data_age_hours is not None and age > max_data_age_hours:
            stale = True
        last, status = runs[0] if runs else (None, "never run")
        return PipelineStats(
            location=self.location,
            pipeline=group,
            last_run=last.dagster_run.run_id if last else None,
            last_run_at=_iso(last.end_time) if last else None,
            status=status,
            error_rate=failures / len(window) if window else None,
            runs_in_window=len(window),
            failures_in_window=failures,
            avg_duration_s=round(sum(durations) / len(durations), 3) if durations else None,
            consecutive_failures=consecutive,
            data_age_hours=age,
            data_freshness="unknown" if age is None else ("stale" if stale else "fresh"),
        )

    def _data_age(self, group: str, now: float) -> tuple[float | None, bool]:
        """(hours since the oldest of the group's latest materializations, whether an asset's
        freshness deadline passed); (None, False) if none ever materialized."""
        if self._materialized is None:
            self._materialized = {}
            for key in self._graph.materializable_asset_keys:
                event = self.inst.get_latest_materialization_event(key)
                if event is not None:
                    self._materialized[key] = event.timestamp
        oldest, stale = None, False
        for key, when in self._materialized.items():
            node = self._graph.get(key)
            if node.group_name != group:
                continue
            oldest = when if oldest is None else min(oldest, when)
            policy = node.freshness_policy
            stale = stale or bool(policy and stale_after(policy, when) < now)
        return (None if oldest is None else round((now - oldest) / 3600, 4)), stale


def _iso(seconds: float | None) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds") if seconds else None


def pipelines(defs: dg.Definitions) -> list[str]:
    """A location's pipelines: the groups of its materializable assets (read from the assets
    themselves, so partial Definitions without resources do: no asset graph is built)."""
    groups = {
        group
        for found in defs.assets or []
        if isinstance(found, dg.AssetsDefinition) and found.is_materializable
        for group in found.group_names_by_key.values()
    }
    return sorted(groups)
