"""The pure ECOD science: parsing, alignment bookkeeping, evidence, partition, accuracy."""

import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecod_assets.demo import demo_batch
from ecod_assets.science.accuracy import score
from ecod_assets.science.blast import aligned_positions, query_coverage
from ecod_assets.science.evidence import summarize_evidence
from ecod_assets.science.fasta import FastaError, parse_fasta, read_fasta, validate_chains
from ecod_assets.science.hhsuite import (
    PairwiseAlignment,
    a3m_profile,
    ffindex_build_argv,
    parse_hhr,
    read_ffindex,
)
from ecod_assets.science.partition import PartitionRules, partition_domains, quality_label
from ecod_assets.science.ranges import parse_range, range_length
from ecod_assets.science.reference import reference_chains
from platform_core.tools import ToolError, map_parallel, require_program, run_tool

PROTEIN = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("   \n\n", "empty file"),
        ("hello world\nthis is not fasta\n", "expected a '>' header line"),
        (f">a\n{PROTEIN}\n>a\n{PROTEIN}\n", "duplicate chain id (first at line 1)"),
        (f">a\n{PROTEIN[:30]}123{PROTEIN[30:]}\n", "non-amino-acid letter(s) '123'"),
        (">a\n" + "ACGT" * 30 + "\n", "only nucleotide letters"),
        (">a\nMKTAYIAKQR\n", "10 residues, shorter than the minimum 20"),
        (">a\n" + "MKTAYIAKQR" * 1001 + "\n", "10010 residues, longer than the maximum 10000"),
        (f">../etc\n{PROTEIN}\n", "invalid id"),
        (">\nMKT\n", "header without an id"),
    ],
)
def test_invalid_fasta_is_rejected_with_location(text: str, message: str) -> None:
    with pytest.raises(FastaError) as error:
        validate_chains(parse_fasta(text, "batch.fasta"), "batch.fasta")
    assert message in str(error.value)
    assert "batch.fasta" in str(error.value)


def test_binary_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "garbage.fasta"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(FastaError, match="binary data"):
        read_fasta(path)


def test_valid_fasta_keeps_ids_and_joins_lines() -> None:
    records = validate_chains(
        parse_fasta(f">q1 first chain\n{PROTEIN[:40]}\n{PROTEIN[40:]}*\n>q2\n{PROTEIN}\n", "x"), "x"
    )
    assert [(r.id, r.description, r.sequence) for r in records] == [
        ("q1", "first chain", PROTEIN),
        ("q2", "", PROTEIN),
    ]


def test_ranges_parse_segments_and_count_residues() -> None:
    assert parse_range("A:10-20,A:30-35") == ((10, 20), (30, 35))
    assert range_length(parse_range("A:10-20,A:30-35")) == 11 + 6
    with pytest.raises(ValueError, match="reversed"):
        parse_range("20-10")


def test_aligned_positions_skip_gaps() -> None:
    # query  5 A C - D E 8 ; target 10 A - G D E 13
    q, t = aligned_positions(5, 10, "AC-DE", "A-GDE")
    assert q.tolist() == [5, 7, 8]
    assert t.tolist() == [10, 12, 13]


def test_a3m_profile_marks_insertions_lower_case() -> None:
    text = a3m_profile(
        "q",
        "ACDEFG",
        [PairwiseAlignment("hit", anchor_start=2, anchor_aligned="CD-EF", other_aligned="CDwE-")],
    )
    assert text.splitlines() == [">q", "ACDEFG", ">hit", "-CDwE--"]


HHR = """\
Query         chain_1
Match_columns 180
No_of_seqs    3 out of 3

 No Hit                             Prob E-value P-value  Score    SS Cols Query HMM  Template HMM
  1 e9001A2                        100.0 3.8E-60 7.6E-65  402.3   0.0  108    7-116     2-109 (109)
  2 e900pA3                         21.5   0.048 9.6E-06   31.0   0.0   61  127-187     4-64 (64)

No 1
>e9001A2
Probab=100.00  E-value=3.8e-60  Score=402.30  Aligned_cols=108  Identities=52%  Similarity=0.9
No 2
>e900pA3
Probab=21.50  E-value=0.048  Score=31.00  Aligned_cols=61  Identities=18%  Similarity=0.1
"""


