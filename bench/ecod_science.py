"""An ECOD batch's science without Dagster: the same science functions (BLAST, query
profiles, HHsearch, evidence, partition, classification) on the same chains and library, in a
plain loop with the same tool workers, writing nothing. bench/ecod_pipeline.py times it
beside a FULL run: their ratio is the cost of orchestration."""

from pathlib import Path

import pandas as pd

from ecod_assets.resources import EcodTools, OrchestrationConfig
from ecod_assets.science import search
from ecod_assets.science.blast import confident, query_coverage
from ecod_assets.science.classify import classify
from ecod_assets.science.evidence import summarize_evidence
from ecod_assets.science.fasta import read_fasta, validate_chains
from ecod_assets.science.hhsuite import parse_hhr
from ecod_assets.science.library import LibraryPaths
from ecod_assets.science.partition import PartitionRules, partition_domains


def bare_batch(fasta: Path, library_root: Path, settings: OrchestrationConfig) -> int:
    """Classify the chains of ``fasta`` against the built library at ``library_root`` as a
    FULL run does; returns the number of domains assigned."""
    records = validate_chains(read_fasta(fasta), str(fasta))
    chains = pd.DataFrame(
        {
            "chain_id": [r.id for r in records],
            "sequence": [r.sequence for r in records],
            "length": [len(r.sequence) for r in records],
        }
    )
    paths = LibraryPaths(library_root)
    programs, limits = EcodTools().programs(), settings.limits()
    blast = search.blast_chains(
        chains,
        {"chain": paths.chain_db, "domain": paths.domain_db},
        programs,
        limits,
        settings.blast_batch_size,
        settings.blast_dbsize,
    )
    chain_hits, domain_hits = blast["chain"].table, blast["domain"].table
    hits = pd.concat([chain_hits, domain_hits], ignore_index=True)
    strong = hits[
        confident(hits, settings.blast_confident_evalue, settings.blast_confident_identity)
    ]
    coverage = query_coverage(strong, chains.set_index("chain_id")["length"])
    needed = chains[chains["chain_id"].map(coverage) < settings.hhsearch_coverage_threshold]
    profiles = search.blast_profiles(needed, domain_hits)
    hhr = search.hhsearch_chains(
        profiles, paths.hh_db, programs, limits, settings.memory_gb(), settings.hhsearch_max_hits
    ).table
    registered = pd.concat(
        [
            parse_hhr(text, chain_id, settings.hhsearch_db_profiles)
            for chain_id, text in zip(hhr["chain_id"], hhr["hhr"], strict=True)
        ]
        or [parse_hhr("No Hit\n", "")],
        ignore_index=True,
    )
    reference = pd.read_parquet(paths.domains_table)
    evidence = summarize_evidence(reference, chain_hits, domain_hits, registered)
    rules = PartitionRules(
        confident_evalue=settings.blast_confident_evalue,
        confident_identity=settings.blast_confident_identity,
    )
    partition = partition_domains(evidence, chains.set_index("chain_id")["length"], rules)
    return len(classify(partition, reference))
