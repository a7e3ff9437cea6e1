"""The location kit: one declarative spec per code location builds its Definitions (and, in
``platform_core.commands``, its CLI's common verbs).

What every location has is built here once: the storage owner and the IO manager on it, the
notifier, the location's settings resources read from the environment, its inbox sensor and
its alert sensors, and the executor, set once at the root. What is the location's own (assets,
checks, jobs, schedules) loads from its ``defs/`` folder.
"""

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import BaseModel

from platform_core import platform_config
from platform_core.alerts import alert_definitions, notifier_from_env
from platform_core.dagster_internals import AssetJob
from platform_core.datastore import DataStore
from platform_core.executors import step_executor
from platform_core.health import health_definitions
from platform_core.inbox import Inbox, build_inbox_sensor
from platform_core.io import AssetStorageIOManager, FrameFormat
from platform_core.runstats import pipelines
from platform_core.settings import resource_from_layers


@dataclass(frozen=True)
class Setting:
    """A resource of the location's own settings: its class and, per field, the environment
    variable that sets it (read as a ``dg.EnvVar``)."""

    resource: type[dg.ConfigurableResource]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Location:
    """A code location, declared once.

    - ``name``: the code location, its folder under the data root, its alert sensors' prefix,
      its package ``<name>_assets`` (``definitions.py`` holds ``defs``; ``defs/`` the assets,
      checks, jobs and schedules).
    - ``partitions``: what a partition of the location is (a batch, a plate, a date ...; None:
      one partitions definition per job, as omics workflows); ``item`` the word for one, and
      ``--<item>`` the CLI option that names one.
    - ``inbox``: the inbox (or how to make it from the loaded ``defs/`` folder) and the job
      (by name) each item runs, all jobs when empty; None: no inbox.
    - ``settings``: resource key -> the location's settings resources.
    - ``resources``: further resources with fixed values (tool paths).
    - ``frame_format``: how the IO manager stores tables.
    - ``configured``: the loaded ``defs/`` folder as the platform config shapes it, applied
      when Definitions are built, so sensor, UI and CLI runs alike get it (Tetra: its
      pipelines' retry policies and failure actions, its schedules' crons; ``replaced``).
    - ``pipeline_keys``: the keys of ``pipelines.<group>`` in its platform config section that
      the location acts on beyond every location's (``failure_actions.retry_count`` ...);
      the others are refused, so nothing set there is silently ignored.
    - ``options``: a model of the location's own keys in its platform config section that are
      not a settings resource's (validated with them; the location reads them itself).
    - ``data_defs``: what the location builds when its Definitions are built, from its users'
      data files (imaging pipeline YAMLs) or its platform config (ECOD's jobs), merged
      with ``defs/`` before the inbox and its jobs are made.

    A run's steps run one after another in the run's process (every location's steps spread
    their own work over the cores: wells, chains, runs side by side), or on Celery workers
    when a broker is set (platform_core.executors).
    """

    name: str
    partitions: dg.PartitionsDefinition | None
    item: str
    inbox: Inbox | Callable[[dg.Definitions], Inbox] | None = None
    inbox_job: str = ""
    settings: Mapping[str, Setting] = field(default_factory=dict)
    resources: Mapping[str, Any] = field(default_factory=dict)
    frame_format: FrameFormat = "parquet"
    data_defs: Callable[[], dg.Definitions] | None = None
    options: type[BaseModel] | None = None
    configured: Callable[[dg.Definitions], dg.Definitions] | None = None
    pipeline_keys: tuple[str, ...] = ()

    @property
    def package(self) -> str:
        return f"{self.name}_assets"

    @property
    def flag(self) -> str:
        """The CLI option that names a partition."""
        return f"--{self.item}"

    @property
    def module(self) -> str:
        """The module whose ``defs`` the CLI, workers and code servers load."""
        return f"{self.package}.definitions"

    def store(self) -> DataStore:
        """The location's storage owner for use outside a run (scripts, benchmarks): its root
        is ``$PLATFORM_DATA_ROOT`` when used. Definitions bind ``DataStore.from_env``."""
        return DataStore(location=self.name)

    def definitions(self, **overrides: Any) -> dg.Definitions:
        """The location's Definitions: what its ``defs/`` folder declares, with the shared
        sensors, resources and executor. ``overrides`` replace resources by key (tests swap
        the notifier or a provider)."""
        loaded = self.load_defs_folder()
        if self.configured is not None:
            loaded = self.configured(loaded)
        if self.data_defs is not None:
            loaded = dg.Definitions.merge(loaded, self.data_defs())
        cfg = platform_config.load()
        self.check_setting_names()
        models = [s.resource for s in self.settings.values()] + (
            [self.options] if self.options else []
        )
        groups = pipelines(loaded)
        platform_config.validate_location(cfg, self.name, models, groups, self.pipeline_keys)
        section = cfg.section(self.name)
        store = overrides.get("storage") or DataStore.from_env(self.name)
        resources: dict[str, Any] = {
            "storage": store,
            "io_manager": AssetStorageIOManager(store=store, frame_format=self.frame_format),
            "notifier": notifier_from_env(store, cfg),
            **{
                key: resource_from_layers(s.resource, s.env, section)
                for key, s in self.settings.items()
            },
            **self.resources,
        }
        resources |= overrides
        # what the alert and health sensors read runs and the asset graph from: the loaded
        # assets with their resources, so the graph resolves (sensors get no resources)
        whole = dg.Definitions.merge(loaded, dg.Definitions(resources=resources))
        return dg.Definitions.merge(
            loaded,
            alert_definitions(self.name, whole, cfg),
            health_definitions(self.name, whole, cfg),
            dg.Definitions(
                sensors=self.inbox_sensors(loaded),
                executor=step_executor(dg.in_process_executor),
                resources=resources,
            ),
        )

    def check_setting_names(self) -> None:
        """The settings resources' fields are the flat keys of the location's section of the
        platform config: a name used by two resources would be ambiguous there."""
        seen: set[str] = set()
        for key, setting in self.settings.items():
            for name in setting.resource.model_fields:
                if name in seen:
                    raise dg.DagsterInvalidDefinitionError(
                        f"{self.name}: setting {name!r} of {key!r} is also another resource's"
                    )
                seen.add(name)

    def load_defs_folder(self) -> dg.Definitions:
        """What ``<package>/defs/`` declares. A folder of components (YAML) loads through dg's
        component tree; a Python package of modules is collected module by module, which
        skips the component machinery's per-process cost (~0.1-0.2 s: its plugin registry
        and catalogue, paid again by every worker of a backfill)."""
        package = importlib.import_module(self.package)
        folder = Path(package.__file__).parent / "defs"
        if not (folder / "__init__.py").exists():  # component folders (omics)
            return dg.load_from_defs_folder(path_within_project=folder.parent)
        components = sorted(folder.rglob("defs.yaml"))
        if components:  # the module loader would skip it; dg's tree would not
            raise dg.DagsterInvalidDefinitionError(
                f"{components[0]}: a component in the Python package {self.package}.defs; "
                "remove defs/__init__.py to load defs/ as a component folder"
            )
        return dg.load_definitions_from_package_module(  # preview: pinned in test_definitions
            importlib.import_module(f"{self.package}.defs")
        )

    def inbox_sensors(self, loaded: dg.Definitions) -> list[dg.SensorDefinition]:
        if self.inbox is None:
            return []
        inbox = self.inbox if isinstance(self.inbox, Inbox) else self.inbox(loaded)
        dynamic = isinstance(self.partitions, dg.DynamicPartitionsDefinition)
        partitions = self.partitions if dynamic else None
        return [build_inbox_sensor(inbox, self.name, self.inbox_jobs(loaded), partitions)]  # type: ignore[arg-type]

    def inbox_jobs(self, loaded: dg.Definitions) -> Sequence[AssetJob]:
        """The job each inbox item runs (``inbox_job``), or every job (an item names its own)."""
        jobs = [j for j in loaded.jobs or [] if not self.inbox_job or j.name == self.inbox_job]
        if not jobs:
            raise ValueError(f"{self.name}: no job {self.inbox_job!r} for the inbox")
        return jobs


