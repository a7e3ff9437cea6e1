"""What a run would (re)compute, and why: the plan behind ``--dry-run`` and skip-if-up-to-date.

An asset partition needs work when it was never materialized, when its latest materialization
was made by a different ``code_version``, when a parent partition it reads was materialized
after it, or when a parent partition it reads is itself in the plan (so staleness flows
downstream within one run). ``force`` puts everything in the plan.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.events import DagsterEventType


@dataclass(frozen=True)
class PlannedStep:
    asset: str
    partition: str
    reason: str


def _storage_ids(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, int]:
    return instance.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION)


def plan(
    instance: dg.DagsterInstance,
    asset_graph: AssetGraph,
    partitions_by_asset: Mapping[dg.AssetKey, Sequence[str]],
    force: bool = False,
) -> list[PlannedStep]:
    """Plan for the given asset -> partition keys, in topological order of the graph."""
    order = [k for k in asset_graph.toposorted_asset_keys if k in partitions_by_asset]
    code_versions = instance.get_latest_materialization_code_versions(order)
    stored = {key: _storage_ids(instance, key) for key in order}
    planned: dict[dg.AssetKey, set[str]] = {key: set() for key in order}
    steps: list[PlannedStep] = []
    for key in order:
        node = asset_graph.get(key)
        parents = sorted(node.parent_keys)
        parent_ids = {p: stored.get(p) or _storage_ids(instance, p) for p in parents}
        for partition in partitions_by_asset[key]:
            reason = _reason(
                asset_graph,
                key,
                partition,
                force,
                stored[key],
                code_versions.get(key),
                node.code_version,
                parents,
                parent_ids,
                planned,
            )
            if reason:
                planned[key].add(partition)
                steps.append(PlannedStep(key.to_user_string(), partition, reason))
    return steps


def _reason(
    asset_graph: AssetGraph,
    key: dg.AssetKey,
    partition: str,
    force: bool,
    own_ids: dict[str, int],
    stored_code_version: str | None,
    code_version: str | None,
    parents: list[dg.AssetKey],
    parent_ids: dict[dg.AssetKey, dict[str, int]],
    planned: dict[dg.AssetKey, set[str]],
) -> str | None:
    if force:
        return "forced (--force)"
    own = own_ids.get(partition)
    if own is None:
        return "never materialized"
    if code_version and stored_code_version and stored_code_version != code_version:
        return f"code version changed ({stored_code_version} -> {code_version})"
    for parent in parents:
        upstream = asset_graph.get_parent_partition_keys_for_child(
            partition_key=partition, parent_asset_key=parent, child_asset_key=key
        ).partitions_subset.get_partition_keys()
        in_plan = planned.get(parent, set()).intersection(upstream)
        if in_plan:
            return f"upstream {parent.to_user_string()} {min(in_plan)} is recomputed in this run"
        newer = [p for p in upstream if parent_ids[parent].get(p, -1) > own]
        if newer:
            return f"upstream {parent.to_user_string()} {min(newer)} changed after it"
    return None
