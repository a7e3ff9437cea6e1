"""An ECOD reference release: the domains file, the domain sequences, the reference chains.

``ecod.latest.domains.txt`` is tab-separated with ``#`` comment lines; the last comment line
names the columns (uid, ecod_domain_id, manual_rep, f_id, pdb, chain, pdb_range, seqid_range,
unp_acc, arch_name, x_name, h_name, t_name, f_name, asm_status, ligand). ``f_id`` is
``X.H.T.F``. Reference chains (the BLAST chain database) are assembled from the domains of each
``pdb`` + ``chain`` placed at their ``seqid_range`` positions, unassigned residues as ``X``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecod_assets.science.fasta import FastaError, FastaRecord, read_fasta
from ecod_assets.science.ranges import parse_range, range_length

DOMAIN_COLUMNS = [
    "uid",
    "ecod_domain_id",
    "manual_rep",
    "f_id",
    "pdb",
    "chain",
    "pdb_range",
    "seqid_range",
    "unp_acc",
    "arch_name",
    "x_name",
    "h_name",
    "t_name",
    "f_name",
    "asm_status",
    "ligand",
]
HIERARCHY_COLUMNS = ["f_id", "x_name", "h_name", "t_name", "f_name"]


class ReferenceError(ValueError):
    """The reference release is malformed or inconsistent; the message says where."""


def read_domains(path: Path) -> pd.DataFrame:
    """The domains table (all columns as strings, ``manual_rep`` as bool, ``length`` added)."""
    text = path.read_text(errors="replace")
    header: list[str] | None = None
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            fields = line.lstrip("#").strip().split("\t")
            if "ecod_domain_id" in fields:
                header = fields
        elif line.strip():
            body.append(line)
    if header is None:
        raise ReferenceError(
            f"{path}: no '#uid<TAB>ecod_domain_id<TAB>...' column header; not an ECOD domains file"
        )
    missing = [c for c in DOMAIN_COLUMNS if c not in header]
    if missing:
        raise ReferenceError(f"{path}: column header lacks {', '.join(missing)}")
    if not body:
        raise ReferenceError(f"{path}: no domain rows")
    table = pd.read_csv(
        io.StringIO("\n".join(body)), sep="\t", names=header, dtype=str, keep_default_na=False
    )
    for number, row in enumerate(table.itertuples(index=False), start=1):
        where = f"{path}: domain row {number} ({row.ecod_domain_id})"
        if len(row.f_id.split(".")) != 4:
            raise ReferenceError(f"{where}: f_id {row.f_id!r} is not X.H.T.F")
        try:
            parse_range(row.seqid_range)
        except ValueError as error:
            raise ReferenceError(f"{where}: {error}") from None
    if table["ecod_domain_id"].duplicated().any():
        first = table.loc[table["ecod_domain_id"].duplicated(), "ecod_domain_id"].iloc[0]
        raise ReferenceError(f"{path}: duplicate ecod_domain_id {first}")
    table["manual_rep"] = table["manual_rep"].str.upper().isin(["AUTO_REP", "MANUAL_REP", "TRUE"])
    table["length"] = [range_length(parse_range(r)) for r in table["seqid_range"]]
    table["chain_id"] = table["pdb"] + "_" + table["chain"]
    return table


def attach_sequences(
    domains: pd.DataFrame, records: list[FastaRecord], source: str
) -> pd.DataFrame:
    """Add each domain's sequence, matching FASTA ids to ecod_domain_id or uid (ECOD-style
    ``uid|ecod_domain_id|...`` headers accepted). Every domain must have a sequence of the
    length its seqid_range says."""
    by_name: dict[str, str] = {}
    for record in records:
        for token in record.id.split("|"):
            by_name.setdefault(token, record.sequence)
    sequences = [
        by_name.get(domain_id) or by_name.get(uid)
        for domain_id, uid in zip(domains["ecod_domain_id"], domains["uid"], strict=True)
    ]
    missing = [d for d, s in zip(domains["ecod_domain_id"], sequences, strict=True) if not s]
    if missing:
        raise FastaError(
            f"{source}: {len(missing)} domain(s) of the domains file have no sequence "
            f"(first: {', '.join(missing[:5])})"
        )
    table = domains.assign(sequence=sequences)
    wrong = table[table["sequence"].str.len() != table["length"]]
    if not wrong.empty:
        row = wrong.iloc[0]
        raise ReferenceError(
            f"{source}: domain {row.ecod_domain_id} has {len(row.sequence)} residues but its "
            f"seqid_range {row.seqid_range} covers {row.length} ({len(wrong)} such domain(s))"
        )
    return table


def read_release(domains_path: Path, fasta_path: Path) -> pd.DataFrame:
    """An ECOD release: its domains file with each domain's sequence from its FASTA."""
    return attach_sequences(read_domains(domains_path), read_fasta(fasta_path), str(fasta_path))


def reference_chains(domains: pd.DataFrame) -> dict[str, str]:
    """Chain id (``pdb_chain``) -> sequence assembled from its domains; gaps are ``X``."""
    chains: dict[str, str] = {}
    for chain_id, group in domains.groupby("chain_id", sort=True):
        residues: dict[int, str] = {}
        for seqid_range, sequence in zip(group["seqid_range"], group["sequence"], strict=True):
            positions = [
                p for start, end in parse_range(seqid_range) for p in range(start, end + 1)
            ]
            residues.update(zip(positions, sequence, strict=True))
        chains[str(chain_id)] = "".join(residues.get(p, "X") for p in range(1, max(residues) + 1))
    return chains


@dataclass(frozen=True)
class ReleaseDomain:
    """A domain to write into a release: its family, names (X, H, T, F) and sequence."""

    f_id: str
    names: tuple[str, str, str, str]
    sequence: str
    representative: bool = False


def format_release(
    chains: Sequence[Sequence[ReleaseDomain]], comments: Sequence[str], first_uid: int = 100001
) -> tuple[str, list[tuple[str, str]]]:
    """(domains-file text, FASTA records) of a release whose reference chains hold the given
    domains in order; chain ``n`` is pdb ``9xxx`` (base 36), chain A, domains ``e<pdb>A<k>``."""
    rows, fasta = [], []
    uid = first_uid
    for chain_number, domains in enumerate(chains, start=1):
        pdb = f"9{np.base_repr(chain_number, 36).lower():0>3}"
        start = 1
        for number, domain in enumerate(domains, start=1):
            domain_id, end = f"e{pdb}A{number}", start + len(domain.sequence) - 1
            rep = "MANUAL_REP" if domain.representative else "NOT_REP"
            span = f"A:{start}-{end}"
            location = [pdb, "A", span, span, "NA", "demo architecture"]
            tail = ["NOT_DOMAIN_ASSEMBLY", "NO_LIGANDS_4A"]
            rows.append([str(uid), domain_id, rep, domain.f_id, *location, *domain.names, *tail])
            fasta.append((f"{uid}|{domain_id}|{domain.f_id}", domain.sequence))
            uid, start = uid + 1, end + 1
    header = [f"# {line}" for line in comments] + ["#" + "\t".join(DOMAIN_COLUMNS)]
    return "\n".join(header + ["\t".join(r) for r in rows]) + "\n", fasta


def family_representatives(domains: pd.DataFrame) -> pd.DataFrame:
    """One domain per F-group: a manual representative if there is one, else the longest."""
    ranked = domains.sort_values(
        ["f_id", "manual_rep", "length", "ecod_domain_id"], ascending=[True, False, False, True]
    )
    return ranked.drop_duplicates("f_id").reset_index(drop=True)
