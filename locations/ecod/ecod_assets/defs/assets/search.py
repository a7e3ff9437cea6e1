"""Batch stages that run the tools: validated chains, BLAST, query profiles, HHsearch."""

import time
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from ecod_assets.defs.assets.common import (
    in_scratch,
    reused_output,
    run_stage,
    stage_output,
    stored_result,
    succeeded,
)
from ecod_assets.defs.assets.reference import REFERENCE, batch_library, library_paths
from ecod_assets.inputs import batch_fasta
from ecod_assets.partitions import BATCH_GROUP, ecod_batches
from ecod_assets.progress import StageProgress
from ecod_assets.resources import (
    TOOL_POOL,
    EcodTools,
    OrchestrationConfig,
    ReferenceRelease,
    tool_version,
)
from ecod_assets.science import search
from ecod_assets.science.blast import needing_profiles
from ecod_assets.science.fasta import FastaError, read_fasta, validate_chains
from ecod_assets.science.hhsuite import register_hhr
from platform_core.checkpoint import fingerprint
from platform_core.datastore import DataStore

SEARCH_CODE_VERSION = "2"  # 2: release-sized E-values, gating on confident BLAST coverage


@dg.asset(
    group_name=BATCH_GROUP,
    partitions_def=ecod_batches,
    code_version="1",
    description="The batch's query chains (chain_id, sequence, length), validated: FASTA "
    "syntax, unique safe ids, amino-acid letters, 20-10,000 residues.",
)
def batch_chains(context: dg.AssetExecutionContext, storage: DataStore) -> dg.Output[pd.DataFrame]:
    path = batch_fasta(storage, context.partition_key)
    if not path.is_file():
        raise dg.Failure(
            f"batch {context.partition_key} has no input FASTA ({path}); submit it with "
            "'ecod submit FASTA --id ID' or drop it in the inbox",
            allow_retries=False,
        )
    try:
        records = validate_chains(read_fasta(path), str(path))
    except FastaError as error:
        raise dg.Failure(f"invalid batch input: {error}", allow_retries=False) from None
    table = pd.DataFrame(
        {"chain_id": [r.id for r in records], "sequence": [r.sequence for r in records]}
    )
    table["length"] = table["sequence"].str.len()
    return dg.Output(
        table,
        metadata={
            "chains": len(table),
            "residues": int(table["length"].sum()),
            "longest_chain": int(table["length"].max()),
            "source": dg.MetadataValue.path(str(path)),
        },
    )


BLAST_DESCRIPTIONS = {
    "blast_chain_hits": "blastp HSPs of every chain against the reference chains (ECOD chain "
    "BLAST, E <= 0.002 at a release-sized database; the aligned strings transfer domain "
    "boundaries).",
    "blast_domain_hits": "blastp HSPs of every chain against the reference domains (ECOD "
    "domain BLAST, E <= 0.002 at a release-sized database).",
}


@dg.multi_asset(
    outs={
        name: dg.AssetOut(
            description=text, code_version=SEARCH_CODE_VERSION, group_name=BATCH_GROUP
        )
        for name, text in BLAST_DESCRIPTIONS.items()
    },
    partitions_def=ecod_batches,
    deps=[REFERENCE],
    pool=TOOL_POOL,
    can_subset=True,
)
def blast_hits(
    context: dg.AssetExecutionContext,
    batch_chains: pd.DataFrame,
    release: ReferenceRelease,
    storage: DataStore,
    ecod_tools: EcodTools,
    orchestration: OrchestrationConfig,
) -> Iterator[dg.Output[pd.DataFrame]]:
    """Chain and domain BLAST in one step: their chunks share the workers, so both cores stay
    busy to the end. Each asset is checkpointed and can fail on its own."""
    reference_library = batch_library(context, release, storage, ecod_tools, orchestration)
    paths = library_paths(reference_library)
    databases = {"blast_chain_hits": paths.chain_db, "blast_domain_hits": paths.domain_db}
    chains = batch_chains[["chain_id", "sequence"]]
    dbsize = orchestration.blast_dbsize
    key = fingerprint(SEARCH_CODE_VERSION, chains, reference_library["fingerprint"], dbsize)
    programs = ecod_tools.programs()
    metadata = {"blastp_version": tool_version(programs.blastp), "blast_dbsize": dbsize}
    items = len(batch_chains)
    todo = {}
    for name in sorted(context.op_execution_context.selected_output_names):
        stored = stored_result(context, orchestration, dg.AssetKey(name), key)
        if stored is None:
            todo[name] = databases[name]
        else:
            yield reused_output(stored, key, items, metadata, output_name=name)
    if not todo:
        return
    started = time.perf_counter()
    progress = {name: StageProgress(context.log, name, items) for name in todo}
    with storage.scratch("ecod-blast") as work:
        results = search.blast_chains(
            batch_chains,
            todo,
            programs,
            orchestration.limits(work),
            orchestration.blast_batch_size,
            dbsize,
            progress,
        )
    for told in progress.values():
        told.finish()
    wall = time.perf_counter() - started
    failure: dg.Failure | None = None
    for name, result in results.items():
        try:
            yield stage_output(context, orchestration, result, key, items, wall, metadata, name)
        except dg.Failure as error:  # still record the other search
            failure = failure or error
    if failure is not None:
        raise failure


