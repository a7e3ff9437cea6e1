"""Failure actions per pipeline (an asset group), as the platform config file states them
(``locations.<name>.pipelines.<group>.failure_actions``), built from Dagster mechanisms.

Generic: a location passes its name, its groups and its own defaults; nothing here knows a
location.

- ``actions``: the group's actions, layered: the location's defaults, then the file, then
  the environment (a variable for the retry delay).
- ``retry_policy``: those actions as a ``dg.RetryPolicy`` for the group's assets, built when
  the Definitions are (``Location.configured``, ``location.replaced``).
- Fallback: a step that still fails on its last attempt keeps the last good value and says
  so: ``fallback_metadata`` on the materialization, ``fallback_check`` (a WARN check that
  fails for it), ``fallbacks_read`` (which inputs a downstream step read were fallbacks);
  ``latest_metadata`` reads the latest materialization of each partition in bounded batches.
- Partial recovery / continue on error: ``run_items`` runs independent pieces and collects
  their errors; ``ItemFailures.enforce`` fails past a threshold, else the completed pieces
  are kept and the failed listed (``failed_items`` metadata, ``FAILED_ITEMS_KEY``).
- Checkpoint recovery: ``Checkpoints`` stores each completed piece (parquet) so a retry or a
  re-execution from failure resumes without recomputing it.
"""

import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import pandas as pd

from platform_core import platform_config
from platform_core.io import atomic_write
from platform_core.platform_models import FailureActions

FALLBACK_KEY = "fallback"  # bool metadata on every materialization of a fallback-able asset
FALLBACK_FROM_KEY = "fallback_from"  # where the kept value came from (a partition, a cache)
FALLBACK_ERROR_KEY = "fallback_error"  # the failure that made the step fall back
FALLBACK_INPUTS_KEY = "fallback_inputs"  # downstream: input asset -> partitions read as fallback
FAILED_ITEMS_KEY = "failed_items"  # item -> error text of the pieces that failed
T = TypeVar("T")
__all__ = [
    "FAILED_ITEMS_KEY",
    "FALLBACK_ERROR_KEY",
    "FALLBACK_FROM_KEY",
    "FALLBACK_INPUTS_KEY",
    "FALLBACK_KEY",
    "Checkpoints",
    "ItemFailures",
    "actions",
    "failed_items_check",
    "fallback_check",
    "fallback_metadata",
    "fallbacks_read",
    "flag",
    "is_last_attempt",
    "last_good_partition",
    "latest_metadata",
    "retry_policy",
    "run_items",
]


def actions(
    location: str,
    group: str,
    defaults: FailureActions | None = None,
    delay_env: str | None = None,
) -> FailureActions:
    """The failure actions of ``group``: each key the platform config file sets over
    ``defaults`` (the location's, e.g. the seed's retry counts), then ``$delay_env`` (seconds)
    over the retry delay. Call it when Definitions are built, never at import."""
    stated = platform_config.load().pipeline(location, group).failure_actions
    base = defaults or FailureActions()
    resolved = base.model_copy(update={k: getattr(stated, k) for k in stated.model_fields_set})
    if delay_env and os.environ.get(delay_env):
        resolved = resolved.model_copy(update={"retry_delay_seconds": float(os.environ[delay_env])})
    return resolved


def retry_policy(resolved: FailureActions) -> dg.RetryPolicy | None:
    """``retry_count`` retries, the first after ``retry_delay_seconds`` (doubling when
    ``backoff`` is exponential, with jitter); None for no retries."""
    if resolved.retry_count == 0:
        return None
    exponential = resolved.backoff == "exponential"
    return dg.RetryPolicy(
        max_retries=resolved.retry_count,
        delay=resolved.retry_delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL if exponential else None,
        jitter=dg.Jitter.PLUS_MINUS if exponential else None,
    )


def is_last_attempt(context: dg.OpExecutionContext) -> bool:
    """True when a failure of this step would not be retried (its RetryPolicy is spent): the
    moment a fallback or partial recovery applies instead of another attempt."""
    policy = context.op_def.retry_policy
    return policy is None or context.retry_number >= policy.max_retries


def fallback_metadata(source: str | None, error: BaseException | None) -> dict[str, Any]:
    """Metadata of a materialization: ``fallback`` False for a fresh value; True with where
    the kept value came from and the error otherwise."""
    if source is None:
        return {FALLBACK_KEY: False}
    return {FALLBACK_KEY: True, FALLBACK_FROM_KEY: source, FALLBACK_ERROR_KEY: str(error)}


