"""HMMER 3: family HMMs from the F-group alignments, ``hmmscan`` command lines, ``--domtblout``.

A family HMM is ``hmmbuild`` on the same multiple alignment as the family's HH-suite profile
(aligned FASTA), so both profile methods see the same family. ``hmmscan`` scores one query
sequence against every family HMM and parses it into domains itself (HMMER's multi-domain
decoding), which is how later domains of a multi-domain chain and further copies of a
repeat are found. Its independent E-value (i-Evalue) is the domain's P-value times ``-Z``,
the number of profiles of a release-sized database, as HHsearch E-values are here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# The value of HMMER's own inclusion thresholds (--incE, --incdomE: 0.01), applied here to
# the i-Evalue stated for a release-sized database (stricter than HMMER's c-Evalue): a domain
# at or below it is evidence.
DOMAIN_MAX_EVALUE = 0.01
DOMTBL_COLUMNS = [
    "chain_id",
    "target",
    "target_length",
    "query_length",
    "evalue",
    "pvalue",
    "c_evalue",
    "score",
    "t_start",
    "t_end",
    "q_start",
    "q_end",
    "env_start",
    "env_end",
]


class DomtblError(ValueError):
    """A ``--domtblout`` line without HMMER 3's 23 columns, or with text where a number
    belongs."""


def hmmbuild_argv(program: str, msa: Path, hmm: Path, name: str) -> list[str]:
    """``hmmbuild`` on an aligned FASTA (``--symfrac 0.5``, its default, picks match states,
    as ``hhmake -M 50`` does for the HH-suite profile)."""
    return [
        program,
        "--amino",
        "--informat",
        "afa",
        "--cpu",
        "1",
        "-n",
        name,
        "-o",
        "/dev/null",
        str(hmm),
        str(msa),
    ]


def hmmpress_argv(program: str, database: Path) -> list[str]:
    return [program, "-f", str(database)]


def hmmscan_argv(
    program: str, database: Path, queries: Path, domtbl: Path, db_profiles: int
) -> list[str]:
    """``hmmscan`` of a FASTA of queries against a pressed HMM database, domains to
    ``domtbl``; ``db_profiles`` (``-Z``): E-values stated for a database of that many
    profiles instead of the searched one."""
    return [
        program,
        "--cpu",
        "1",
        "--noali",
        "-o",
        "/dev/null",
        "-Z",
        str(db_profiles),
        "--domtblout",
        str(domtbl),
        str(database),
        str(queries),
    ]


def parse_domtblout(text: str, db_profiles: int) -> pd.DataFrame:
    """One row per domain (DOMTBL_COLUMNS) of a search run with ``-Z db_profiles``:
    ``evalue`` is the i-Evalue, ``pvalue`` the domain's P-value against one profile (i-Evalue
    / ``db_profiles``), ``t_*`` the HMM match-state range, ``q_*`` the aligned query range and
    ``env_*`` its envelope."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(maxsplit=22)
        if len(fields) < 22:
            raise DomtblError(f"domtblout line {number}: {len(fields)} columns, expected 23")
        try:
            rows.append(
                [
                    fields[3],
                    fields[0],
                    int(fields[2]),
                    int(fields[5]),
                    float(fields[12]),
                    float(fields[12]) / db_profiles,
                    float(fields[11]),
                    float(fields[13]),
                    int(fields[15]),
                    int(fields[16]),
                    int(fields[17]),
                    int(fields[18]),
                    int(fields[19]),
                    int(fields[20]),
                ]
            )
        except ValueError:
            raise DomtblError(f"domtblout line {number}: a number column is not a number") from None
    return pd.DataFrame(rows, columns=DOMTBL_COLUMNS)


def greedy_domains(hits: pd.DataFrame, max_evalue: float = DOMAIN_MAX_EVALUE) -> pd.DataFrame:
    """Plain HMMER domain assignment (the baseline profile evidence is compared with): per
    chain, envelopes at or below ``max_evalue`` taken best first, each kept only if it
    overlaps none kept before. Columns chain_id, target, start, end (the envelope), evalue."""
    kept: list[dict] = []
    placed: dict[str, list[tuple[int, int]]] = {}
    significant = hits[hits["evalue"] <= max_evalue].sort_values(["chain_id", "evalue"])
    for row in significant.to_dict("records"):
        spans = placed.setdefault(row["chain_id"], [])
        if any(row["env_start"] <= end and start <= row["env_end"] for start, end in spans):
            continue
        spans.append((row["env_start"], row["env_end"]))
        kept.append(
            {
                "chain_id": row["chain_id"],
                "target": row["target"],
                "start": row["env_start"],
                "end": row["env_end"],
                "evalue": row["evalue"],
            }
        )
    return pd.DataFrame(kept, columns=["chain_id", "target", "start", "end", "evalue"])
