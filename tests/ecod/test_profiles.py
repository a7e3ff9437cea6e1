"""Profile-side science: family alignments as A3M, Stockholm seeds, release-sized E-values,
and how the partition weighs profile evidence against weak BLAST and repeated domains."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecod_assets.demo import write_seed_library
from ecod_assets.science.blast import blastp_argv
from ecod_assets.science.hhsuite import a3m_from_msa, parse_hhr
from ecod_assets.science.partition import PartitionRules, partition_domains
from ecod_assets.science.stockholm import StockholmError, read_stockholm
from tests.ecod.test_science import HHR, evidence_table


def test_a3m_from_msa_keeps_match_columns_and_lowercases_insertions() -> None:
    # column 3 is a gap in 2 of 3 rows (an insertion in row "b"); column 5 a deletion in "c"
    msa = [("a", "AC-DE"), ("b", "ACwDE"), ("c", "AC-D-")]
    lines = a3m_from_msa(msa).splitlines()
    assert lines == [">a", "ACDE", ">b", "ACwDE", ">c", "ACD-"]
    # rows differ in length, yet all have the same 4 match states
    assert {sum(c.isupper() or c == "-" for c in row) for row in lines[1::2]} == {4}


def test_a3m_from_msa_refuses_rows_of_unequal_length() -> None:
    with pytest.raises(ValueError, match="b is not 3 columns"):
        a3m_from_msa([("a", "ACD"), ("b", "AC")])


def test_read_stockholm_joins_blocks_and_drops_gaps(tmp_path: Path) -> None:
    path = tmp_path / "fam.sto"
    path.write_text(
        "# STOCKHOLM 1.0\n#=GF ID fam\nx/1-5 AC..d\ny/2-6 A-CDE\n\nx/1-5 EF\ny/2-6 G.\n//\n"
    )
    assert read_stockholm(path) == [("x/1-5", "ACDEF"), ("y/2-6", "ACDEG")]


def test_read_stockholm_names_what_is_wrong(tmp_path: Path) -> None:
    fasta = tmp_path / "not.sto"
    fasta.write_text(">x\nACDE\n")
    with pytest.raises(StockholmError, match=r"not\.sto:1: no '# STOCKHOLM 1.0' header"):
        read_stockholm(fasta)
    broken = tmp_path / "broken.sto"
    broken.write_text("# STOCKHOLM 1.0\nx ACD EF\n//\n")
    with pytest.raises(StockholmError, match=r"broken\.sto:2: expected 'name aligned-sequence'"):
        read_stockholm(broken)


def test_evalues_refer_to_a_release_sized_database() -> None:
    argv = blastp_argv("blastp", Path("q.fa"), Path("db"), dbsize=200_000_000)
    assert argv[argv.index("-dbsize") + 1] == "200000000"
    assert "-dbsize" not in blastp_argv("blastp", Path("q.fa"), Path("db"))
    table = parse_hhr(HHR, "chain_1", db_profiles=16_000)
    assert table["evalue"].tolist() == pytest.approx([7.6e-65 * 16_000, 9.6e-06 * 16_000])


def test_profile_evidence_wins_over_weak_blast_but_not_over_confident_blast() -> None:
    # the same region: a weak BLAST hit (lower E-value, wrong family) and an HHsearch hit
    weak = evidence_table(
        [
            ("q", "domain_blast", "WRONG", 1e-8, np.nan, 0.22, 0.9, 1, 100, 0, 0),
            ("q", "hhsearch", "RIGHT", 1e-4, 0.99, 0.2, 0.9, 3, 98, 0, 0),
        ]
    )
    placed = partition_domains(weak, pd.Series({"q": 100}))
    assert placed["target"].tolist() == ["RIGHT"]
    strong = weak.assign(evalue=[1e-40, 1e-4], identity=[0.8, 0.2])
    assert partition_domains(strong, pd.Series({"q": 100}))["target"].tolist() == ["WRONG"]


def test_a_repeat_copy_needs_a_confident_copy_of_its_family_in_the_chain() -> None:
    rows = [
        ("q", "hhsearch", "FN3", 1e-6, 0.95, 0.2, 0.9, 1, 90, 0, 0),  # confident copy
        ("q", "hhsearch", "FN3", 0.5, 0.40, 0.2, 0.9, 101, 190, 0, 0),  # weak, P 1e-3
        ("q", "hhsearch", "FN3", 5.0, 0.20, 0.2, 0.9, 201, 290, 0, 0),  # P 0.05: too weak
        ("r", "hhsearch", "FN3", 0.5, 0.40, 0.2, 0.9, 1, 90, 0, 0),  # no anchor in chain r
    ]
    evidence = evidence_table(rows).assign(pvalue=[1e-8, 1e-3, 0.05, 1e-3])
    placed = partition_domains(evidence, pd.Series({"q": 300, "r": 100}))
    q = placed[placed["chain_id"] == "q"]
    assert q[["start", "end"]].values.tolist() == [[1, 90], [101, 190]]
    assert placed.loc[placed["chain_id"] == "r", "domain_number"].tolist() == [0]
    strict = PartitionRules(repeat_max_pvalue=1e-4)
    assert len(partition_domains(evidence, pd.Series({"q": 300, "r": 100}), strict)) == 2


def test_a_seed_library_without_members_left_is_refused(tmp_path: Path) -> None:
    seed = tmp_path / "fam.sto"
    seed.write_text("# STOCKHOLM 1.0\nQ/1-4 ACDE\nQ/9-12 ACDF\n//\n")
    with pytest.raises(ValueError, match=r"fam\.sto: no member left of family 1 \(fam\)"):
        write_seed_library({"1.1.1.1": seed}, tmp_path / "lib", exclude=("Q/",))
    assert not (tmp_path / "lib").exists()
