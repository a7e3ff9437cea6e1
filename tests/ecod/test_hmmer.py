"""The HMMER evidence path: real hmmscan domain tables, profile consensus, the second pass over
uncovered stretches, and what the partition makes of them (later domains of a multi-domain
chain, a low-probability but significant single-sequence hit, a tail left unassigned)."""

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecod_assets.science.evidence import combined_pvalue, summarize_evidence
from ecod_assets.science.hmmer import greedy_domains, hmmscan_argv, parse_domtblout
from ecod_assets.science.partition import partition_domains
from ecod_assets.science.remainder import in_chain_coordinates, uncovered_segments
from tests.ecod.test_remote import TUTORIAL, sevenless

Z = 16_000
REFERENCE = pd.DataFrame(
    {
        "ecod_domain_id": ["eFN3", "eKIN", "eRRM"],
        "f_id": ["1.1.1.1", "2.1.1.1", "3.1.1.1"],
        "x_name": ["x1", "x2", "x3"],
        "h_name": ["h1", "h2", "h3"],
        "t_name": ["t1", "t2", "t3"],
        "f_name": ["fn3", "kinase", "rrm"],
    }
)


def hhsearch_hit(target: str, q: tuple[int, int], probability: float, pvalue: float) -> dict:
    """A registered HHsearch hit aligning the whole 100-residue reference domain."""
    return {
        "chain_id": "q", "target": target, "probability": probability, "pvalue": pvalue,
        "evalue": pvalue * Z, "score": 20.0, "identity": 0.2, "q_start": q[0], "q_end": q[1],
        "t_start": 1, "t_end": 100, "target_length": 100,
    }  # fmt: skip


def hmmscan_hit(target: str, q: tuple[int, int], evalue: float, hmm: tuple[int, int]) -> dict:
    """An hmmscan domain of a 100-state model, i-Evalue at a release-sized database."""
    return {
        "chain_id": "q", "target": target, "target_length": 100, "query_length": 400,
        "evalue": evalue, "pvalue": evalue / Z, "c_evalue": evalue, "score": 30.0,
        "t_start": hmm[0], "t_end": hmm[1], "q_start": q[0], "q_end": q[1],
        "env_start": q[0], "env_end": q[1],
    }  # fmt: skip


def placed(hhsearch: list[dict], hmmscan: list[dict], length: int = 400) -> list[list]:
    evidence = summarize_evidence(
        REFERENCE, None, None, pd.DataFrame(hhsearch) if hhsearch else None, pd.DataFrame(hmmscan)
    )
    partition = partition_domains(evidence, pd.Series({"q": length}))
    return partition[partition["domain_number"] > 0][
        ["start", "end", "target", "type"]
    ].values.tolist()


def test_later_domains_of_a_multi_domain_chain_come_from_hmmscan() -> None:
    # HHsearch finds domain 1 confidently; its alignment of domain 2 covers 40 of 100
    # residues (too little of the reference), and domain 3 it does not see at all.
    hhsearch = [
        hhsearch_hit("eFN3", (1, 100), 0.99, 1e-12),
        {**hhsearch_hit("eKIN", (131, 170), 0.5, 1e-4), "t_start": 31, "t_end": 70},
    ]
    hmmscan = [
        hmmscan_hit("eKIN", (111, 208), 2e-4, (2, 99)),
        hmmscan_hit("eRRM", (221, 318), 5e-3, (1, 98)),
    ]
    assert [d[2] for d in placed(hhsearch, [])] == ["eFN3"]
    domains = placed(hhsearch, hmmscan)
    assert [d[2] for d in domains] == ["eFN3", "eKIN", "eRRM"]
    assert domains[1][:2] == [110, 209] and domains[2][:2] == [221, 320]  # extended by the HMM
    assert domains[2][3] == "hmmscan"  # i-Evalue 5e-3: HMMER's own inclusion (0.01)


def test_a_low_probability_but_significant_single_sequence_hit_is_placed() -> None:
    # HHsearch: probability 0.35 (its profile-profile calibration), P-value 2e-4; hmmscan
    # on the same residues and family: i-Evalue 0.04, not significant alone at 0.01.
    hhsearch = [hhsearch_hit("eFN3", (21, 120), 0.35, 2e-4)]
    hmmscan = [hmmscan_hit("eFN3", (23, 118), 0.04, (3, 98))]
    assert placed(hhsearch, []) == [] and placed([], hmmscan) == []
    domains = placed(hhsearch, hmmscan)
    assert domains == [[21, 120, "eFN3", "profile_consensus"]]
    # Fisher's combination: p1 p2 (1 - ln p1 p2), stated for the release-sized database
    p = (0.04 / Z) * 2e-4
    assert combined_pvalue(np.array([0.04 / Z]), np.array([2e-4]))[0] == pytest.approx(
        p * (1 - np.log(p))
    )


def test_agreement_needs_the_same_family_on_the_same_residues() -> None:
    hhsearch = [hhsearch_hit("eFN3", (21, 120), 0.35, 2e-4)]
    assert placed(hhsearch, [hmmscan_hit("eRRM", (23, 118), 0.04, (3, 98))]) == []
    assert placed(hhsearch, [hmmscan_hit("eFN3", (200, 290), 0.04, (3, 98))]) == []