def group_assets(defs: dg.Definitions, groups: Iterable[str]) -> list[dg.AssetKey]:
    """The assets of ``groups`` in dependency order, as the definitions declare them."""
    graph, wanted = defs.resolve_asset_graph(), set(groups)
    return [k for k in graph.toposorted_asset_keys if graph.get(k).group_name in wanted]


def replaced(
    defs: dg.Definitions,
    assets: Sequence[dg.AssetsDefinition] = (),
    schedules: Sequence[dg.ScheduleDefinition] = (),
) -> dg.Definitions:
    """``defs`` with each asset (by key) and schedule (by name) of the same as one given
    replaced by it: a location's modules declare them at import with defaults, and
    ``Location.configured`` rebuilds them from the platform config."""
    keys, names = {k for a in assets for k in a.keys}, {s.name for s in schedules}
    kept = [
        a
        for a in defs.assets or []
        if not (isinstance(a, dg.AssetsDefinition) and set(a.keys) & keys)
    ]
    kept_schedules = [s for s in defs.schedules or [] if getattr(s, "name", None) not in names]
    return dg.Definitions(
        assets=[*kept, *assets],
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=[*kept_schedules, *schedules],
        sensors=defs.sensors,
        resources=defs.resources,
        executor=defs.executor,
        loggers=defs.loggers,
        metadata=defs.metadata,
    )
