"""Batch stages that integrate the evidence: summary, partition, classification."""

import dagster as dg
import pandas as pd

from ecod_assets.assets.reference import library_domains
from ecod_assets.assets.stages import failed_chains, succeeded
from ecod_assets.batches import batch_truth
from ecod_assets.partitions import BATCH_GROUP, ecod_batches
from ecod_assets.resources import MODE_TAG, OrchestrationConfig
from ecod_assets.science.accuracy import score
from ecod_assets.science.classify import classify
from ecod_assets.science.evidence import summarize_evidence
from ecod_assets.science.partition import PartitionRules, partition_domains
from ecod_assets.science.report import summary_markdown
from platform_core.io import stored_partition

HHSEARCH_REGISTRATION = dg.AssetKey("hhsearch_registration")


def _hhsearch_evidence(context: dg.AssetExecutionContext, mode: str) -> pd.DataFrame | None:
    """HHsearch hits for this batch by mode: none in blast-only, required in full, used when
    already materialized in analysis-only."""
    if mode == "blast-only":
        return None
    stored = stored_partition(context, HHSEARCH_REGISTRATION, context.partition_key)
    if stored is None and mode == "full":
        raise dg.Failure(
            f"hhsearch_registration is not materialized for batch {context.partition_key}; "
            "run mode full (or blast-only for BLAST evidence alone)"
        )
    return None if stored is None else succeeded(stored)


@dg.asset(
    group_name=BATCH_GROUP,
    partitions_def=ecod_batches,
    code_version="2",
    deps=[HHSEARCH_REGISTRATION],
    description="All evidence per chain, as in ECOD's domain summary: type (chain_blast, "
    "domain_blast, hhsearch), target domain, E-value, bitscore, identity, coverage, query and "
    "target ranges, X/H/T/F groups, probability. BLAST evidence only in blast-only mode.",
)
def domain_summary(
    context: dg.AssetExecutionContext,
    batch_chains: pd.DataFrame,
    blast_chain_hits: pd.DataFrame,
    blast_domain_hits: pd.DataFrame,
    reference_library: dict,
) -> dg.Output[pd.DataFrame]:
    reference = library_domains(reference_library)
    mode = context.run.tags.get(MODE_TAG, "full")
    hhsearch = _hhsearch_evidence(context, mode)
    evidence = summarize_evidence(
        reference, succeeded(blast_chain_hits), succeeded(blast_domain_hits), hhsearch
    )
    failed = set(failed_chains(blast_chain_hits)["chain_id"]) | set(
        failed_chains(blast_domain_hits)["chain_id"]
    )
    counts = evidence["type"].value_counts()
    return dg.Output(
        evidence,
        metadata={
            "mode": mode,
            "hhsearch_evidence_used": hhsearch is not None,
            "chains_with_evidence": int(evidence["chain_id"].nunique()),
            "chains_without_evidence": len(batch_chains) - int(evidence["chain_id"].nunique()),
            "chains_with_failed_search": len(failed),
            **{f"evidence_{kind}": int(n) for kind, n in counts.items()},
        },
    )


@dg.asset(
    group_name=BATCH_GROUP,
    partitions_def=ecod_batches,
    code_version="3",
    description="Non-overlapping domain boundaries per chain from the evidence (confident "
    "BLAST, then HHsearch, then weak BLAST; best first within each; extended over unaligned "
    "reference ends), with chain coverage and a quality label: good >= 0.80, low_coverage "
    ">= 0.50, fragmentary, no_domains.",
)
def domain_partition(
    domain_summary: pd.DataFrame, batch_chains: pd.DataFrame, orchestration: OrchestrationConfig
) -> dg.Output[pd.DataFrame]:
    rules = PartitionRules(
        confident_evalue=orchestration.blast_confident_evalue,
        confident_identity=orchestration.blast_confident_identity,
    )
    lengths = batch_chains.set_index("chain_id")["length"]
    partition = partition_domains(domain_summary, lengths, rules)
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
    code_version="1",
    description="ECOD X/H/T/F assignment per domain with the evidence that decided it. When "
    "the batch's true domains are known (demo batches), boundary accuracy (both ends within "
    "+-20 residues) and F-group accuracy are reported.",
)
def classification(
    context: dg.AssetExecutionContext, domain_partition: pd.DataFrame, reference_library: dict
) -> dg.Output[pd.DataFrame]:
    reference = library_domains(reference_library)
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
    truth_path = batch_truth(context.partition_key)
    if truth_path.is_file():
        truth = pd.read_csv(truth_path, sep="\t")
        accuracy = score(table, truth)
        metadata.update(
            {
                "boundary_accuracy": round(accuracy.boundary, 4),
                "f_group_accuracy": round(accuracy.family, 4),
                "true_domains": accuracy.true_domains,
                "domains_found": accuracy.found,
                "domainless_chains": accuracy.empty_chains,
                "domainless_chains_left_empty": accuracy.empty_chains_correct,
            }
        )
    metadata["summary"] = dg.MetadataValue.md(summary_markdown(domain_partition))
    return dg.Output(table, metadata=metadata)