def test_a_tail_with_only_chance_scores_stays_unassigned() -> None:
    # A real domain, then a 120-residue tail where both methods score at chance levels
    # (the strongest false hits on the remote sets: HHsearch P 3e-3, hmmscan i-Evalue 450).
    hhsearch = [
        hhsearch_hit("eFN3", (1, 100), 0.99, 1e-12),
        hhsearch_hit("eKIN", (241, 340), 0.10, 3e-3),
    ]
    hmmscan = [
        hmmscan_hit("eFN3", (2, 99), 1e-9, (2, 99)),
        hmmscan_hit("eKIN", (245, 335), 450.0, (5, 95)),
    ]
    domains = placed(hhsearch, hmmscan)
    assert [d[2] for d in domains] == ["eFN3"]


def test_uncovered_stretches_are_searched_and_mapped_back() -> None:
    partition = pd.DataFrame(
        {
            "chain_id": ["q", "q", "r"],
            "domain_number": [1, 2, 0],
            "start": [1, 151, np.nan],
            "end": [100, 170, np.nan],
        }
    )
    chains = pd.DataFrame({"chain_id": ["q", "r"], "sequence": ["A" * 300, "C" * 30]})
    segments = uncovered_segments(partition, chains)
    # q: 101-150 (50 residues) and 171-300; r: 30 residues, shorter than 40: not searched
    assert segments["chain_id"].tolist() == ["q@100", "q@170"]
    assert segments["length"].tolist() == [50, 130]
    hits = pd.DataFrame(
        {"chain_id": ["q@170"], "q_start": [5], "q_end": [90], "env_start": [3], "env_end": [95]}
    )
    back = in_chain_coordinates(hits)
    assert back.iloc[0].tolist() == ["q", 175, 260, 173, 265]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hmm")
    database = folder / "models.hmm"
    database.write_text("".join((TUTORIAL / f"{m}.hmm").read_text() for m in ("fn3", "Pkinase")))
    subprocess.run(["hmmpress", "-f", str(database)], check=True, capture_output=True)
    return database


def scan(models: Path, z: int) -> pd.DataFrame:
    folder = models.parent
    query, table = folder / "sevenless.fasta", folder / f"domains-{z}.tbl"
    query.write_text(f">sevenless\n{sevenless()}\n")
    argv = hmmscan_argv("hmmscan", models, query, table, z)
    subprocess.run(argv, check=True, capture_output=True)
    return parse_domtblout(table.read_text(), z)


def test_hmmscan_domains_of_sevenless_read_with_release_sized_evalues(models: Path) -> None:
    release, small = scan(models, Z), scan(models, 1_000)
    assert set(release["target"]) == {"fn3", "Pkinase"} and set(release["chain_id"]) == {
        "sevenless"
    }
    # the i-Evalue is the domain's P-value times -Z: 16x larger at 16,000 profiles than 1,000
    # (the table prints two significant digits)
    assert release["evalue"].to_numpy() == pytest.approx(16 * small["evalue"].to_numpy(), rel=0.05)
    assert release["pvalue"].to_numpy() == pytest.approx(release["evalue"].to_numpy() / Z)
    inside = (release["env_start"] <= release["q_start"]) & (release["q_end"] <= release["env_end"])
    assert inside.all() and (release["t_end"] <= release["target_length"]).all()
    # at the searched database's own size (2 models) HMMER places the 7 domains of
    # sevenless; stated for a release, fewer pass the same threshold, and only those
    own = greedy_domains(scan(models, 2), 1e-3)
    assert len(own) == 7 and (own["target"] == "fn3").sum() == 6
    ends = own.sort_values("start")[["start", "end"]].to_numpy()
    assert (ends[1:, 0] > ends[:-1, 1]).all()  # non-overlapping
    strict = greedy_domains(release, 1e-3)
    assert 0 < len(strict) < 7 and set(strict["start"]) <= set(own["start"])


def test_a_truncated_or_garbled_domain_table_is_refused_with_its_line() -> None:
    with pytest.raises(ValueError, match="domtblout line 2: 5 columns, expected 23"):
        parse_domtblout("# header\nfn3 - 86 sevenless -\n", Z)
    garbled = " ".join(["fn3", "-", "86", "q", "-", "400", *["x"] * 16, "-"])
    with pytest.raises(ValueError, match="domtblout line 1: a number column is not a number"):
        parse_domtblout(garbled, Z)


def test_a_consensus_with_an_hmmscan_evalue_printed_as_zero_is_kept() -> None:
    hit = {**hmmscan_hit("eFN3", (23, 118), 0.0, (3, 98)), "pvalue": 0.0}
    hhsearch = pd.DataFrame([hhsearch_hit("eFN3", (21, 120), 0.35, 2e-4)])
    evidence = summarize_evidence(REFERENCE, None, None, hhsearch, pd.DataFrame([hit]))
    consensus = evidence[evidence["type"] == "profile_consensus"]
    assert consensus["evalue"].tolist() == [0.0]  # not NaN (0 / 0), so it still counts
