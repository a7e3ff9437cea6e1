"""What every batch stage shares: checkpoint reuse, live progress, failure thresholds, UI
metadata."""

import time
from collections.abc import Callable
from typing import Any

import dagster as dg
import pandas as pd

from ecod_assets.progress import StageProgress
from ecod_assets.resources import OrchestrationConfig
from ecod_assets.science.search import Progress, StageResult
from ecod_assets.science.tools import Limits
from platform_core.checkpoint import FINGERPRINT_KEY, fingerprint, stored_fingerprint
from platform_core.datastore import DataStore
from platform_core.failure import ItemFailures
from platform_core.io import stored_partition

ERROR_COLUMN = "error"


def stored_result(
    context: dg.AssetExecutionContext,
    settings: OrchestrationConfig,
    asset_key: dg.AssetKey,
    key: str,
) -> pd.DataFrame | None:
    """The stored value of this asset partition if checkpointing is on and it was computed
    from the same fingerprint (code version, parameters, inputs); else None."""
    if not settings.checkpoint_enabled:
        return None
    if stored_fingerprint(context.instance, asset_key, context.partition_key) != key:
        return None
    stored = stored_partition(context, asset_key, context.partition_key)
    if stored is not None:
        context.log.info(
            f"{asset_key.to_user_string()}: inputs, parameters and code unchanged: "
            "reusing the stored result"
        )
    return stored


def in_scratch(
    storage: DataStore,
    settings: OrchestrationConfig,
    name: str,
    search: Callable[[Limits], StageResult],
) -> StageResult:
    """``search`` with the location's tool limits, its files in the storage owner's scratch
    folder ``name`` (removed afterwards)."""
    with storage.scratch(name) as work:
        return search(settings.limits(work))


def run_stage(
    context: dg.AssetExecutionContext,
    settings: OrchestrationConfig,
    code_version: str,
    inputs: list[Any],
    items: int,
    compute: Callable[[Progress], StageResult],
    metadata: dict[str, Any] | None = None,
    searches_per_item: int = 1,
) -> dg.Output[pd.DataFrame]:
    """Run ``compute`` unless a stored result has the same fingerprint; see stage_output.
    ``compute`` tells its progress (``items`` x ``searches_per_item`` in all) as it goes."""
    key = fingerprint(code_version, *inputs)
    stored = stored_result(context, settings, context.asset_key, key)
    if stored is not None:
        return reused_output(stored, key, items, metadata)
    started = time.perf_counter()
    progress = StageProgress(
        context.log, context.asset_key.to_user_string(), items * searches_per_item
    )
    result = compute(progress)
    progress.finish()
    return stage_output(
        context, settings, result, key, items, time.perf_counter() - started, metadata
    )


def stage_output(
    context: dg.AssetExecutionContext,
    settings: OrchestrationConfig,
    result: StageResult,
    key: str,
    items: int,
    wall: float,
    metadata: dict[str, Any] | None = None,
    output_name: str = "result",
) -> dg.Output[pd.DataFrame]:
    """The stage's table with failed chains as rows carrying an ``error``; raises Failure
    when errors are not tolerated, exceed ``max_failed_fraction`` of ``items`` or every chain
    failed (``failure.ItemFailures``, the platform's continue-on-error rule)."""
    failed = result.failures
    chains: dict[str, str] = {}
    for i, (chain, error) in enumerate(zip(failed.chain_id, failed.error, strict=True)):
        chains[str(chain) if str(chain) not in chains else f"{chain}#{i}"] = str(error)
    outcome = ItemFailures(failed=chains, total=items, noun="chains")
    tolerated = outcome.enforce(
        settings.continue_on_error, settings.max_failed_fraction, key="failed_chains"
    )
    if tolerated:
        context.log.warning(tolerated)
    table = pd.concat([result.table, failed], ignore_index=True) if len(failed) else result.table
    if ERROR_COLUMN not in table:
        table[ERROR_COLUMN] = pd.Series(dtype=object)
    return _output(table, key, items, result.cpu_seconds, wall, False, metadata, output_name)


def reused_output(
    stored: pd.DataFrame,
    key: str,
    items: int,
    metadata: dict[str, Any] | None = None,
    output_name: str = "result",
) -> dg.Output[pd.DataFrame]:
    return _output(stored, key, items, 0.0, 0.0, True, metadata, output_name)


def _output(
    table: pd.DataFrame,
    key: str,
    items: int,
    cpu: float,
    wall: float,
    reused: bool,
    extra: dict[str, Any] | None,
    output_name: str,
) -> dg.Output[pd.DataFrame]:
    failed = failed_chains(table)
    return dg.Output(
        table,
        output_name=output_name,
        data_version=dg.DataVersion(key),
        metadata={
            FINGERPRINT_KEY: key,
            "items_total": items,
            "items_processed": items - len(failed),
            "items_failed": len(failed),
            "reused": reused,
            "tool_cpu_seconds": round(cpu, 2),
            "stage_wall_seconds": round(wall, 2),
            **(extra or {}),
        },
    )


def failed_chains(table: pd.DataFrame) -> pd.DataFrame:
    if ERROR_COLUMN not in table:
        return table.iloc[:0]
    return table[table[ERROR_COLUMN].notna()]


def succeeded(table: pd.DataFrame) -> pd.DataFrame:
    """The result rows of a stage table (failed-chain rows dropped)."""
    if ERROR_COLUMN not in table:
        return table
    return table[table[ERROR_COLUMN].isna()].drop(columns=ERROR_COLUMN)