def test_parse_hhr_reads_the_hit_table_and_identities() -> None:
    table = parse_hhr(HHR, "chain_1")
    assert table["target"].tolist() == ["e9001A2", "e900pA3"]
    assert table["probability"].tolist() == [1.0, 0.215]
    assert table["evalue"].tolist() == [3.8e-60, 0.048]
    assert table[["q_start", "q_end", "t_start", "t_end", "target_length"]].values.tolist() == [
        [7, 116, 2, 109, 109],
        [127, 187, 4, 64, 64],
    ]
    assert table["identity"].tolist() == [0.52, 0.18]


def _reference() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ecod_domain_id": ["e9aaaA1", "e9aaaA2"],
            "chain_id": ["9aaa_A", "9aaa_A"],
            "seqid_range": ["A:1-10", "A:11-20"],
            "sequence": ["ACDEFGHIKL", "MNPQRSTVWY"],
            "f_id": ["1.1.1.1", "2.1.1.1"],
            "x_name": ["x1", "x2"],
            "h_name": ["h1", "h2"],
            "t_name": ["t1", "t2"],
            "f_name": ["f1", "f2"],
        }
    )


def test_reference_chain_is_assembled_from_domains() -> None:
    assert reference_chains(_reference()) == {"9aaa_A": "ACDEFGHIKLMNPQRSTVWY"}


def test_chain_blast_carries_each_reference_domain_onto_the_query() -> None:
    # Query residues 101-118 align to chain residues 3-20 with one query insertion after
    # target 12 ("x") and one target residue (15) deleted in the query.
    hit = pd.DataFrame(
        [
            {
                "chain_id": "q",
                "target": "9aaa_A",
                "identity": 0.9,
                "evalue": 1e-9,
                "bitscore": 50.0,
                "q_start": 101,
                "q_end": 118,
                "t_start": 3,
                "t_end": 20,
                "query_length": 200,
                "target_length": 20,
                "qseq": "DEFGHIKLMNxPQ-STVWY",
                "sseq": "DEFGHIKLMN-PQRSTVWY",
            }
        ]
    )
    evidence = summarize_evidence(_reference(), hit, None, None).set_index("target")
    first, second = evidence.loc["e9aaaA1"], evidence.loc["e9aaaA2"]
    # Domain 1 (chain 1-10): aligned 3-10 -> query 101-108; 2 residues before are unaligned.
    assert (first.q_start, first.q_end, first.n_unaligned, first.c_unaligned) == (101, 108, 2, 0)
    assert first.coverage == pytest.approx(8 / 10)
    assert first.f_id == "1.1.1.1" and first.h_group == "1.1" and first.type == "chain_blast"
    # Domain 2 (chain 11-20): query 109-118 (the insertion at 111 lies inside); target 15
    # is deleted, so 9 of its 10 residues are aligned.
    assert (second.q_start, second.q_end) == (109, 118)
    assert second.coverage == pytest.approx(9 / 10)


def evidence_table(rows: list[tuple]) -> pd.DataFrame:
    """Evidence rows (columns below); each target is its own F-group, no HHsearch P-value
    unless a ``pvalue`` column is added."""
    columns = [
        "chain_id",
        "type",
        "target",
        "evalue",
        "probability",
        "identity",
        "coverage",
        "q_start",
        "q_end",
        "n_unaligned",
        "c_unaligned",
    ]
    table = pd.DataFrame(rows, columns=columns)
    return table.assign(f_id=table["target"], pvalue=np.nan)


