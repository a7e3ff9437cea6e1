"""Batch stages that integrate the evidence: summary, partition, classification."""

import dagster as dg
import pandas as pd

from ecod_assets.defs.assets.common import failed_chains, succeeded
from ecod_assets.defs.assets.reference import REFERENCE, batch_library, library_domains
from ecod_assets.inputs import batch_truth
from ecod_assets.partitions import BATCH_GROUP, ecod_batches
from ecod_assets.resources import EcodTools, Mode, OrchestrationConfig, ReferenceRelease
from ecod_assets.science.accuracy import score
from ecod_assets.science.classify import classify
from ecod_assets.science.evidence import summarize_evidence
from ecod_assets.science.partition import partition_domains
from ecod_assets.science.remainder import segment_chains, with_second_pass
from ecod_assets.science.report import summary_markdown
from platform_core.datastore import DataStore
from platform_core.io import OPTIONAL


class SummaryConfig(dg.Config):
    """``mode``: which evidence the summary integrates. ``full``: BLAST and the profile
    evidence (HHsearch, hmmscan, the second pass; all must be there); ``blast-only``: BLAST
    alone, even when profile evidence exists; ``analysis-only``: BLAST, and the profile
    evidence materialized before. Each mode job sets it (jobs.py)."""

    mode: Mode = "full"


def _profile_evidence(
    batch: str, mode: Mode, tables: dict[str, pd.DataFrame | None]
) -> dict[str, pd.DataFrame | None]:
    """Each profile stage's table this mode integrates (None: none)."""
    if mode == "blast-only":
        return dict.fromkeys(tables)
    missing = [name for name, table in tables.items() if table is None]
    if missing and mode == "full":
        raise dg.Failure(
            f"{', '.join(missing)} not materialized for batch {batch}; "
            "run mode full (or blast-only for BLAST evidence alone)"
        )
    return {name: None if t is None else succeeded(t) for name, t in tables.items()}


@dg.asset(
    group_name=BATCH_GROUP,
    partitions_def=ecod_batches,
    code_version="3",
    ins={
        name: dg.AssetIn(metadata={OPTIONAL: True})
        for name in ("hhsearch_registration", "hmmscan_hits", "remainder_hits")
    },
    deps=[REFERENCE],
    description="All evidence per chain, as in ECOD's domain summary: type (chain_blast, "
    "domain_blast, hhsearch, hmmscan, profile_consensus), target domain, E-value, bitscore, "
    "identity, coverage, query and target ranges, X/H/T/F groups, probability. BLAST "
    "evidence only in blast-only mode.",
)
def domain_summary(
    context: dg.AssetExecutionContext,
    config: SummaryConfig,
    batch_chains: pd.DataFrame,
    blast_chain_hits: pd.DataFrame,
    blast_domain_hits: pd.DataFrame,
    hhsearch_registration: pd.DataFrame | None,
    hmmscan_hits: pd.DataFrame | None,
    remainder_hits: pd.DataFrame | None,
    release: ReferenceRelease,
    storage: DataStore,
    ecod_tools: EcodTools,
    orchestration: OrchestrationConfig,
) -> dg.Output[pd.DataFrame]:
    library = batch_library(context, release, storage, ecod_tools, orchestration)
    reference = library_domains(library)
    mode = config.mode
    profiles = _profile_evidence(
        context.partition_key,
        mode,
        {
            "hhsearch_registration": hhsearch_registration,
            "hmmscan_hits": hmmscan_hits,
            "remainder_hits": remainder_hits,
        },
    )
    remainder = profiles["remainder_hits"]
    evidence = summarize_evidence(
        reference,
        succeeded(blast_chain_hits),
        succeeded(blast_domain_hits),
        with_second_pass(profiles["hhsearch_registration"], remainder, "hhsearch"),
        with_second_pass(profiles["hmmscan_hits"], remainder, "hmmscan"),
    )
    searched = [blast_chain_hits, blast_domain_hits]
    if mode != "blast-only":
        profile_stages = (hhsearch_registration, hmmscan_hits, remainder_hits)
        searched += [table for table in profile_stages if table is not None]
    failed = {  # a failed stretch of the second pass counts for its chain
        chain for table in searched for chain in segment_chains(failed_chains(table)["chain_id"])
    }
    counts = evidence["type"].value_counts()
    return dg.Output(
        evidence,
        metadata={
            "mode": mode,
            "profile_evidence_used": any(t is not None for t in profiles.values()),
            "chains_with_evidence": int(evidence["chain_id"].nunique()),
            "chains_without_evidence": len(batch_chains) - int(evidence["chain_id"].nunique()),
            "chains_with_failed_search": len(failed),
            **{f"evidence_{kind}": int(n) for kind, n in counts.items()},
        },
    )


