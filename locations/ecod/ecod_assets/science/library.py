"""Building the searchable reference: BLAST chain and domain databases, HH-suite family profiles.

Layout under ``out``::

    domains.fasta, chains.fasta       sequences (ids: ecod_domain_id, pdb_chain)
    blast/domains.*, blast/chains.*   makeblastdb databases
    hh/a3m/<rep>.a3m, hh/hhm/<rep>.hhm one profile per F-group, named by its representative
    hh/families_{a3m,hhm,cs219}.ff*   the HH-suite database ``hh/families``
    hmm/msa/<rep>.afa, hmm/hmm/<rep>.hmm the same alignment as aligned FASTA, its HMMER model
    hmm/families.hmm{,.h3?}           the pressed HMMER database of every family

A family profile is a multiple alignment of every member of the F-group (``mafft``, the
representative first), so it carries the variation of the divergent members too, indels
included; a one-member family is the bare sequence. The family's HMMER model is built from
the same alignment.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ecod_assets.science.blast import makeblastdb_argv
from ecod_assets.science.fasta import format_fasta, parse_fasta
from ecod_assets.science.hhsuite import (
    a3m_from_msa,
    cstranslate_argv,
    ffindex_build_argv,
    hhmake_argv,
)
from ecod_assets.science.hmmer import hmmbuild_argv, hmmpress_argv
from ecod_assets.science.reference import family_representatives, reference_chains
from ecod_assets.science.tools import Limits, Programs
from platform_core.tools import map_parallel


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
    def hmm_db(self) -> Path:
        return self.root / "hmm" / "families.hmm"

    @property
    def domains_table(self) -> Path:
        return self.root / "domains.parquet"


def mafft_argv(program: str, fasta: Path) -> list[str]:
    """``mafft`` (accuracy chosen by family size, input order kept) writing the alignment to
    stdout as FASTA."""
    return [program, "--auto", "--quiet", "--anysymbol", "--thread", "1", str(fasta)]


def family_members(domains: pd.DataFrame, reps: pd.DataFrame) -> dict[str, list[tuple[str, str]]]:
    """Per representative, (ecod_domain_id, sequence) of its F-group's members, itself first."""
    members: dict[str, list[tuple[str, str]]] = {}
    by_family = dict(iter(domains.groupby("f_id", sort=False)))
    for rep, f_id in zip(reps["ecod_domain_id"], reps["f_id"], strict=True):
        group = by_family[f_id]
        first = (group["ecod_domain_id"] != rep).to_numpy().argsort(kind="stable")
        ordered = group.iloc[first]
        members[rep] = list(zip(ordered["ecod_domain_id"], ordered["sequence"], strict=True))
    return members


def family_alignment(
    members: list[tuple[str, str]], workdir: Path, programs: Programs, limits: Limits
) -> tuple[list[tuple[str, str]], float]:
    """((name, aligned row) of each member in order, CPU seconds) of one F-group, aligned by
    mafft; a one-member family is its sequence."""
    if len(members) == 1:
        return members, 0.0
    fasta = workdir / "members.fasta"
    fasta.write_text(format_fasta(members))
    result = limits.run(mafft_argv(programs.mafft, fasta))
    aligned = {r.id: r.sequence for r in parse_fasta(result.stdout, "mafft output")}
    return [(name, aligned[name]) for name, _ in members], result.cpu_seconds


def family_hmm(
    rows: list[tuple[str, str]], name: str, out: Path, programs: Programs, limits: Limits
) -> float:
    """Write ``out/msa/<name>.afa`` and its model ``out/hmm/<name>.hmm``; CPU seconds."""
    msa = out / "msa" / f"{name}.afa"
    msa.write_text(format_fasta(rows))
    return limits.run(
        hmmbuild_argv(programs.hmmbuild, msa, out / "hmm" / f"{name}.hmm", name)
    ).cpu_seconds


def press_hmms(out: Path, names: list[str], programs: Programs, limits: Limits) -> float:
    """Concatenate the models ``out/hmm/<name>.hmm`` into ``out/families.hmm`` and press it."""
    database = out / "families.hmm"
    with database.open("w") as joined:
        for name in names:
            joined.write((out / "hmm" / f"{name}.hmm").read_text())
    return limits.run(hmmpress_argv(programs.hmmpress, database)).cpu_seconds


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
    members = family_members(domains, reps)
    a3m_dir, hhm_dir = out / "hh" / "a3m", out / "hh" / "hhm"
    a3m_dir.mkdir(parents=True, exist_ok=True)
    hhm_dir.mkdir(parents=True, exist_ok=True)

    hmm_root = paths.hmm_db.parent
    for folder in (hmm_root / "msa", hmm_root / "hmm"):
        folder.mkdir(parents=True, exist_ok=True)

    def make(rep: str) -> float:
        with tempfile.TemporaryDirectory(prefix="ecod-family-", dir=limits.workdir) as tmp:
            rows, used = family_alignment(members[rep], Path(tmp), programs, limits)
        (a3m_dir / f"{rep}.a3m").write_text(a3m_from_msa(rows))
        argv = hhmake_argv(programs.hhmake, a3m_dir / f"{rep}.a3m", hhm_dir / f"{rep}.hhm", rep)
        used += limits.run(argv).cpu_seconds
        return used + family_hmm(rows, rep, hmm_root, programs, limits)

    cpu += sum(
        map_parallel(
            make,
            list(reps["ecod_domain_id"]),
            limits.workers,
            cost=lambda rep: sum(len(seq) for _, seq in members[rep]),
        )
    )
    cpu += limits.run(
        ffindex_build_argv(programs.ffindex_build, Path(f"{paths.hh_db}_a3m"), a3m_dir)
    ).cpu_seconds
    cpu += limits.run(
        ffindex_build_argv(programs.ffindex_build, Path(f"{paths.hh_db}_hhm"), hhm_dir)
    ).cpu_seconds
    cpu += limits.run(
        cstranslate_argv(programs.cstranslate, programs.hh_data, paths.hh_db)
    ).cpu_seconds
    return cpu + press_hmms(hmm_root, list(reps["ecod_domain_id"]), programs, limits)


def build_once(domains: pd.DataFrame, root: Path, programs: Programs, limits: Limits) -> float:
    """The library of ``domains`` in ``root`` (named by the release's content, so a new
    release never disturbs the old one), built unless ``root`` is already complete: into a
    hidden folder beside it, marked complete, then renamed into place, so a killed build never
    looks finished. Returns the tools' CPU seconds (0.0 when it was already built)."""
    if (root / "complete").exists():
        return 0.0
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=root.parent) as tmp:
        build = Path(tmp) / "lib"
        cpu = build_library(domains, build, programs, limits)
        domains.to_parquet(build / "domains.parquet", index=False)
        (build / "complete").write_text(root.name)
        shutil.rmtree(root, ignore_errors=True)
        build.rename(root)
    return cpu
