"""The seed's modes as asset jobs over different selections of the batch graph."""

import os

import dagster as dg

from ecod_assets.partitions import BATCH_GROUP
from ecod_assets.resources import MODE_TAG
from platform_core.executors import step_executor

HHSEARCH_STAGES = ("hhsearch_profiles", "hhsearch_hits", "hhsearch_registration")
ANALYSIS_STAGES = ("domain_summary", "domain_partition", "classification")
# The seed's total_timeout: run monitoring stops runs launched by the daemon (inbox sensor, UI)
# after this many seconds.
TOTAL_TIMEOUT_SECONDS = int(os.environ.get("ECOD_TOTAL_TIMEOUT", "86400"))
# Steps run one after another in the run's process: the tool steps hold the one-slot
# ecod_tools pool and parallelise inside (workers), so a process per step would only add
# start-up time (~3 s each) to runs launched by the daemon (inbox sensor, UI). With a Celery
# broker set (platform_core.executors) each step goes to a worker instead.
EXECUTOR = step_executor(dg.in_process_executor)

JOB_BY_MODE = {
    "full": dg.define_asset_job(
        "ecod_full",
        selection=dg.AssetSelection.groups(BATCH_GROUP),
        executor_def=EXECUTOR,
        tags={MODE_TAG: "full", "dagster/max_runtime": str(TOTAL_TIMEOUT_SECONDS)},
        description="FULL: chains, BLAST, HHsearch (chains below the coverage threshold), "
        "summary, partition, classification.",
    ),
    "blast-only": dg.define_asset_job(
        "ecod_blast_only",
        selection=dg.AssetSelection.groups(BATCH_GROUP)
        - dg.AssetSelection.assets(*HHSEARCH_STAGES),
        executor_def=EXECUTOR,
        tags={MODE_TAG: "blast-only", "dagster/max_runtime": str(TOTAL_TIMEOUT_SECONDS)},
        description="BLAST_ONLY: no HH-suite; the summary uses BLAST evidence only.",
    ),
    "analysis-only": dg.define_asset_job(
        "ecod_analysis_only",
        selection=dg.AssetSelection.assets(*ANALYSIS_STAGES),
        executor_def=EXECUTOR,
        tags={MODE_TAG: "analysis-only", "dagster/max_runtime": str(TOTAL_TIMEOUT_SECONDS)},
        description="ANALYSIS_ONLY: summary, partition and classification from the evidence "
        "already materialized (fails clearly if it is missing).",
    ),
}
ALL_JOBS = list(JOB_BY_MODE.values())
