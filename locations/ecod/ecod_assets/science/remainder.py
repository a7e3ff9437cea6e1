"""The second profile pass: search again what the first partition left uncovered.

HHsearch's alternative alignments of a multi-domain chain often cover only part of a later
domain, and a single-sequence query's score is judged against the whole chain's length. As
domain parsers do (HMMER's search of what remains after a domain is found), each stretch of
a chain that the first partition left without a domain is cut out and searched alone; its
hits are then stated in the chain's own residue numbers and join the chain's evidence.

A segment's id is ``<chain_id>@<offset>`` (``@`` never occurs in a chain id): residue ``i``
of the segment is residue ``offset + i`` of the chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from ecod_assets.science import search
from ecod_assets.science.hhsuite import register_hhr
from ecod_assets.science.tools import Limits, Programs

# Shorter stretches rarely hold a domain that covers half of a reference domain.
MIN_SEGMENT_LENGTH = 40  # residues
SEGMENT_SEPARATOR = "@"
QUERY_COLUMNS = ("q_start", "q_end", "env_start", "env_end")
NO_ALIGNMENTS = pd.DataFrame(columns=["chain_id", "target", "q_start", "qseq", "sseq"])


def uncovered_segments(
    partition: pd.DataFrame, chains: pd.DataFrame, min_length: int = MIN_SEGMENT_LENGTH
) -> pd.DataFrame:
    """Segments (chain_id = ``<chain>@<offset>``, sequence, length) of each chain in
    ``chains`` (chain_id, sequence) that no domain of ``partition`` (rows of
    ``partition_domains``; chains absent from it have no domain) covers, of at least
    ``min_length`` residues. A chain without any domain gives none: searched whole, it was
    the first pass's query already."""
    placed = partition[partition["domain_number"] > 0].sort_values("start")
    spans = {
        c: [(int(s), int(e)) for s, e in zip(g["start"], g["end"], strict=True)]
        for c, g in placed.groupby("chain_id")
    }
    rows = []
    for chain_id, sequence in zip(chains["chain_id"], chains["sequence"], strict=True):
        free_from = 1
        for start, end in [*spans.get(chain_id, []), (len(sequence) + 1, len(sequence) + 1)]:
            whole = free_from == 1 and start == len(sequence) + 1
            if start - free_from >= min_length and not whole:
                piece = sequence[free_from - 1 : start - 1]
                rows.append((f"{chain_id}{SEGMENT_SEPARATOR}{free_from - 1}", piece, len(piece)))
            free_from = max(free_from, end + 1)
    return pd.DataFrame(rows, columns=["chain_id", "sequence", "length"])


def segment_chains(ids: pd.Series) -> pd.Series:
    """The chain id of each ``<chain>@<offset>`` segment id (a chain id stays as it is)."""
    return ids.astype(str).str.rsplit(SEGMENT_SEPARATOR, n=1).str[0]


def in_chain_coordinates(hits: pd.DataFrame) -> pd.DataFrame:
    """Hits of segments (chain_id ``<chain>@<offset>``) with the chain's id and its residue
    numbers in every query range column present."""
    if hits.empty:
        return hits
    offset = hits["chain_id"].str.rsplit(SEGMENT_SEPARATOR, n=1).str[1].astype(int)
    shifted = {c: hits[c] + offset for c in QUERY_COLUMNS if c in hits}
    return hits.assign(chain_id=segment_chains(hits["chain_id"]), **shifted)


def search_segments(
    segments: pd.DataFrame,
    hh_db: Path,
    hmm_db: Path,
    programs: Programs,
    limits: Limits,
    max_mem_gb: float,
    max_hits: int,
    db_profiles: int,
    chunk_size: int,
    progress: search.Progress | None = None,
) -> search.StageResult:
    """HHsearch (single-sequence query profiles) and hmmscan of each segment (chain_id,
    sequence): one table of both tools' hits (``type`` hhsearch or hmmscan) in the chains'
    residue numbers; a failed segment is a failure of its ``<chain>@<offset>`` id.
    ``progress`` counts each segment twice (one search per tool)."""
    profiles = search.blast_profiles(segments, NO_ALIGNMENTS)
    hhr = search.hhsearch_chains(profiles, hh_db, programs, limits, max_mem_gb, max_hits, progress)
    registered, unreadable = register_hhr(hhr.table, db_profiles)
    hmm = search.hmmscan_chains(
        segments, hmm_db, programs, limits, chunk_size, db_profiles, progress
    )
    table = pd.concat(
        [
            in_chain_coordinates(registered).assign(type="hhsearch"),
            in_chain_coordinates(hmm.table).assign(type="hmmscan"),
        ],
        ignore_index=True,
    )
    failures = pd.concat(
        [hhr.failures, hmm.failures, pd.DataFrame(unreadable, columns=search.FAILURE_COLUMNS)],
        ignore_index=True,
    ).drop_duplicates("chain_id")  # a segment fails once, whichever tool failed
    return search.StageResult(table, failures, hhr.cpu_seconds + hmm.cpu_seconds)


def with_second_pass(
    first: pd.DataFrame | None, second: pd.DataFrame | None, kind: Literal["hhsearch", "hmmscan"]
) -> pd.DataFrame | None:
    """A first-pass hit table of one tool (None: not searched) with the second pass's hits
    of that tool (``search_segments`` rows of type ``kind``) in its columns."""
    if second is None or second.empty:
        return first
    added = second[second["type"] == kind]
    if first is None:
        return added
    return pd.concat([first, added[[c for c in first.columns if c in added]]], ignore_index=True)
