"""Profile evidence beyond HHsearch: hmmscan against the family HMMs, and the second pass
over what the first partition left uncovered (HHsearch and hmmscan on those stretches)."""

import dagster as dg
import pandas as pd

from ecod_assets.defs.assets.common import in_scratch, run_stage, succeeded
from ecod_assets.defs.assets.reference import (
    REFERENCE,
    batch_library,
    library_domains,
    library_paths,
)
from ecod_assets.partitions import BATCH_GROUP, ecod_batches
from ecod_assets.resources import (
    TOOL_POOL,
    EcodTools,
    OrchestrationConfig,
    ReferenceRelease,
    tool_version,
)
from ecod_assets.science import search
from ecod_assets.science.evidence import summarize_evidence
from ecod_assets.science.partition import partition_domains
from ecod_assets.science.remainder import search_segments, segment_chains, uncovered_segments
from ecod_assets.science.tools import Limits
from platform_core.datastore import DataStore

PROFILE_CODE_VERSION = "1"


def profiled_chains(batch_chains: pd.DataFrame, hhsearch_profiles: pd.DataFrame) -> pd.DataFrame:
    """The chains that need profile evidence: those hhsearch_profiles built a profile for."""
    return batch_chains[batch_chains["chain_id"].isin(succeeded(hhsearch_profiles)["chain_id"])]


@dg.asset(
    group_name=BATCH_GROUP,
    partitions_def=ecod_batches,
    deps=[REFERENCE],
    pool=TOOL_POOL,
    code_version=PROFILE_CODE_VERSION,
    description="hmmscan (HMMER 3) of the chains that need profile evidence against the "
    "family HMMs (built from the same F-group alignments as the HH-suite profiles): one row "
    "per domain with its i-Evalue at a release-sized database (-Z hhsearch_db_profiles), "
    "HMM, aligned and envelope ranges.",
)
def hmmscan_hits(
    context: dg.AssetExecutionContext,
    batch_chains: pd.DataFrame,
    hhsearch_profiles: pd.DataFrame,
    release: ReferenceRelease,
    storage: DataStore,
    ecod_tools: EcodTools,
    orchestration: OrchestrationConfig,
) -> dg.Output[pd.DataFrame]:
    library = batch_library(context, release, storage, ecod_tools, orchestration)
    paths, programs = library_paths(library), ecod_tools.programs()
    chains = profiled_chains(batch_chains, hhsearch_profiles)[["chain_id", "sequence"]]
    db_profiles = orchestration.hhsearch_db_profiles
    return run_stage(
        context,
        orchestration,
        PROFILE_CODE_VERSION,
        [chains, library["fingerprint"], db_profiles],
        len(chains),
        lambda progress: in_scratch(
            storage,
            orchestration,
            "ecod-hmmscan",
            lambda limits: search.hmmscan_chains(
                chains,
                paths.hmm_db,
                programs,
                limits,
                orchestration.blast_batch_size,
                db_profiles,
                progress,
            ),
        ),
        metadata={"hmmscan_version": tool_version(programs.hmmscan), "db_profiles": db_profiles},
    )


@dg.asset(
    group_name=BATCH_GROUP,
    partitions_def=ecod_batches,
    deps=[REFERENCE],
    pool=TOOL_POOL,
    code_version=PROFILE_CODE_VERSION,
    description="The second profile pass: every stretch of >= 40 residues that the first "
    "partition (all BLAST, HHsearch and hmmscan evidence) left without a domain, in the "
    "chains that need profile evidence, searched alone by HHsearch (single-sequence query) "
    "and hmmscan; hits in the chain's residue numbers, typed hhsearch or hmmscan.",
)
def remainder_hits(
    context: dg.AssetExecutionContext,
    batch_chains: pd.DataFrame,
    blast_chain_hits: pd.DataFrame,
    blast_domain_hits: pd.DataFrame,
    hhsearch_profiles: pd.DataFrame,
    hhsearch_registration: pd.DataFrame,
    hmmscan_hits: pd.DataFrame,
    release: ReferenceRelease,
    storage: DataStore,
    ecod_tools: EcodTools,
    orchestration: OrchestrationConfig,
) -> dg.Output[pd.DataFrame]:
    library = batch_library(context, release, storage, ecod_tools, orchestration)
    paths, programs = library_paths(library), ecod_tools.programs()
    evidence = summarize_evidence(
        library_domains(library),
        succeeded(blast_chain_hits),
        succeeded(blast_domain_hits),
        succeeded(hhsearch_registration),
        succeeded(hmmscan_hits),
    )
    lengths = batch_chains.set_index("chain_id")["length"]
    first = partition_domains(evidence, lengths, orchestration.partition_rules())
    segments = uncovered_segments(first, profiled_chains(batch_chains, hhsearch_profiles))
    db_profiles = orchestration.hhsearch_db_profiles

    def second_pass(limits: Limits, progress: search.Progress) -> search.StageResult:
        return search_segments(
            segments,
            paths.hh_db,
            paths.hmm_db,
            programs,
            limits,
            orchestration.memory_gb(),
            orchestration.hhsearch_max_hits,
            db_profiles,
            orchestration.blast_batch_size,
            progress,
        )

    return run_stage(
        context,
        orchestration,
        PROFILE_CODE_VERSION,
        [segments, library["fingerprint"], db_profiles, orchestration.hhsearch_max_hits],
        len(segments),
        lambda progress: in_scratch(
            storage, orchestration, "ecod-remainder", lambda limits: second_pass(limits, progress)
        ),
        metadata={
            "segments_searched": len(segments),
            "residues_searched": int(segments["length"].sum()),
            "chains_with_segments": int(segment_chains(segments["chain_id"]).nunique()),
        },
        searches_per_item=2,  # hhsearch and hmmscan
    )
