"""BLAST+ command lines and parsing of their tabular output.

Searches follow ECOD production (``-evalue 0.002``, up to 5000 alignments) but ask for the
tabular format with the aligned strings (``qseq``, ``sseq``) instead of XML: the same HSPs,
an order of magnitude less to parse, and the alignment is what transfers domain boundaries
and builds query profiles.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

HIT_FIELDS = [
    "qseqid",
    "sseqid",
    "pident",
    "length",
    "qstart",
    "qend",
    "sstart",
    "send",
    "evalue",
    "bitscore",
    "qlen",
    "slen",
    "qseq",
    "sseq",
]
HIT_COLUMNS = {
    "qseqid": "chain_id",
    "sseqid": "target",
    "pident": "identity",
    "length": "aligned",
    "qstart": "q_start",
    "qend": "q_end",
    "sstart": "t_start",
    "send": "t_end",
    "qlen": "query_length",
    "slen": "target_length",
}
EVALUE = 0.002
MAX_ALIGNMENTS = 5000
# E-values depend on the database size: on a small library they are far smaller than on a real
# ECOD release. Searches state the size of a release (~1.1M domains of ~180 residues).
RELEASE_DB_RESIDUES = 200_000_000
# A BLAST hit is confident (its region needs no profile evidence) at or below this E-value
# (at the release's database size) and at or above this identity.
CONFIDENT_EVALUE, CONFIDENT_IDENTITY = 1e-10, 0.40


def makeblastdb_argv(program: str, fasta: Path, out: Path, title: str) -> list[str]:
    return [
        program,
        "-in",
        str(fasta),
        "-dbtype",
        "prot",
        "-out",
        str(out),
        "-title",
        title,
        "-parse_seqids",
    ]


def blastp_argv(
    program: str, query: Path, database: Path, threads: int = 1, dbsize: int | None = None
) -> list[str]:
    """blastp as ECOD runs it; ``dbsize`` (residues) sets the effective database size the
    E-values refer to (default: the database's own)."""
    size = ["-dbsize", str(dbsize)] if dbsize else []
    return [
        program,
        "-query",
        str(query),
        "-db",
        str(database),
        "-evalue",
        str(EVALUE),
        "-max_target_seqs",
        str(MAX_ALIGNMENTS),
        "-num_threads",
        str(threads),
        "-seg",
        "no",
        *size,
        "-outfmt",
        "6 " + " ".join(HIT_FIELDS),
    ]


def parse_hits(text: str) -> pd.DataFrame:
    """HSP table (one row per HSP) of blastp ``-outfmt '6 <HIT_FIELDS>'`` output."""
    if not text.strip():
        frame = pd.DataFrame({c: pd.Series(dtype=float) for c in HIT_FIELDS})
    else:
        frame = pd.read_csv(
            io.StringIO(text), sep="\t", names=HIT_FIELDS, dtype={"qseqid": str, "sseqid": str}
        )
    frame = frame.rename(columns=HIT_COLUMNS)
    frame["identity"] = frame["identity"].astype(float) / 100.0
    for column in ("q_start", "q_end", "t_start", "t_end", "query_length", "target_length"):
        frame[column] = frame[column].astype(np.int64)
    return frame


def confident(
    hits: pd.DataFrame, evalue: float = CONFIDENT_EVALUE, identity: float = CONFIDENT_IDENTITY
) -> pd.Series:
    """Mask of the hits strong enough that no profile search is needed where they align."""
    return (hits["evalue"] <= evalue) & (hits["identity"] >= identity)


def query_coverage(hits: pd.DataFrame, lengths: pd.Series) -> pd.Series:
    """Fraction of each chain's residues covered by the union of its HSP query ranges.

    ``lengths`` is indexed by chain id; chains without hits get 0.
    """
    covered = {}
    for chain_id, group in hits.groupby("chain_id"):
        mask = np.zeros(int(lengths[chain_id]) + 1, dtype=bool)
        for start, end in zip(group["q_start"], group["q_end"], strict=True):
            mask[start : end + 1] = True
        covered[chain_id] = mask[1:].sum() / lengths[chain_id]
    return pd.Series(covered, dtype=float).reindex(lengths.index, fill_value=0.0)


def needing_profiles(
    chains: pd.DataFrame,
    hits: pd.DataFrame,
    threshold: float,
    evalue: float = CONFIDENT_EVALUE,
    identity: float = CONFIDENT_IDENTITY,
) -> pd.DataFrame:
    """The rows of ``chains`` (chain_id, length, ...) whose coverage by confident ``hits``
    (chain and domain BLAST HSPs) is below ``threshold``: the chains ECOD gives profile
    evidence."""
    lengths = chains.set_index("chain_id")["length"]
    coverage = query_coverage(hits[confident(hits, evalue, identity)], lengths)
    return chains[chains["chain_id"].map(coverage) < threshold]


def aligned_positions(
    q_start: int, t_start: int, qseq: str, sseq: str
) -> tuple[np.ndarray, np.ndarray]:
    """Query and target residue numbers of each aligned (gap-free) column of an HSP."""
    q_step = np.frombuffer(qseq.encode(), dtype=np.uint8) != ord("-")
    t_step = np.frombuffer(sseq.encode(), dtype=np.uint8) != ord("-")
    q_pos = q_start + np.cumsum(q_step) - 1
    t_pos = t_start + np.cumsum(t_step) - 1
    both = q_step & t_step
    return q_pos[both], t_pos[both]
