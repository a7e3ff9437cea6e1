"""The cardio code location: the only place its Definitions are built."""

import dagster as dg

from cardio_assets.assets import ecg, echo, report, study
from cardio_assets.checks import CHECKS
from cardio_assets.jobs import study_job
from cardio_assets.resources import STORAGE, CardioConfig
from cardio_assets.sensors import SENSORS
from platform_core.alerts import Notifier, notifier_from_env
from platform_core.executors import step_executor
from platform_core.settings import resource_from_env


def cardio_from_env() -> CardioConfig:
    """``CARDIO_MAX_INPUT_MB``, ``CARDIO_MEMORY_LIMIT_MB``, ``CARDIO_MODELS_DIR``."""
    return resource_from_env(
        CardioConfig,
        {
            "max_input_mb": "CARDIO_MAX_INPUT_MB",
            "memory_limit_mb": "CARDIO_MEMORY_LIMIT_MB",
            "models_dir": "CARDIO_MODELS_DIR",
        },
    )


def build_definitions(cardio: CardioConfig, notifier: Notifier) -> dg.Definitions:
    """The location's Definitions with the given settings and notifier (tests swap them)."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([study, ecg, echo, report]),
        asset_checks=CHECKS,
        jobs=[study_job],
        executor=step_executor(dg.in_process_executor),
        sensors=SENSORS,
        resources={"io_manager": STORAGE, "cardio": cardio, "notifier": notifier},
    )


defs = build_definitions(cardio_from_env(), notifier_from_env())