def test_partition_trims_overlaps_and_extends_to_neighbours() -> None:
    evidence = evidence_table(
        [
            ("q", "domain_blast", "A", 1e-30, np.nan, 0.9, 0.95, 10, 100, 5, 5),
            # overlaps A by 11 of 81 residues: trimmed to 101-170, then extended by 8 at the
            # C-terminus up to the chain end (175)
            ("q", "hhsearch", "B", 1e-10, 0.99, 0.3, 0.9, 90, 170, 30, 8),
            # mostly inside A: rejected
            ("q", "domain_blast", "C", 1e-5, np.nan, 0.5, 0.9, 20, 90, 0, 0),
            # HHsearch below the probability floor: ignored
            ("r", "hhsearch", "D", 1e-3, 0.5, 0.2, 0.9, 1, 50, 0, 0),
        ]
    )
    partition = partition_domains(evidence, pd.Series({"q": 175, "r": 60}))
    q = partition[partition["chain_id"] == "q"]
    assert q[["domain_number", "start", "end", "target"]].values.tolist() == [
        [1, 5, 100, "A"],  # extended 5 residues N-terminally
        [2, 101, 175, "B"],
    ]
    assert q["quality"].iloc[0] == "good"  # (96 + 75) / 175 = 0.98
    r = partition[partition["chain_id"] == "r"]
    assert r[["domain_number", "quality"]].values.tolist() == [[0, "no_domains"]]


def test_partition_respects_minimum_reference_coverage() -> None:
    evidence = evidence_table([("q", "domain_blast", "A", 1e-30, np.nan, 0.9, 0.4, 1, 60, 0, 0)])
    assert partition_domains(evidence, pd.Series({"q": 100}))["domain_number"].tolist() == [0]
    relaxed = PartitionRules(min_coverage=0.3)
    assert partition_domains(evidence, pd.Series({"q": 100}), relaxed)[
        "domain_number"
    ].tolist() == [1]


@pytest.mark.parametrize(
    ("coverage", "domains", "label"),
    [
        (0.8, 1, "good"),
        (0.79, 2, "low_coverage"),
        (0.5, 1, "low_coverage"),
        (0.49, 1, "fragmentary"),
        (0.0, 0, "no_domains"),
    ],
)
def test_quality_labels_follow_ecod_thresholds(coverage: float, domains: int, label: str) -> None:
    assert quality_label(coverage, domains) == label


def test_accuracy_counts_boundaries_within_tolerance_and_families() -> None:
    truth = pd.DataFrame(
        [
            ("a", 1, 1, 100, "1.1.1.1"),
            ("a", 2, 110, 200, "2.1.1.1"),
            ("b", 1, 1, 80, "1.1.1.1"),
            ("c", pd.NA, pd.NA, pd.NA, pd.NA),
        ],
        columns=["chain_id", "domain_number", "start", "end", "f_id"],
    )
    predicted = pd.DataFrame(
        [
            ("a", 15, 95, "1.1.1.1"),  # found, right family
            ("a", 131, 200, "2.1.1.1"),  # start 21 residues off: not found
            ("b", 1, 100, "9.9.9.9"),
        ],  # found (end 20 off), wrong family
        columns=["chain_id", "start", "end", "f_id"],
    )
    result = score(predicted, truth)
    assert (result.true_domains, result.found, result.correct_family) == (3, 2, 1)
    assert result.boundary == pytest.approx(2 / 3) and result.family == pytest.approx(1 / 2)
    assert (result.empty_chains, result.empty_chains_correct) == (1, 1)


def test_query_coverage_is_the_union_of_hsp_ranges() -> None:
    hits = pd.DataFrame({"chain_id": ["a", "a"], "q_start": [1, 41], "q_end": [50, 60]})
    coverage = query_coverage(hits, pd.Series({"a": 100, "b": 40}))
    assert coverage.to_dict() == {"a": 0.6, "b": 0.0}