@dg.asset(
    group_name=BATCH_GROUP,
    partitions_def=ecod_batches,
    deps=[REFERENCE],
    pool=TOOL_POOL,
    code_version=SEARCH_CODE_VERSION,
    description="Query profiles (A3M) of the chains whose confident BLAST coverage (strong "
    "E-value and identity) is below the threshold (ECOD runs HHsearch only for those): from "
    "the domain-BLAST alignments, or by hhblits against the family database.",
)
def hhsearch_profiles(
    context: dg.AssetExecutionContext,
    batch_chains: pd.DataFrame,
    blast_chain_hits: pd.DataFrame,
    blast_domain_hits: pd.DataFrame,
    release: ReferenceRelease,
    storage: DataStore,
    ecod_tools: EcodTools,
    orchestration: OrchestrationConfig,
) -> dg.Output[pd.DataFrame]:
    reference_library = batch_library(context, release, storage, ecod_tools, orchestration)
    paths = library_paths(reference_library)
    domain_hits = succeeded(blast_domain_hits)
    hits = pd.concat([succeeded(blast_chain_hits), domain_hits], ignore_index=True)
    threshold = orchestration.hhsearch_coverage_threshold
    needed = needing_profiles(
        batch_chains,
        hits,
        threshold,
        orchestration.blast_confident_evalue,
        orchestration.blast_confident_identity,
    )
    source = orchestration.query_profile
    programs = ecod_tools.programs()

    def build(progress: search.Progress) -> search.StageResult:
        if source == "hhblits":
            return in_scratch(
                storage,
                orchestration,
                "ecod-hhblits",
                lambda limits: search.hhblits_profiles(
                    needed, paths.hh_db, programs, limits, progress
                ),
            )
        profiles = search.blast_profiles(needed, domain_hits)
        return search.StageResult(profiles, pd.DataFrame(columns=search.FAILURE_COLUMNS), 0.0)

    return run_stage(
        context,
        orchestration,
        SEARCH_CODE_VERSION,
        [needed[["chain_id", "sequence"]], domain_hits, reference_library["fingerprint"], source],
        len(needed),
        build,
        metadata={
            "profile_source": source,
            "chains_needing_hhsearch": len(needed),
            "chains_covered_by_blast": len(batch_chains) - len(needed),
            "coverage_threshold": threshold,
            "confident_blast": f"E <= {orchestration.blast_confident_evalue:g}, identity >= "
            f"{orchestration.blast_confident_identity:g}",
        },
    )


@dg.asset(
    group_name=BATCH_GROUP,
    partitions_def=ecod_batches,
    deps=[REFERENCE],
    pool=TOOL_POOL,
    code_version=SEARCH_CODE_VERSION,
    description="hhsearch of each query profile against the family-profile database "
    "(-p 5 -e 0.001 -alt 20 -Z 5000 -B 5000): the raw .hhr text per chain.",
)
def hhsearch_hits(
    context: dg.AssetExecutionContext,
    hhsearch_profiles: pd.DataFrame,
    release: ReferenceRelease,
    storage: DataStore,
    ecod_tools: EcodTools,
    orchestration: OrchestrationConfig,
) -> dg.Output[pd.DataFrame]:
    reference_library = batch_library(context, release, storage, ecod_tools, orchestration)
    paths = library_paths(reference_library)
    profiles = succeeded(hhsearch_profiles)
    programs = ecod_tools.programs()
    return run_stage(
        context,
        orchestration,
        SEARCH_CODE_VERSION,
        [profiles, reference_library["fingerprint"], orchestration.hhsearch_max_hits],
        len(profiles),
        lambda progress: in_scratch(
            storage,
            orchestration,
            "ecod-hhsearch",
            lambda limits: search.hhsearch_chains(
                profiles,
                paths.hh_db,
                programs,
                limits,
                orchestration.memory_gb(),
                orchestration.hhsearch_max_hits,
                progress,
            ),
        ),
        metadata={
            "hhsearch_version": tool_version(programs.hhsearch),
            "hhsearch_max_hits": orchestration.hhsearch_max_hits,
        },
    )


@dg.asset(
    group_name=BATCH_GROUP,
    partitions_def=ecod_batches,
    code_version=SEARCH_CODE_VERSION,
    description="The .hhr results parsed into one hit table (probability, E-value at a "
    "release-sized database of hhsearch_db_profiles profiles, score, aligned columns, "
    "identity, query and template ranges).",
)
def hhsearch_registration(
    context: dg.AssetExecutionContext,
    hhsearch_hits: pd.DataFrame,
    orchestration: OrchestrationConfig,
) -> dg.Output[pd.DataFrame]:
    results = succeeded(hhsearch_hits)
    profiles = orchestration.hhsearch_db_profiles

    def register(progress: search.Progress) -> search.StageResult:  # one pass: done at the end
        table, failures = register_hhr(results, profiles)
        return search.StageResult(
            table, pd.DataFrame(failures, columns=search.FAILURE_COLUMNS), 0.0
        )

    return run_stage(
        context,
        orchestration,
        SEARCH_CODE_VERSION,
        [results, profiles],
        len(results),
        register,
        metadata={"hhsearch_db_profiles": profiles},
    )
