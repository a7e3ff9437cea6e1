"""The ECOD code location, declared once (platform_core.location): a partition per batch FASTA,
registered from the CLI or the inbox, classified against the location's release."""

import os

import dagster as dg
from pydantic import ValidationError

from ecod_assets.defs.jobs import mode_jobs
from ecod_assets.inputs import FASTA_SUFFIXES, BatchExistsError, register_dropped_batch
from ecod_assets.partitions import ecod_batches
from ecod_assets.resources import (
    TOTAL_TIMEOUT_ENV,
    EcodTools,
    OrchestrationConfig,
    ReferenceRelease,
    RunLimits,
)
from ecod_assets.science.fasta import FastaError
from platform_core import platform_config
from platform_core.inbox import Inbox
from platform_core.keys import InvalidKeyError
from platform_core.location import Location, Setting


def run_limits() -> RunLimits:
    """The location's ``RunLimits`` now: defaults, then its platform config section, then the
    environment (``ECOD_TOTAL_TIMEOUT``); a bad value names the file and line, or the
    variable."""
    cfg = platform_config.load()
    values = {k: v for k, v in cfg.section(LOCATION.name).items() if k in RunLimits.model_fields}
    source = cfg.where("locations", LOCATION.name, "total_timeout_seconds")
    if os.environ.get(TOTAL_TIMEOUT_ENV):
        values["total_timeout_seconds"] = os.environ[TOTAL_TIMEOUT_ENV]
        source = f"${TOTAL_TIMEOUT_ENV}"
    try:
        return RunLimits.model_validate(values)
    except ValidationError as error:
        reason = error.errors()[0]["msg"]
        raise platform_config.ConfigError(
            f"{source}: locations.{LOCATION.name}.total_timeout_seconds: {reason}"
        ) from None


def configured_jobs() -> dg.Definitions:
    """The mode jobs with the total timeout configured when the location's Definitions are
    built, not at import."""
    return dg.Definitions(jobs=mode_jobs(run_limits().total_timeout_seconds))


# A run's steps one after another in its process (the default executor): the tool steps hold
# the one-slot ecod_tools pool and parallelise inside (workers), so a process per step would
# only add start-up time (~3 s each); with a Celery broker each step goes to a worker instead.
LOCATION = Location(
    "ecod",
    ecod_batches,
    item="batch",
    inbox=Inbox(
        "ecod_inbox_sensor",
        register_dropped_batch,
        (FastaError, InvalidKeyError, BatchExistsError, OSError),
        "file",
        suffixes=FASTA_SUFFIXES,
        after="move",
        description="Registers a batch partition for each complete FASTA in <data root>/ecod/"
        "inbox (unchanged across two ticks, or with a <name>.complete marker beside it) and "
        "requests its FULL run, once per content; the run builds the location's reference "
        "library first if no run has. Processed files move to inbox/processed/; invalid ones "
        "to inbox/rejected/ with a .error.txt saying why.",
    ),
    inbox_job="ecod_full",
    settings={
        "orchestration": Setting(
            OrchestrationConfig,
            {
                "workers": "ECOD_WORKERS",
                "stage_timeout": "ECOD_STAGE_TIMEOUT",
                "tool_retries": "ECOD_TOOL_RETRIES",
            },
        ),
        "release": Setting(
            ReferenceRelease,
            {"domains_path": "ECOD_RELEASE_DOMAINS", "fasta_path": "ECOD_RELEASE_FASTA"},
        ),
    },
    resources={"ecod_tools": EcodTools()},
    options=RunLimits,
    data_defs=configured_jobs,
)
