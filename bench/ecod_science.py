"""An ECOD batch's science without Dagster: the same science functions (BLAST, query
profiles, HHsearch, hmmscan, the second pass over uncovered stretches, evidence, partition,
classification) on the same chains and library, in a
plain loop with the same tool workers, writing nothing. bench/ecod_pipeline.py times it
beside a FULL run: their ratio is the cost of orchestration."""

from pathlib import Path

import pandas as pd

from ecod_assets.resources import EcodTools, OrchestrationConfig
from ecod_assets.science import search
from ecod_assets.science.blast import needing_profiles
from ecod_assets.science.classify import classify
from ecod_assets.science.evidence import summarize_evidence
from ecod_assets.science.fasta import read_fasta, validate_chains
from ecod_assets.science.hhsuite import register_hhr
from ecod_assets.science.library import LibraryPaths
from ecod_assets.science.partition import partition_domains
from ecod_assets.science.remainder import search_segments, uncovered_segments, with_second_pass


def bare_batch(fasta: Path, library_root: Path, settings: OrchestrationConfig) -> pd.DataFrame:
    """Classify the chains of ``fasta`` against the built library at ``library_root`` as a
    FULL run does; returns the classification table."""
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
    needed = needing_profiles(
        chains,
        pd.concat([chain_hits, domain_hits], ignore_index=True),
        settings.hhsearch_coverage_threshold,
        settings.blast_confident_evalue,
        settings.blast_confident_identity,
    )
    profiles = search.blast_profiles(needed, domain_hits)
    hhr = search.hhsearch_chains(
        profiles, paths.hh_db, programs, limits, settings.memory_gb(), settings.hhsearch_max_hits
    ).table
    registered = register_hhr(hhr, settings.hhsearch_db_profiles)[0]
    db_profiles = settings.hhsearch_db_profiles
    domains = search.hmmscan_chains(
        needed, paths.hmm_db, programs, limits, settings.blast_batch_size, db_profiles
    ).table
    reference = pd.read_parquet(paths.domains_table)
    lengths = chains.set_index("chain_id")["length"]
    rules = settings.partition_rules()
    evidence = summarize_evidence(reference, chain_hits, domain_hits, registered, domains)
    segments = uncovered_segments(partition_domains(evidence, lengths, rules), needed)
    second = search_segments(
        segments,
        paths.hh_db,
        paths.hmm_db,
        programs,
        limits,
        settings.memory_gb(),
        settings.hhsearch_max_hits,
        db_profiles,
        settings.blast_batch_size,
    ).table
    evidence = summarize_evidence(
        reference,
        chain_hits,
        domain_hits,
        with_second_pass(registered, second, "hhsearch"),
        with_second_pass(domains, second, "hmmscan"),
    )
    return classify(partition_domains(evidence, lengths, rules), reference)
