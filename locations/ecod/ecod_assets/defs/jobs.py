"""The seed's modes as asset jobs over different selections of the batch graph; each sets the
mode in its run config (``domain_summary``'s ``mode``), so a run of the job, from the inbox
sensor, the UI or a CLI, carries it the same way."""

import os

import dagster as dg

from ecod_assets.partitions import BATCH_GROUP
from ecod_assets.resources import Mode

PROFILE_STAGES = (
    "hhsearch_profiles",
    "hhsearch_hits",
    "hhsearch_registration",
    "hmmscan_hits",
    "remainder_hits",
)
ANALYSIS_STAGES = ("domain_summary", "domain_partition", "classification")
# The seed's total_timeout: run monitoring stops runs launched by the daemon (inbox sensor, UI)
# after this many seconds.
TOTAL_TIMEOUT_SECONDS = int(os.environ.get("ECOD_TOTAL_TIMEOUT", "86400"))


def mode_config(mode: Mode) -> dict:
    """The run config that selects ``mode`` (also what the CLI submits with a backfill)."""
    return {"ops": {"domain_summary": {"config": {"mode": mode}}}}


def _mode_job(name: str, mode: Mode, selection: dg.AssetSelection, description: str):
    return dg.define_asset_job(
        name,
        selection=selection,
        config=mode_config(mode),
        tags={"dagster/max_runtime": str(TOTAL_TIMEOUT_SECONDS)},
        description=description,
    )


BATCH = dg.AssetSelection.groups(BATCH_GROUP)
SELECTIONS: dict[Mode, dg.AssetSelection] = {
    "full": BATCH,
    "blast-only": BATCH - dg.AssetSelection.assets(*PROFILE_STAGES),
    "analysis-only": dg.AssetSelection.assets(*ANALYSIS_STAGES),
}
full_job = _mode_job(
    "ecod_full",
    "full",
    SELECTIONS["full"],
    "FULL: chains, BLAST, profile evidence for the chains below the coverage threshold "
    "(HHsearch, hmmscan, then both again on what the first partition left uncovered), "
    "summary, partition, classification.",
)
blast_only_job = _mode_job(
    "ecod_blast_only",
    "blast-only",
    SELECTIONS["blast-only"],
    "BLAST_ONLY: no profile search (HH-suite, HMMER); the summary uses BLAST evidence only.",
)
analysis_only_job = _mode_job(
    "ecod_analysis_only",
    "analysis-only",
    SELECTIONS["analysis-only"],
    "ANALYSIS_ONLY: summary, partition and classification from the evidence already "
    "materialized (fails clearly if it is missing).",
)
JOB_BY_MODE: dict[Mode, str] = {
    "full": "ecod_full",
    "blast-only": "ecod_blast_only",
    "analysis-only": "ecod_analysis_only",
}