LATEST_BATCH = 500  # partitions per query of latest_metadata


def latest_metadata(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partitions: Iterable[str]
) -> dict[str, Mapping[str, Any]]:
    """Partition -> the metadata of its latest materialization, for those of ``partitions``
    that have one. Never-materialized partitions are dropped first (one query), then each
    batch of ``LATEST_BATCH`` is read newest first until every partition of the batch is
    found: a page per batch when each was materialized once, and never a page past the
    batch's own records (a 577-week history is ~6 queries, not every page of the asset)."""
    stored = instance.get_materialized_partitions(asset_key)
    wanted = [p for p in dict.fromkeys(partitions) if p in stored]
    found: dict[str, Mapping[str, Any]] = {}
    for start in range(0, len(wanted), LATEST_BATCH):
        batch = wanted[start : start + LATEST_BATCH]
        missing, cursor = set(batch), None
        while missing:
            page = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=batch),
                limit=len(batch),
                cursor=cursor,
            )
            for record in page.records:
                event = record.asset_materialization
                if event is not None and event.partition in missing:
                    found[event.partition] = event.metadata
                    missing.discard(event.partition)
            if not page.has_more:
                break
            cursor = page.cursor
    return found


def last_good_partition(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, before: str, lookback: int = 10
) -> str | None:
    """The latest stored partition of ``asset_key`` before ``before`` (keys that sort as
    time does) whose latest materialization is not a fallback, trying ``lookback`` of them:
    what a fallback keeps."""
    stored = instance.get_materialized_partitions(asset_key)
    earlier = sorted((k for k in stored if k < before), reverse=True)[:lookback]
    latest = latest_metadata(instance, asset_key, earlier) if earlier else {}
    return next((k for k in earlier if not flag(latest.get(k, {}), FALLBACK_KEY)), None)


def flag(metadata: Mapping[str, Any], key: str) -> Any:
    """The plain value of ``key`` in materialization metadata (None when absent)."""
    value = metadata.get(key)
    return getattr(value, "value", value)


def fallbacks_read(
    context: dg.AssetExecutionContext, inputs: Iterable[str]
) -> dict[str, list[str]]:
    """Input name -> the partitions this step read whose latest materialization was a
    fallback (only inputs that had one): downstream assets record it as metadata
    (``FALLBACK_INPUTS_KEY``), so a result built on a kept value says so."""
    read: dict[str, list[str]] = {}
    for name in inputs:
        keys = context.asset_partition_keys_for_input(name)
        asset_key = context.asset_key_for_input(name)
        latest = latest_metadata(context.instance, asset_key, keys)
        flagged = sorted(k for k, meta in latest.items() if flag(meta, FALLBACK_KEY))
        if flagged:
            read[name] = flagged
    return read


