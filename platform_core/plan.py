"""What a run would (re)compute, and why: the plan behind ``--dry-run`` and skip-if-up-to-date.

An asset partition needs work when it was never materialized, when its latest materialization
was made by a different ``code_version``, when a parent partition it reads was materialized
after it, or when a parent partition it reads is itself in the plan (so staleness flows
downstream within one run). ``force`` puts everything in the plan.
"""

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dagster as dg

from platform_core.dagster_internals import AssetGraph


@dataclass(frozen=True)
class PlannedStep:
    asset: str
    partition: str
    reason: str


# Up to this many parent partitions that could make a child stale are checked by mapping each
# of them downstream (once per parent partition); more, and the child partition is mapped
# upstream as a whole. Mapping every child upstream walked the calendar thousands of times:
# a no-op re-plan of a 5-year Tetra backfill took 58 s (now 0.24 s).
FEW_CANDIDATES = 64


def _storage_ids(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, int]:
    return instance.get_latest_storage_id_by_partition(
        key, dg.DagsterEventType.ASSET_MATERIALIZATION
    )


class _Upstream:
    """Which partitions of ``parent`` each partition of ``child`` reads, asked only about the
    parent partitions that could matter (recomputed, or materialized after the child)."""

    def __init__(
        self,
        graph: AssetGraph,
        parent: dg.AssetKey,
        child: dg.AssetKey,
        storage_ids: Mapping[str, int],
        planned: set[str],
    ) -> None:
        self._graph, self._parent, self._child = graph, parent, child
        self.name = parent.to_user_string()
        self._planned = sorted(planned)
        newest_last = sorted(storage_ids.items(), key=lambda item: item[1])
        self._keys = [key for key, _ in newest_last]
        self._ids = [storage_id for _, storage_id in newest_last]
        self._children: dict[str, frozenset[str]] = {}
        self._last: tuple[str, frozenset[str]] | None = None  # (child partition, its upstream)

    def planned(self, partition: str) -> list[str]:
        """The recomputed parent partitions that ``partition`` reads."""
        return self._read(partition, self._planned)

    def newer(self, partition: str, storage_id: int) -> list[str]:
        """The parent partitions that ``partition`` reads, materialized after ``storage_id``."""
        return self._read(partition, self._keys[bisect.bisect_right(self._ids, storage_id) :])

    def _read(self, partition: str, candidates: list[str]) -> list[str]:
        if len(candidates) > FEW_CANDIDATES:
            upstream = self._upstream_of(partition)
            return [key for key in candidates if key in upstream]
        return [key for key in candidates if partition in self._children_of(key)]

    def _upstream_of(self, partition: str) -> frozenset[str]:
        """The parent partitions ``partition`` reads, mapped once per child partition
        (``planned`` and ``newer`` ask about the same partition in turn)."""
        if self._last is None or self._last[0] != partition:
            upstream = self._graph.get_parent_partition_keys_for_child(
                partition_key=partition, parent_asset_key=self._parent, child_asset_key=self._child
            ).partitions_subset.get_partition_keys()
            self._last = (partition, frozenset(upstream))
        return self._last[1]

    def _children_of(self, key: str) -> frozenset[str]:
        if key not in self._children:
            self._children[key] = frozenset(
                self._graph.get_child_partition_keys_of_parent(key, self._parent, self._child)
            )
        return self._children[key]


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
        upstream = [
            _Upstream(
                asset_graph,
                parent,
                key,
                stored.get(parent) or _storage_ids(instance, parent),
                planned.get(parent, set()),
            )
            for parent in sorted(node.parent_keys)
        ]
        for partition in partitions_by_asset[key]:
            reason = _reason(
                partition,
                force,
                stored[key],
                code_versions.get(key),
                node.code_version,
                upstream,
            )
            if reason:
                planned[key].add(partition)
                steps.append(PlannedStep(key.to_user_string(), partition, reason))
    return steps


def _reason(
    partition: str,
    force: bool,
    own_ids: dict[str, int],
    stored_code_version: str | None,
    code_version: str | None,
    upstream: list[_Upstream],
) -> str | None:
    if force:
        return "forced (--force)"
    own = own_ids.get(partition)
    if own is None:
        return "never materialized"
    if code_version and stored_code_version and stored_code_version != code_version:
        return f"code version changed ({stored_code_version} -> {code_version})"
    for parent in upstream:
        if in_plan := parent.planned(partition):
            return f"upstream {parent.name} {min(in_plan)} is recomputed in this run"
        if newer := parent.newer(partition, own):
            return f"upstream {parent.name} {min(newer)} changed after it"
    return None
