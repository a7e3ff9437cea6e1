"""What each profile direction gains: FULL's evidence built up one step at a time on the
remote-homolog sets (``ecod_assets.homolog_sets``), scored by recall and precision.

    .venv/bin/python bench/ecod_directions.py [--seeds 1 2 3] [--chains 100]
                                              [--query-profile blast|hhblits]

Steps, each on top of the one before: BLAST + HHsearch (FULL before hmmscan came in);
+ hmmscan domains at i-Evalue <= 1e-3; at HMMER's own inclusion, 0.01; + profile consensus
(Fisher-combined HHsearch and hmmscan P-values); + the second pass over uncovered stretches
(= FULL). Plain HMMER (i-Evalue <= 1e-3 and <= 0.01) beside them. The science functions FULL
runs, without Dagster, in a scratch folder.
"""

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from ecod_assets.homolog_sets import (
    HomologSet,
    divergent_set,
    pfam_holdout_set,
    uniprot_family_set,
)
from ecod_assets.resources import EcodTools, OrchestrationConfig
from ecod_assets.science import search
from ecod_assets.science.accuracy import score
from ecod_assets.science.blast import needing_profiles
from ecod_assets.science.classify import classify
from ecod_assets.science.evidence import summarize_evidence
from ecod_assets.science.fasta import parse_fasta
from ecod_assets.science.hhsuite import register_hhr
from ecod_assets.science.hmmer import greedy_domains
from ecod_assets.science.library import LibraryPaths, build_once
from ecod_assets.science.partition import PartitionRules, partition_domains
from ecod_assets.science.reference import read_release
from ecod_assets.science.remainder import search_segments, uncovered_segments, with_second_pass

STEPS = ("BLAST+HHsearch", "+hmmscan 1e-3", "+hmmscan 0.01", "+consensus", "+second pass")


def steps(made: HomologSet, work: Path, query_profile: str) -> dict[str, tuple[int, int, int, int]]:
    """(found, true, predicted right, predicted) of each step and of plain HMMER."""
    settings = OrchestrationConfig()
    programs, limits, z = EcodTools().programs(), settings.limits(), settings.hhsearch_db_profiles
    domains = read_release(made.library.domains_path, made.library.fasta_path)
    build_once(domains, work / "library", programs, limits)
    paths = LibraryPaths(work / "library")
    records = parse_fasta(made.fasta, "set")
    chains = pd.DataFrame(
        {"chain_id": [r.id for r in records], "sequence": [r.sequence for r in records]}
    ).assign(length=lambda t: t["sequence"].str.len())
    lengths = chains.set_index("chain_id")["length"]
    dbs = {"chain": paths.chain_db, "domain": paths.domain_db}
    blast = search.blast_chains(chains, dbs, programs, limits, 100, settings.blast_dbsize)
    chain_hits, domain_hits = blast["chain"].table, blast["domain"].table
    hits = pd.concat([chain_hits, domain_hits], ignore_index=True)
    needed = needing_profiles(chains, hits, settings.hhsearch_coverage_threshold)
    if query_profile == "hhblits":
        profiles = search.hhblits_profiles(needed, paths.hh_db, programs, limits).table
    else:
        profiles = search.blast_profiles(needed, domain_hits)
    memory, max_hits = settings.memory_gb(), settings.hhsearch_max_hits
    hhr = search.hhsearch_chains(profiles, paths.hh_db, programs, limits, memory, max_hits).table
    registered = register_hhr(hhr, z)[0]
    hmm = search.hmmscan_chains(needed, paths.hmm_db, programs, limits, 100, z).table

    def evaluate(table: pd.DataFrame) -> tuple[int, int, int, int]:
        got = score(table, made.truth)
        return got.correct_family, got.true_domains, got.predicted_correct, got.predicted

    def partition(hh: pd.DataFrame, scan: pd.DataFrame | None, rules: PartitionRules,
                  consensus: bool) -> pd.DataFrame:  # fmt: skip
        evidence = summarize_evidence(domains, chain_hits, domain_hits, hh, scan)
        if not consensus:
            evidence = evidence[evidence["type"] != "profile_consensus"]
        return partition_domains(evidence, lengths, rules)

    strict, inclusive = PartitionRules(profile_max_evalue=1e-3), PartitionRules()
    out = {
        STEPS[0]: evaluate(classify(partition(registered, None, inclusive, False), domains)),
        STEPS[1]: evaluate(classify(partition(registered, hmm, strict, False), domains)),
        STEPS[2]: evaluate(classify(partition(registered, hmm, inclusive, False), domains)),
    }
    first = partition(registered, hmm, inclusive, True)
    out[STEPS[3]] = evaluate(classify(first, domains))
    segments = uncovered_segments(first, needed)
    second = search_segments(
        segments, paths.hh_db, paths.hmm_db, programs, limits, memory, max_hits, z, 100
    ).table
    both_hh = with_second_pass(registered, second, "hhsearch")
    both_hmm = with_second_pass(hmm, second, "hmmscan")
    out[STEPS[4]] = evaluate(classify(partition(both_hh, both_hmm, inclusive, True), domains))
    every = search.hmmscan_chains(chains, paths.hmm_db, programs, limits, 100, z).table
    f_ids = domains.set_index("ecod_domain_id")["f_id"]
    for threshold in (1e-3, 1e-2):
        found = greedy_domains(every, threshold)
        out[f"HMMER {threshold:g}"] = evaluate(found.assign(f_id=found["target"].map(f_ids)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--query-profile", choices=("blast", "hhblits"), default="blast")
    args = parser.parse_args()
    total: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sets = [
            (
                f"divergent-{seed}",
                divergent_set(Path(tmp, f"d{seed}", "release"), args.chains, seed),
            )
            for seed in args.seeds
        ] + [
            ("pfam-holdout", pfam_holdout_set(Path(tmp, "pfam", "release"))),
            ("uniprot-families", uniprot_family_set(Path(tmp, "uniprot", "release"))),
        ]
        for name, made in sets:
            results = steps(made, Path(tmp, name), args.query_profile)
            cells = []
            for step, (found, true, right, predicted) in results.items():
                cells.append(f"{step} {found / true:.3f}/{right / max(predicted, 1):.3f}")
                if name.startswith("divergent"):
                    before = total.get(step, [0] * 4)
                    total[step] = [a + b for a, b in zip(before, results[step], strict=True)]
            print(f"{name} (recall/precision): " + "; ".join(cells), flush=True)
    cells = [f"{s} {f / t:.3f}/{r / max(p, 1):.3f}" for s, (f, t, r, p) in total.items()]
    print("divergent sets pooled: " + "; ".join(cells))


if __name__ == "__main__":
    main()
