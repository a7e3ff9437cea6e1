"""Remote homologs not made by the demo generator: the divergent set (BLOSUM62-driven
evolution from real protein windows) and real Pfam seed families held out, each classified by
FULL and BLAST_ONLY and held against plain HMMER on the same release."""

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from ecod_assets.cli import main
from ecod_assets.defs.assets.common import succeeded
from ecod_assets.homolog_sets import (
    PFAM_SEEDS,
    HomologSet,
    divergent_set,
    hold_out,
    identity,
    pfam_holdout_set,
    uniprot_family_set,
)
from ecod_assets.science.accuracy import Accuracy, score
from ecod_assets.science.baseline import hmmer_baseline
from ecod_assets.science.classify import classify
from ecod_assets.science.evidence import summarize_evidence
from ecod_assets.science.fasta import parse_fasta, read_fasta
from ecod_assets.science.partition import partition_domains
from ecod_assets.science.reference import read_release
from ecod_assets.science.stockholm import read_alignment
from ecod_assets.science.tools import Limits, Programs
from tests.ecod.test_remote import run_both_modes
from tests.support import data_root, isolated_home


def test_divergent_set_truth_matches_its_chains(tmp_path: Path) -> None:
    first, again = divergent_set(tmp_path / "a"), divergent_set(tmp_path / "b")
    assert first.fasta == again.fasta and first.truth.equals(again.truth)  # deterministic
    lengths = {r.id: len(r.sequence) for r in parse_fasta(first.fasta, "set")}
    domains = first.truth.dropna(subset=["start"])
    assert (domains["end"] <= domains["chain_id"].map(lengths)).all()
    assert domains.groupby("chain_id")["domain_number"].max().between(1, 3).all()
    decoys = set(first.truth["chain_id"]) - set(domains["chain_id"])
    assert 0 < len(decoys) < 0.25 * len(lengths)
    # a tail of >= 60 unassigned residues at either end of some chains
    first_start = domains.groupby("chain_id")["start"].min()
    last_end = domains.groupby("chain_id")["end"].max()
    tails = (first_start > 60) | (last_end.index.map(lengths) - last_end > 60)
    assert 0 < tails.sum() < 0.4 * len(first_start)
    release = read_release(first.library.domains_path, first.library.fasta_path)
    assert release["f_id"].nunique() in range(20, 41)
    assert (release.groupby("f_id").size() == 6).all()


def test_pfam_holdout_keeps_every_query_out_of_the_library(tmp_path: Path) -> None:
    held = pfam_holdout_set(tmp_path / "pfam")
    library = {r.sequence for r in read_fasta(held.library.fasta_path)}
    queries = "".join(r.sequence for r in parse_fasta(held.fasta, "set"))
    assert not any(sequence in queries for sequence in library if len(sequence) > 30)
    rows = read_alignment(PFAM_SEEDS[0])[:60]  # fn3
    out = hold_out(rows, 0.4, 0.34)
    kept = [i for i in range(len(rows)) if i not in out]
    assert out and all(identity(rows[i][1], rows[j][1]) <= 0.4 for i in out for j in kept)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with isolated_home(tmp_path_factory.mktemp("ecod-homologs")) as root:
        yield root


def classified(home: Path, name: str, made: HomologSet) -> dict[str, Accuracy]:
    """FULL, BLAST_ONLY and plain HMMER (i-Evalue <= 1e-3 and <= 0.01) on one set."""
    library = made.library
    argv = ["reference", "--domains", str(library.domains_path), "--fasta", str(library.fasta_path)]
    assert main(argv) == 0
    fasta = home / f"{name}.fasta"
    fasta.write_text(made.fasta)
    tables = run_both_modes(fasta, name)
    records = parse_fasta(made.fasta, name)
    chains = pd.DataFrame(
        {"chain_id": [r.id for r in records], "sequence": [r.sequence for r in records]}
    )
    release = read_release(library.domains_path, library.fasta_path)
    results = {mode: score(t, made.truth) for mode, t in tables.items()}
    for threshold in (1e-3, 1e-2):
        found, _ = hmmer_baseline(
            release,
            chains,
            home / f"{name}-hmmer",
            Programs.discover(),
            Limits(),
            16_000,
            threshold,
        )
        results[f"hmmer {threshold:g}"] = score(found, made.truth)
    return results


def stored(asset: str, batch: str) -> pd.DataFrame:
    return succeeded(pd.read_parquet(data_root() / "ecod" / asset / f"{batch}.parquet"))


def without_second_pass(made: HomologSet, batch: str) -> Accuracy:
    """The batch's FULL evidence minus the second pass, partitioned and scored again."""
    reference = read_release(made.library.domains_path, made.library.fasta_path)
    first = summarize_evidence(
        reference,
        *(stored(a, batch) for a in ("blast_chain_hits", "blast_domain_hits")),
        *(stored(a, batch) for a in ("hhsearch_registration", "hmmscan_hits")),
    )
    lengths = stored("batch_chains", batch).set_index("chain_id")["length"]
    table = classify(partition_domains(first, lengths), reference)
    return score(table, made.truth)


@pytest.mark.slow
def test_full_beats_plain_hmmer_on_divergent_remote_homologs(home: Path) -> None:
    made = divergent_set(home / "divergent")
    results = classified(home, "divergent", made)
    full, blast = results["full"], results["blast-only"]
    assert full.precision >= 0.95 and full.recall >= 0.88
    # the second pass over uncovered stretches finds domains the first pass missed
    assert stored("remainder_hits", "divergent-full")["type"].nunique() == 2
    assert without_second_pass(made, "divergent-full").correct_family < full.correct_family
    assert full.correct_family >= max(
        r.correct_family for k, r in results.items() if k.startswith("hmmer")
    )
    assert full.correct_family > blast.correct_family


@pytest.mark.slow
def test_full_on_held_out_pfam_families(home: Path) -> None:
    results = classified(home, "pfam", pfam_holdout_set(home / "pfam"))
    full = results["full"]
    assert full.recall >= 0.90 and full.precision >= 0.95
    assert full.correct_family >= results["hmmer 0.01"].correct_family - 1


@pytest.mark.slow
def test_clustered_uniprot_families_are_all_recognised(home: Path) -> None:
    """Whole real proteins held out from their BLAST-clustered families: every family must be
    recognised on its protein (a domain of the right F-group over most of it); the +-20 ends
    of whole proteins are a harder measure (N-terminal extensions no relative shares)."""
    made = uniprot_family_set(home / "uniprot")
    results = classified(home, "uniprot", made)
    assert results["full"].correct_family >= results["hmmer 0.001"].correct_family - 1
    table = pd.read_parquet(data_root() / "ecod" / "classification" / "uniprot-full.parquet")
    truth = made.truth.dropna(subset=["start"])
    pairs = truth.merge(table, on=["chain_id", "f_id"], suffixes=("", "_predicted"))
    shared = pairs[["end", "end_predicted"]].min(axis=1) - pairs[["start", "start_predicted"]].max(
        axis=1
    )
    recognised = pairs[shared + 1 >= 0.5 * (pairs["end"] - pairs["start"] + 1)]
    assert len(recognised.drop_duplicates(["chain_id", "start"])) == len(truth) >= 20
