"""The Tetra code location: the only place its Definitions are built."""

from __future__ import annotations

import dagster as dg

from platform_core.alerts import Notifier, notifier_from_env
from platform_core.executors import step_executor
from platform_core.settings import resource_from_env
from tetra_assets.assets import assessment, data, metrics, scenarios
from tetra_assets.checks import market_data_quality
from tetra_assets.jobs import ALL_JOBS
from tetra_assets.resources import STORAGE, MarketDataProvider
from tetra_assets.schedules import SCHEDULES
from tetra_assets.sensors import SENSORS


def provider_from_env() -> MarketDataProvider:
    """``TETRA_PROVIDER`` (bundled | csv | synthetic), ``TETRA_CSV_DIR``, ``TETRA_SYMBOLS``,
    ``TETRA_SYNTHETIC_COUNT``, read at run time."""
    return resource_from_env(
        MarketDataProvider,
        {
            "kind": "TETRA_PROVIDER",
            "csv_dir": "TETRA_CSV_DIR",
            "symbols": "TETRA_SYMBOLS",
            "synthetic_count": "TETRA_SYNTHETIC_COUNT",
        },
    )


def build_definitions(provider: MarketDataProvider, notifier: Notifier) -> dg.Definitions:
    """The location's Definitions with the given provider and notifier (tests swap them)."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([data, scenarios, metrics, assessment]),
        asset_checks=[market_data_quality],
        jobs=ALL_JOBS,
        # a run's steps one after another in its process: a step is 0.1-2 s of work, and a
        # process per step (multiprocess executor) added ~5 s of imports to each; the cores go
        # to runs side by side instead (the run queue's limit, a backfill's runs)
        executor=step_executor(dg.in_process_executor),
        schedules=SCHEDULES,
        sensors=SENSORS,
        resources={"io_manager": STORAGE, "provider": provider, "notifier": notifier},
    )


defs = build_definitions(provider_from_env(), notifier_from_env())
