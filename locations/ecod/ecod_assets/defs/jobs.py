"""The seed's modes as asset jobs over different selections of the batch graph; each sets the
mode in its run config (``domain_summary``'s ``mode``), so a run of the job, from the inbox
sensor, the UI or a CLI, carries it the same way. The jobs are built with the location's
Definitions (``mode_jobs``), so their total timeout is the one configured then."""

import dagster as dg

from ecod_assets.partitions import BATCH_GROUP
from ecod_assets.resources import MODES, Mode
from platform_core.dagster_internals import AssetJob

PROFILE_STAGES = (
    "hhsearch_profiles",
    "hhsearch_hits",
    "hhsearch_registration",
    "hmmscan_hits",
    "remainder_hits",
)
ANALYSIS_STAGES = ("domain_summary", "domain_partition", "classification")
MAX_RUNTIME_TAG = "dagster/max_runtime"  # enforced by the instance's run monitoring


def mode_config(mode: Mode) -> dict:
    """The run config that selects ``mode`` (also what the CLI submits with a backfill)."""
    return {"ops": {"domain_summary": {"config": {"mode": mode}}}}


BATCH = dg.AssetSelection.groups(BATCH_GROUP)
SELECTIONS: dict[Mode, dg.AssetSelection] = {
    "full": BATCH,
    "blast-only": BATCH - dg.AssetSelection.assets(*PROFILE_STAGES),
    "analysis-only": dg.AssetSelection.assets(*ANALYSIS_STAGES),
}
JOB_BY_MODE: dict[Mode, str] = {
    "full": "ecod_full",
    "blast-only": "ecod_blast_only",
    "analysis-only": "ecod_analysis_only",
}

DESCRIPTIONS: dict[Mode, str] = {
    "full": "FULL: chains, BLAST, profile evidence for the chains below the coverage threshold "
    "(HHsearch, hmmscan, then both again on what the first partition left uncovered), "
    "summary, partition, classification.",
    "blast-only": "BLAST_ONLY: no profile search (HH-suite, HMMER); the summary uses BLAST "
    "evidence only.",
    "analysis-only": "ANALYSIS_ONLY: summary, partition and classification from the evidence "
    "already materialized (fails clearly if it is missing).",
}


def mode_jobs(total_timeout_seconds: int | None) -> list[AssetJob]:
    """One job per mode. ``total_timeout_seconds``: the seed's total timeout, the jobs'
    ``dagster/max_runtime`` (run monitoring stops a run past it); None or 0: no ceiling."""
    tags = {MAX_RUNTIME_TAG: str(total_timeout_seconds)} if total_timeout_seconds else {}
    return [
        dg.define_asset_job(
            JOB_BY_MODE[mode],
            selection=SELECTIONS[mode],
            config=mode_config(mode),
            tags=tags,
            description=DESCRIPTIONS[mode],
        )
        for mode in MODES
    ]