def _warn_check(
    asset: dg.AssetKey | str,
    partitions_def: dg.PartitionsDefinition | None,
    suffix: str,
    description: str,
    finding: Callable[[Mapping[str, Any]], Any],
    key: str,
) -> dg.AssetChecksDefinition:
    """A WARN check ``<asset>_<suffix>`` that fails for each partition of the run whose latest
    materialization's metadata gives a ``finding`` (listed under ``key``), and passes once a
    value without one replaced it."""
    asset_key = dg.AssetKey.from_coercible(asset)

    @dg.asset_check(
        asset=asset_key,
        name=f"{asset_key.to_python_identifier()}_{suffix}",
        partitions_def=partitions_def,
        description=description,
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        keys = context.partition_keys if partitions_def is not None else []
        latest = latest_metadata(context.instance, asset_key, keys) if keys else {}
        found = {k: finding(m) for k, m in sorted(latest.items())}
        found = {k: v for k, v in found.items() if v}
        return dg.AssetCheckResult(
            passed=not found,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={key: dg.MetadataValue.json(found)},
        )

    return _check


def fallback_check(
    asset: dg.AssetKey | str, partitions_def: dg.PartitionsDefinition | None
) -> dg.AssetChecksDefinition:
    """A WARN check ``<asset>_not_fallback``: fails while a partition of the run holds a
    fallback value (``fallback: true``, with where it came from and the error)."""

    def fell_back(metadata: Mapping[str, Any]) -> dict[str, str] | None:
        if not flag(metadata, FALLBACK_KEY):
            return None
        return {
            "from": str(flag(metadata, FALLBACK_FROM_KEY)),
            "error": str(flag(metadata, FALLBACK_ERROR_KEY)),
        }

    description = (
        "Fails (WARN) while the value is a fallback: the last good value kept after the "
        "computation or fetch failed on its last attempt."
    )
    return _warn_check(
        asset, partitions_def, "not_fallback", description, fell_back, "fallback_partitions"
    )


@dataclass
class ItemFailures:
    """The outcome of independent pieces of one step: the completed and the failed ones.
    ``total``: the items in all when not every completed one is listed (ECOD's chains:
    default ``done`` + ``failed``); ``noun`` names them in messages."""

    done: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # item -> error text
    total: int | None = None
    noun: str = "items"

    @property
    def count(self) -> int:
        return len(self.done) + len(self.failed) if self.total is None else self.total

    @property
    def fraction(self) -> float:
        return len(self.failed) / self.count if self.count else 0.0

    def summary(self) -> str:
        name, error = next(iter(self.failed.items()))
        return (
            f"{len(self.failed)} of {self.count} {self.noun} failed ({self.fraction:.0%}); "
            f"first: {name}: {error}"
        )

    def enforce(
        self,
        continue_on_error: bool,
        max_failed_fraction: float = 1.0,
        key: str = FAILED_ITEMS_KEY,
    ) -> str | None:
        """Raise ``dg.Failure`` (the failed items under ``key``) unless errors are tolerated,
        at most ``max_failed_fraction`` of the items failed and at least one completed (a
        step none of whose pieces completed has nothing to keep). Returns the summary of a
        tolerated failure (for the step's log), None without failures. ECOD's
        ``continue_on_error`` / ``max_failed_fraction``; Tetra's ``partial_recovery`` (any
        fraction)."""
        if not self.failed:
            return None
        completed = self.count > len(self.failed)
        if not (continue_on_error and completed and self.fraction <= max_failed_fraction):
            raise dg.Failure(description=self.summary(), metadata=self.metadata(key))
        return self.summary()

    def metadata(self, key: str = FAILED_ITEMS_KEY, limit: int = 50) -> dict[str, Any]:
        """``key``: the first ``limit`` failed items with their errors (``{}`` when none)."""
        listed = dict(list(self.failed.items())[:limit])
        return {key: dg.MetadataValue.json(listed)}


def run_items(
    items: Mapping[str, Callable[[], T]], tolerate: type[BaseException] = Exception
) -> ItemFailures:
    """Run each item's function; ``tolerate``d errors are recorded (not raised) so one
    failing piece does not lose the others. ``dg.Failure`` (bad input) always propagates."""
    outcome = ItemFailures()
    for name, compute in items.items():
        try:
            outcome.done[name] = compute()
        except dg.Failure:
            raise
        except tolerate as exc:
            outcome.failed[name] = f"{type(exc).__name__}: {exc}"
    return outcome


def failed_items_check(
    asset: dg.AssetKey | str,
    partitions_def: dg.PartitionsDefinition | None,
    key: str = FAILED_ITEMS_KEY,
) -> dg.AssetChecksDefinition:
    """A WARN check ``<asset>_complete``: fails while a partition of the run lists failed
    items under ``key`` (kept partial), naming them and their errors."""
    description = (
        "Fails (WARN) when pieces of the value failed and were left out (partial recovery): "
        "the metadata lists them with their errors."
    )
    return _warn_check(asset, partitions_def, "complete", description, lambda m: flag(m, key), key)


@dataclass(frozen=True)
class Checkpoints:
    """Completed pieces of one step, as parquet files under ``folder/<fingerprint>/``: a
    retry or a re-execution from failure with the same inputs (``fingerprint``) reuses them;
    other inputs never see them. ``clear`` once the step's output is stored. ``reused``
    names the pieces this instance read back instead of computing."""

    folder: Path
    fingerprint: str
    reused: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.folder / self.fingerprint

    def piece(self, name: str, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """``name``'s stored frame, else ``compute()``'s, stored atomically before return."""
        if not name or Path(name).name != name or name.startswith("."):
            raise ValueError(f"checkpoint piece name {name!r} is not a plain file name")
        file = self.path / f"{name}.parquet"
        if file.exists():
            self.reused.append(name)
            return pd.read_parquet(file)
        frame = compute()
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(file, lambda tmp: frame.to_parquet(tmp))
        return frame

    def stored(self) -> list[str]:
        """Names of the pieces stored so far for this fingerprint."""
        return [p.stem for p in sorted(self.path.glob("*.parquet"))]

    def clear(self) -> None:
        """Remove the step's pieces, every fingerprint's (older inputs' pieces are stale)."""
        if self.folder.is_dir():
            shutil.rmtree(self.folder)
