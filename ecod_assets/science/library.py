"""Building the searchable reference: BLAST chain and domain databases, HH-suite family profiles.

Layout under ``out``::

    domains.fasta, chains.fasta       sequences (ids: ecod_domain_id, pdb_chain)
    blast/domains.*, blast/chains.*   makeblastdb databases
    hh/a3m/<rep>.a3m, hh/hhm/<rep>.hhm one profile per F-group, named by its representative
    hh/families_{a3m,hhm,cs219}.ff*   the HH-suite database ``hh/families``

A family profile aligns every member of the F-group to the representative with BLAST
(query-anchored A3M), so the profile carries the family's variation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ecod_assets.science.blast import blastp_argv, makeblastdb_argv, parse_hits
from ecod_assets.science.fasta import format_fasta
from ecod_assets.science.hhsuite import (
    PairwiseAlignment,
    a3m_profile,
    cstranslate_argv,
    ffindex_build_argv,
    hhmake_argv,
)
from ecod_assets.science.reference import family_representatives, reference_chains
from ecod_assets.science.tools import Limits, Programs, map_parallel


@dataclass(frozen=True)
class LibraryPaths:
    root: Path

    @property
    def chain_db(self) -> Path:
        return self.root / "blast" / "chains"

    @property
    def domain_db(self) -> Path:
        return self.root / "blast" / "domains"

    @property
    def hh_db(self) -> Path:
        return self.root / "hh" / "families"

    @property
    def domains_table(self) -> Path:
        return self.root / "domains.parquet"


def family_alignments(
    reps: pd.DataFrame, hits: pd.DataFrame, domains: pd.DataFrame
) -> dict[str, list[PairwiseAlignment]]:
    """Per representative, its BLAST alignments to the other members of its F-group."""
    family_of = domains.set_index("ecod_domain_id")["f_id"]
    rep_family = reps.set_index("ecod_domain_id")["f_id"]
    same = hits[
        (hits["chain_id"] != hits["target"])
        & (hits["target"].map(family_of) == hits["chain_id"].map(rep_family))
    ].drop_duplicates(["chain_id", "target"])  # best HSP per member
    alignments: dict[str, list[PairwiseAlignment]] = {rep: [] for rep in reps["ecod_domain_id"]}
    for row in same.itertuples(index=False):
        alignments[row.chain_id].append(
            PairwiseAlignment(row.target, row.q_start, row.qseq, row.sseq)
        )
    return alignments


def build_library(domains: pd.DataFrame, out: Path, programs: Programs, limits: Limits) -> float:
    """Write the databases for ``domains`` (with sequences) under ``out``; CPU seconds used."""
    paths = LibraryPaths(out)
    (out / "blast").mkdir(parents=True, exist_ok=True)
    domain_fasta, chain_fasta = out / "domains.fasta", out / "chains.fasta"
    domain_fasta.write_text(
        format_fasta(list(zip(domains["ecod_domain_id"], domains["sequence"], strict=True)))
    )
    chain_fasta.write_text(format_fasta(list(reference_chains(domains).items())))
    cpu = limits.run(
        makeblastdb_argv(programs.makeblastdb, domain_fasta, paths.domain_db, "ECOD domains")
    ).cpu_seconds
    cpu += limits.run(
        makeblastdb_argv(programs.makeblastdb, chain_fasta, paths.chain_db, "ECOD chains")
    ).cpu_seconds

    reps = family_representatives(domains)
    rep_fasta = out / "representatives.fasta"
    rep_fasta.write_text(
        format_fasta(list(zip(reps["ecod_domain_id"], reps["sequence"], strict=True)))
    )
    search = limits.run(blastp_argv(programs.blastp, rep_fasta, paths.domain_db, limits.workers))
    cpu += search.cpu_seconds
    alignments = family_alignments(reps, parse_hits(search.stdout), domains)

    a3m_dir, hhm_dir = out / "hh" / "a3m", out / "hh" / "hhm"
    a3m_dir.mkdir(parents=True, exist_ok=True)
    hhm_dir.mkdir(parents=True, exist_ok=True)
    for rep, sequence in zip(reps["ecod_domain_id"], reps["sequence"], strict=True):
        (a3m_dir / f"{rep}.a3m").write_text(a3m_profile(rep, sequence, alignments[rep]))

    def make(rep: str) -> float:
        argv = hhmake_argv(programs.hhmake, a3m_dir / f"{rep}.a3m", hhm_dir / f"{rep}.hhm", rep)
        return limits.run(argv).cpu_seconds

    cpu += sum(map_parallel(make, list(reps["ecod_domain_id"]), limits.workers))
    cpu += limits.run(
        ffindex_build_argv(programs.ffindex_build, Path(f"{paths.hh_db}_a3m"), a3m_dir)
    ).cpu_seconds
    cpu += limits.run(
        ffindex_build_argv(programs.ffindex_build, Path(f"{paths.hh_db}_hhm"), hhm_dir)
    ).cpu_seconds
    cpu += limits.run(
        cstranslate_argv(programs.cstranslate, programs.hh_data, paths.hh_db)
    ).cpu_seconds
    return cpu
