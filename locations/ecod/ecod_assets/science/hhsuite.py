"""HH-suite: profiles (A3M), the family-profile database, search command lines, ``.hhr``.

A profile is an A3M: match columns upper case or ``-``, insertions lower case (and absent from
rows that lack them), so rows differ in length wherever a member has an indel. Query profiles
are query-anchored (each row one BLAST alignment to the chain, ``a3m_profile``); reference
family profiles come from a multiple alignment of every member of the F-group
(``a3m_from_msa``: columns with fewer than half gaps are match states, as ``hhmake -M 50``).

A searchable database ``<db>`` is the ffindex pairs ``<db>_a3m``, ``<db>_hhm`` and
``<db>_cs219`` (``hhmake`` per profile, ``ffindex_build -s``, ``cstranslate``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# Profiles in a release-sized HH-suite database (one per F-group of a current ECOD release);
# HHsearch E-values are stated for it (P-value x profiles).
RELEASE_DB_PROFILES = 16_000
# ECOD production search parameters, except: -alt, a repeated domain (six fn3 repeats in one
# chain) is one template hit several times, so report up to 20 alignments per template; -p 5
# (ECOD: 50), so the weaker copies of a repeat reach the partition, which accepts them only
# beside a confident copy of the family.
HHSEARCH_ARGS = ["-p", "5", "-e", "0.001", "-alt", "20"]
MAX_HITS = 5000  # hits listed (-Z) and aligned (-B) per query, as ECOD production
MATCH_GAP_FRACTION = 0.5
REGISTRATION_COLUMNS = [
    "chain_id",
    "hit_number",
    "target",
    "probability",
    "evalue",
    "pvalue",
    "score",
    "aligned_cols",
    "identity",
    "q_start",
    "q_end",
    "t_start",
    "t_end",
    "target_length",
]


@dataclass(frozen=True)
class PairwiseAlignment:
    """One HSP against the anchor sequence: 1-based anchor start and the aligned strings."""

    name: str
    anchor_start: int
    anchor_aligned: str
    other_aligned: str


def a3m_profile(name: str, sequence: str, alignments: Iterable[PairwiseAlignment]) -> str:
    """Query-anchored A3M text of ``sequence`` and its pairwise ``alignments``."""
    rows = [f">{name}", sequence]
    for alignment in alignments:
        row: list[str] = ["-"] * (alignment.anchor_start - 1)
        for a, o in zip(alignment.anchor_aligned, alignment.other_aligned, strict=True):
            if a == "-":
                row.append(o.lower())  # insertion relative to the anchor
            else:
                row.append(o.upper() if o != "-" else "-")
        matched = sum(1 for c in row if c == "-" or c.isupper())
        row.extend("-" * (len(sequence) - matched))
        rows += [f">{alignment.name}", "".join(row)]
    return "\n".join(rows) + "\n"


def a3m_from_msa(
    rows: Sequence[tuple[str, str]], max_gap_fraction: float = MATCH_GAP_FRACTION
) -> str:
    """A3M text of a multiple alignment (``(name, aligned)`` rows of equal length): columns
    with fewer than ``max_gap_fraction`` gaps are match states (upper case or ``-``), the
    others insertions (lower case, gaps dropped). The first row names the profile."""
    if not rows:
        raise ValueError("an alignment needs at least one row")
    width = len(rows[0][1])
    uneven = [name for name, aligned in rows if len(aligned) != width]
    if uneven:
        raise ValueError(f"alignment rows differ in length ({uneven[0]} is not {width} columns)")
    gaps = [sum(aligned[c] in "-." for _, aligned in rows) / len(rows) for c in range(width)]
    match = [fraction < max_gap_fraction for fraction in gaps]
    lines = []
    for name, aligned in rows:
        row = (
            (a.upper() if a not in "-." else "-") if m else ("" if a in "-." else a.lower())
            for a, m in zip(aligned, match, strict=True)
        )
        lines += [f">{name}", "".join(row)]
    return "\n".join(lines) + "\n"


def hhmake_argv(program: str, a3m: Path, hhm: Path, name: str) -> list[str]:
    """``hhmake`` on an A3M (its upper/lower case marks the match states)."""
    return [program, "-i", str(a3m), "-o", str(hhm), "-name", name, "-v", "0"]


def ffindex_build_argv(program: str, prefix: Path, folder: Path) -> list[str]:
    return [program, "-s", f"{prefix}.ffdata", f"{prefix}.ffindex", str(folder)]


def cstranslate_argv(program: str, data_dir: Path, database: Path) -> list[str]:
    return [
        program,
        "-f",
        "-x",
        "0.3",
        "-c",
        "4",
        "-I",
        "a3m",
        "-i",
        f"{database}_a3m",
        "-o",
        f"{database}_cs219",
        "-A",
        str(data_dir / "cs219.lib"),
        "-D",
        str(data_dir / "context_data.crf"),
        "-b",
    ]


def hhsearch_argv(
    program: str,
    queries: Path,
    database: Path,
    results: Path,
    threads: int,
    max_mem_gb: float,
    max_hits: int = MAX_HITS,
) -> list[str]:
    """``hhsearch_omp`` over the ffindex ``queries`` (A3M entries), writing the ``.hhr`` of
    each query into the ffindex ``results`` under the query's name; ``max_hits`` hits listed
    and aligned per query (ECOD production: ``-Z 5000 -B 5000``)."""
    options = ["-cpu", str(threads), "-maxmem", f"{max_mem_gb:g}", "-v", "0", *HHSEARCH_ARGS]
    options += ["-Z", str(max_hits), "-B", str(max_hits)]
    return [program, "-i", str(queries), "-d", str(database), "-o", str(results), *options]


def read_ffindex(prefix: Path) -> dict[str, str]:
    """Entries of the ffindex pair ``<prefix>.ffindex`` / ``<prefix>.ffdata`` by name."""
    index, data = Path(f"{prefix}.ffindex"), Path(f"{prefix}.ffdata")
    if not index.exists() or not data.exists():
        return {}
    blob = data.read_bytes()
    entries = {}
    for line in index.read_text().splitlines():
        name, offset, length = line.split("\t")
        start = int(offset)
        entries[name] = blob[start : start + int(length)].rstrip(b"\x00").decode(errors="replace")
    return entries


def hhblits_argv(
    program: str, query: Path, database: Path, a3m_out: Path, threads: int, iterations: int = 2
) -> list[str]:
    return [
        program,
        "-i",
        str(query),
        "-d",
        str(database),
        "-oa3m",
        str(a3m_out),
        "-o",
        "/dev/null",
        "-n",
        str(iterations),
        "-cpu",
        str(threads),
        "-v",
        "0",
        "-e",
        "0.001",
    ]


_HIT_LINE = re.compile(
    r"^\s*(?P<no>\d+)\s+(?P<name>\S+).*?\s+(?P<prob>\d+(?:\.\d+)?)\s+(?P<evalue>\S+)\s+"
    r"(?P<pvalue>\S+)\s+(?P<score>-?\d+(?:\.\d+)?)\s+(?P<ss>-?\d+(?:\.\d+)?)\s+(?P<cols>\d+)\s+"
    r"(?P<qs>\d+)-(?P<qe>\d+)\s+(?P<ts>\d+)-(?P<te>\d+)\s*\(\s*(?P<tlen>\d+)\s*\)\s*$"
)
_IDENTITY = re.compile(r"Identities=\s*(\d+(?:\.\d+)?)%")


class HhrError(ValueError):
    """An ``.hhr`` file that does not have the expected layout."""


def parse_hhr(text: str, chain_id: str, db_profiles: int | None = None) -> pd.DataFrame:
    """The hit table of an ``.hhr`` result with identities from the alignment blocks.
    ``db_profiles``: E-values as P-value x this many profiles (a release-sized database)
    instead of the searched database's own size."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("No Hit"))
    except StopIteration:
        raise HhrError(f"hhr of {chain_id}: no 'No Hit' table; not an HHsearch result") from None
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        match = _HIT_LINE.match(line)
        if match is None:
            raise HhrError(f"hhr of {chain_id}: unreadable hit line {line.strip()[:60]!r}")
        g = match.groupdict()
        rows.append(
            [
                chain_id,
                int(g["no"]),
                g["name"],
                float(g["prob"]) / 100.0,
                float(g["evalue"]),
                float(g["pvalue"]),
                float(g["score"]),
                int(g["cols"]),
                float("nan"),
                int(g["qs"]),
                int(g["qe"]),
                int(g["ts"]),
                int(g["te"]),
                int(g["tlen"]),
            ]
        )
    identities = [float(m.group(1)) / 100.0 for m in _IDENTITY.finditer(text)]
    for row, identity in zip(rows, identities, strict=False):
        row[8] = identity
    table = pd.DataFrame(rows, columns=REGISTRATION_COLUMNS)
    if db_profiles:
        table["evalue"] = table["pvalue"] * db_profiles
    return table


def register_hhr(
    results: pd.DataFrame, db_profiles: int | None = None
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """(one hit table of every ``.hhr`` in ``results`` (chain_id, hhr), [(chain_id, error)]
    of those that do not read); ``db_profiles`` as in ``parse_hhr``."""
    tables, failures = [], []
    for chain_id, text in zip(results["chain_id"], results["hhr"], strict=True):
        try:
            tables.append(parse_hhr(text, chain_id, db_profiles))
        except HhrError as error:
            failures.append((chain_id, str(error)))
    table = pd.concat(tables, ignore_index=True) if tables else parse_hhr("No Hit\n", "")
    return table, failures