@dg.asset(
    group_name=BATCH_GROUP,
    partitions_def=ecod_batches,
    code_version="4",
    description="Non-overlapping domain boundaries per chain from the evidence (confident "
    "BLAST, then profile evidence, then weak BLAST; best first within each; extended over "
    "unaligned reference ends), with chain coverage and a quality label: good >= 0.80, "
    "low_coverage >= 0.50, fragmentary, no_domains.",
)
def domain_partition(
    domain_summary: pd.DataFrame, batch_chains: pd.DataFrame, orchestration: OrchestrationConfig
) -> dg.Output[pd.DataFrame]:
    lengths = batch_chains.set_index("chain_id")["length"]
    partition = partition_domains(domain_summary, lengths, orchestration.partition_rules())
    chains = partition.drop_duplicates("chain_id")
    quality = chains["quality"].value_counts()
    return dg.Output(
        partition,
        metadata={
            "domains": int((partition["domain_number"] > 0).sum()),
            "chains": len(chains),
            "mean_chain_coverage": round(float(chains["chain_coverage"].mean()), 3),
            **{f"chains_{label}": int(n) for label, n in quality.items()},
        },
    )


@dg.asset(
    group_name=BATCH_GROUP,
    partitions_def=ecod_batches,
    code_version="2",
    deps=[REFERENCE],
    description="ECOD X/H/T/F assignment per domain with the evidence that decided it. When "
    "the batch's true domains are known (demo batches), boundary accuracy (both ends within "
    "+-20 residues), F-group accuracy, and recall and precision (both ends and the F-group "
    "right) are reported.",
)
def classification(
    context: dg.AssetExecutionContext,
    domain_partition: pd.DataFrame,
    release: ReferenceRelease,
    storage: DataStore,
    ecod_tools: EcodTools,
    orchestration: OrchestrationConfig,
) -> dg.Output[pd.DataFrame]:
    library = batch_library(context, release, storage, ecod_tools, orchestration)
    reference = library_domains(library)
    table = classify(domain_partition, reference)
    metadata: dict = {
        "domains": len(table),
        "chains_with_domains": int(table["chain_id"].nunique()),
        "f_groups_assigned": int(table["f_id"].nunique()),
        "by_evidence": dg.MetadataValue.json(table["evidence_type"].value_counts().to_dict()),
        "preview": dg.MetadataValue.md(
            table.head(10).drop(columns=["x_name", "h_name", "t_name"]).to_markdown(index=False)
        ),
    }
    truth_path = batch_truth(storage, context.partition_key)
    if truth_path.is_file():
        truth = pd.read_csv(truth_path, sep="\t")
        accuracy = score(table, truth)
        metadata.update(
            {
                "boundary_accuracy": round(accuracy.boundary, 4),
                "f_group_accuracy": round(accuracy.family, 4),
                "recall": round(accuracy.recall, 4),
                "precision": round(accuracy.precision, 4),
                "true_domains": accuracy.true_domains,
                "domains_found": accuracy.found,
                "domainless_chains": accuracy.empty_chains,
                "domainless_chains_left_empty": accuracy.empty_chains_correct,
            }
        )
    metadata["summary"] = dg.MetadataValue.md(summary_markdown(domain_partition))
    return dg.Output(table, metadata=metadata)