def test_demo_batch_is_deterministic_and_truth_matches_sequences() -> None:
    fasta, truth = demo_batch(30, seed=5)
    again, truth_again = demo_batch(30, seed=5)
    assert fasta == again and truth.equals(truth_again)
    lengths = {r.id: len(r.sequence) for r in parse_fasta(fasta, "demo")}
    assert set(truth["chain_id"]) == set(lengths)
    domains = truth.dropna(subset=["start"])
    assert (domains["end"].astype(int) <= domains["chain_id"].map(lengths)).all()
    assert (domains.groupby("chain_id")["domain_number"].max() <= 4).all()
    assert domains["f_id"].str.fullmatch(r"\d+\.\d+\.\d+\.\d+").all()


def _script(tmp_path: Path, name: str, body: str) -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_run_tool_reports_the_stderr_tail_after_retries(tmp_path: Path) -> None:
    argv = _script(
        tmp_path,
        "crash.py",
        """\
        import pathlib, sys
        counter = pathlib.Path(__file__).with_suffix(".count")
        counter.write_text(str(int(counter.read_text() or 0) + 1) if counter.exists() else "1")
        print("fatal: database is corrupt", file=sys.stderr)
        sys.exit(3)
        """,
    )
    with pytest.raises(ToolError) as error:
        run_tool(argv, timeout=30, retries=2, backoff_seconds=0.01)
    assert "exited with status 3" in str(error.value)
    assert "fatal: database is corrupt" in error.value.stderr_tail
    assert (tmp_path / "crash.count").read_text() == "3"  # first try + 2 retries


def test_run_tool_retries_until_success(tmp_path: Path) -> None:
    argv = _script(
        tmp_path,
        "flaky.py",
        """\
        import pathlib, sys
        counter = pathlib.Path(__file__).with_suffix(".count")
        n = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(n))
        sys.exit(0 if n >= 2 else 1)
        """,
    )
    run_tool(argv, timeout=30, retries=2, backoff_seconds=0.01)
    assert (tmp_path / "flaky.count").read_text() == "2"


def test_run_tool_kills_a_tool_that_overruns_its_timeout(tmp_path: Path) -> None:
    argv = _script(
        tmp_path,
        "hang.py",
        "import sys, time\nprint('started', file=sys.stderr, flush=True)\ntime.sleep(60)\n",
    )
    started = time.perf_counter()
    with pytest.raises(ToolError) as error:
        run_tool(argv, timeout=0.5, retries=1, backoff_seconds=0.01)
    assert time.perf_counter() - started < 10
    assert "timed out after 0.5 s" in str(error.value) and error.value.attempts == 2
    assert "started" in error.value.stderr_tail


def test_run_tool_measures_the_tools_cpu_time(tmp_path: Path) -> None:
    argv = _script(
        tmp_path,
        "busy.py",
        "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n",
    )
    result = run_tool(argv, timeout=30)
    assert result.cpu_seconds >= 0.3


def test_map_parallel_starts_costliest_first_and_keeps_input_order() -> None:
    started: list[int] = []

    def work(x: int) -> int:
        started.append(x)
        time.sleep(0.01 * x)
        return x * 10

    assert map_parallel(work, [1, 5, 2, 4], workers=2, cost=float) == [10, 50, 20, 40]
    assert started[:2] == [5, 4] or started[:2] == [4, 5]


def test_read_ffindex_returns_each_entry_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "entries"
    folder.mkdir()
    (folder / "q0.a3m").write_text(">q0\nACDE\n")
    (folder / "q1.a3m").write_text(">q1\nFGHIK\n")
    prefix = tmp_path / "db"
    run_tool(ffindex_build_argv(require_program("ffindex_build"), prefix, folder), timeout=30)
    assert read_ffindex(prefix) == {"q0.a3m": ">q0\nACDE\n", "q1.a3m": ">q1\nFGHIK\n"}
    assert read_ffindex(tmp_path / "missing") == {}
