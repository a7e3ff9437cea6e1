"""What a location's commands work with: the instance, the loaded Definitions, the storage
owner bound in them and the location's runs; and a ``Request``, what one ``run`` materializes,
the same whichever path (daemon or this process) runs it."""

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import dagster as dg

from platform_core import cli, runstats
from platform_core.datastore import DataStore
from platform_core.location import Location

CLI_TAG = "platform/cli"  # on every run a command starts: which command


@dataclass(frozen=True)
class Request:
    """What a ``run`` materializes, the same whichever path runs it: per job of the location
    (the job that runs them here), its assets' partition keys; run config and tags."""

    jobs: Mapping[str, Mapping[dg.AssetKey, Sequence[str]]]
    run_config: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    title: str = ""

    @property
    def partitions(self) -> dict[dg.AssetKey, Sequence[str]]:
        """Every asset's partition keys, whichever job runs it."""
        return {asset: keys for assets in self.jobs.values() for asset, keys in assets.items()}


class Session:
    """What a command works with: the instance, the location's loaded Definitions and the
    storage owner bound in them (read through the Definitions, never a module constant)."""

    def __init__(self, location: Location) -> None:
        self.location = location

    @cached_property
    def instance(self) -> dg.DagsterInstance:
        return cli.instance()

    @cached_property
    def defs(self) -> dg.Definitions:
        return importlib.import_module(self.location.module).defs

    @cached_property
    def store(self) -> DataStore:
        # built on the command's instance: without one, build_resources makes a throw-away
        # in-memory instance (three SQLite schemas created and stamped, ~50 ms)
        resources = {"storage": self.defs.resources["storage"]}
        with dg.build_resources(resources, instance=self.instance) as built:
            return built.storage

    @cached_property
    def asset_keys(self) -> frozenset[dg.AssetKey]:
        return frozenset(self.defs.resolve_asset_graph().get_all_asset_keys())

    def belongs(self, run: dg.DagsterRun) -> bool:
        """Whether a run is this location's: one of its jobs, or an asset run (UI, backfill)
        of its assets."""
        return runstats.belongs(run, self.location.name, self.defs)

    def runs_of(self, key: str) -> list[dg.RunRecord]:
        """The location's runs of partition ``key``, newest first."""
        records = self.instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": key}))
        return [r for r in records if self.belongs(r.dagster_run)]

    def last_runs(self) -> dict[str, dg.RunRecord]:
        """The latest run of each partition among the location's runs."""
        latest: dict[str, dg.RunRecord] = {}
        for name in {job.name for job in self.defs.jobs or []} | {"__ASSET_JOB"}:
            for record in self.instance.get_run_records(dg.RunsFilter(job_name=name)):
                key = record.dagster_run.tags.get("dagster/partition")
                newer = key not in latest or record.create_timestamp > latest[key].create_timestamp
                if key and newer and self.belongs(record.dagster_run):
                    latest[key] = record
        return latest
