"""``tetra_fallback_refresh``: the next good fetch replaces a fallback without a person.

Every ~10 minutes the sensor reads the materializations stored since its last tick and keeps,
in its cursor, each partition whose latest materialization is a fallback (data:
``use_cached_data``; scenarios: ``use_previous_scenarios``) or, for a weekly asset, read one
(``fallback_inputs``). It then requests:

- the data job for each daily partition holding a fallback (the fetch is tried again);
- the weekly chain for each week holding fallback scenarios (metrics and assessment read
  them, so they are rebuilt too);
- the weekly chain for each week whose results read a partition that has been replaced
  since (its ``fallback_inputs`` name one whose latest materialization is no longer a
  fallback): a week built on a kept value is rebuilt on the real one.

The run key carries the storage id of the materialization that asked for it: one run per
fallback; a run that falls back again writes a new one, which asks again on a later tick.
At most ``MAX_RUNS_PER_TICK`` runs a tick; the rest wait for the next ones.
"""

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import dagster as dg

from platform_core import failure
from tetra_assets.defs import jobs

SENSOR_NAME = "tetra_fallback_refresh"
INTERVAL_SECONDS = 600
MAX_RUNS_PER_TICK = 10
PAGE = 1000  # materializations read per query
MAX_PAGES_PER_TICK = 20  # per asset: a first tick on a long history catches up over ticks
DAILY_FALLBACKS = ("market_data", "economic_data")  # use_cached_data: rerun the data job
WEEKLY_FALLBACKS = ("scenario_definitions", "scenario_timeseries")  # use_previous_scenarios
# The weekly chain's assets that record fallback_inputs (which kept values they read).
WEEKLY_READERS = (
    *WEEKLY_FALLBACKS,
    "technical_indicators",
    "statistical_metrics",
    "ml_features",
    "backtest_results",
    "assessment_report",
)
WATCHED = (*DAILY_FALLBACKS, *WEEKLY_READERS)


@dataclass(frozen=True)
class Pending:
    """A partition whose latest materialization (``storage_id``) is a fallback or read ones
    (``inputs``: input asset -> partitions)."""

    storage_id: int
    fallback: bool
    inputs: Mapping[str, list[str]]


@dataclass
class State:
    """The sensor's cursor: per asset, the last storage id read and the pending partitions;
    per run (``job:partition``), the storage id it was last requested for."""

    seen: dict[str, int]
    pending: dict[str, dict[str, Pending]]
    requested: dict[str, int]

    @classmethod
    def parse(cls, cursor: str | None) -> "State":
        raw = json.loads(cursor) if cursor else {}
        pending = {
            asset: {key: Pending(*entry) for key, entry in partitions.items()}
            for asset, partitions in raw.get("pending", {}).items()
        }
        return cls(raw.get("seen", {}), pending, raw.get("requested", {}))

    def dump(self) -> str:
        pending = {
            asset: {key: [p.storage_id, p.fallback, dict(p.inputs)] for key, p in parts.items()}
            for asset, parts in self.pending.items()
            if parts
        }
        return json.dumps(
            {"seen": self.seen, "pending": pending, "requested": self.requested},
            sort_keys=True,
        )


def read_new(instance: dg.DagsterInstance, state: State) -> None:
    """Bring ``state.pending`` up to the newest materialization of each watched asset (at
    most ``MAX_PAGES_PER_TICK`` pages each): a fallback or a read fallback becomes pending,
    a later plain materialization of the same partition clears it."""
    for asset in WATCHED:
        pending = state.pending.setdefault(asset, {})
        for _ in range(MAX_PAGES_PER_TICK):
            page = instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=dg.AssetKey(asset), after_storage_id=state.seen.get(asset)
                ),
                limit=PAGE,
                ascending=True,
            )
            for record in page.records:
                event = record.asset_materialization
                if event is None or event.partition is None:
                    continue
                fell_back = bool(failure.flag(event.metadata, failure.FALLBACK_KEY))
                inputs = failure.flag(event.metadata, failure.FALLBACK_INPUTS_KEY) or {}
                if fell_back or inputs:
                    pending[event.partition] = Pending(record.storage_id, fell_back, inputs)
                else:
                    pending.pop(event.partition, None)
                state.seen[asset] = record.storage_id
            if not page.has_more:
                break


def replaced_since(instance: dg.DagsterInstance, inputs: Mapping[str, list[str]]) -> bool:
    """True when a partition named in ``inputs`` (read as a fallback) now holds a value that
    is not one."""
    for asset, partitions in inputs.items():
        latest = failure.latest_metadata(instance, dg.AssetKey(asset), partitions)
        if any(not failure.flag(meta, failure.FALLBACK_KEY) for meta in latest.values()):
            return True
    return False


def wanted_runs(instance: dg.DagsterInstance, state: State) -> dict[tuple[str, str], int]:
    """(job, partition) -> the storage id that asks for it, data runs first."""
    runs: dict[tuple[str, str], int] = {}

    def want(job: str, partition: str, storage_id: int) -> None:
        runs[(job, partition)] = max(storage_id, runs.get((job, partition), 0))

    for asset in DAILY_FALLBACKS:
        for partition, entry in sorted(state.pending.get(asset, {}).items()):
            if entry.fallback:
                want(jobs.data_job.name, partition, entry.storage_id)
    for asset in WEEKLY_READERS:
        for partition, entry in sorted(state.pending.get(asset, {}).items()):
            if entry.fallback or (entry.inputs and replaced_since(instance, entry.inputs)):
                want(jobs.weekly_chain_job.name, partition, entry.storage_id)
    return runs


def run_requests(instance: dg.DagsterInstance, state: State) -> Iterator[dg.RunRequest]:
    """At most ``MAX_RUNS_PER_TICK`` runs not yet requested for their storage id or a newer
    one (a run already asked for covers materializations before it, which a run in progress
    clears one by one); each is recorded in ``state.requested`` (entries of runs no longer
    wanted are dropped)."""
    wanted = wanted_runs(instance, state)
    state.requested = {
        key: sid
        for key, sid in state.requested.items()
        if tuple(key.split(":", 1)) in wanted  # the (job, partition) is still pending
    }
    fresh = [
        (run, sid) for run, sid in wanted.items() if state.requested.get(":".join(run), -1) < sid
    ]
    for (job, partition), storage_id in fresh[:MAX_RUNS_PER_TICK]:
        state.requested[f"{job}:{partition}"] = storage_id
        yield dg.RunRequest(
            run_key=f"{SENSOR_NAME}:{job}:{partition}:{storage_id}",
            job_name=job,
            partition_key=partition,
            tags={"tetra/refreshes_storage_id": str(storage_id)},
        )


@dg.sensor(
    name=SENSOR_NAME,
    jobs=[jobs.data_job, jobs.weekly_chain_job],
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reruns partitions whose latest value is a fallback (data, scenarios) and "
    "weeks that read a fallback since replaced, once per fallback materialization.",
)
def tetra_fallback_refresh(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    state = State.parse(context.cursor)
    read_new(context.instance, state)
    requests = list(run_requests(context.instance, state))
    return dg.SensorResult(run_requests=requests, cursor=state.dump())
