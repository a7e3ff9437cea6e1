"""A genome FASTA, checked before any tool reads it: its records (plain or gzipped), their
statistics (count, length, N50, GC) and the refusal of an assembly accession where a file is
expected (fetching one needs the internet; a run never downloads)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from omics_assets.science import reads
from omics_assets.science.steps import InputError

# RefSeq/GenBank assembly (GCF_000840245.1), RefSeq sequence (NC_001416.1), GenBank (J02459.1)
# and WGS (JAAAAA010000001) accessions
ACCESSION = re.compile(
    r"^(GC[AF]_\d{9}|[A-Z]{2}_\d{6,9}|[A-Z]{1,2}\d{5,8}|[A-Z]{4,6}\d{8,11})(\.\d+)?$"
)


def refuse_accession(path: Path, key: str) -> None:
    """InputError when ``path`` does not exist: an accession needs the internet, any other
    name is a missing file."""
    if path.exists():
        return
    if ACCESSION.fullmatch(path.name):
        raise InputError(
            f"{key}: {path.name!r} looks like an assembly or sequence accession, not a file. "
            "Fetching it needs the internet, which a run does not use: download the FASTA "
            "yourself (e.g. NCBI Datasets or ENA) and give its local path (plain or gzipped)"
        )
    raise InputError(f"{key}: {path} does not exist (give a local FASTA, plain or gzipped)")


def records(path: Path, key: str = "reference") -> Iterator[tuple[str, str]]:
    """(name, sequence) of each record of a genome FASTA (:func:`reads.fasta_records`: IUPAC
    nucleotides only, so a gapped alignment or a protein FASTA is refused with its line); an
    accession where the file should be is refused first."""
    refuse_accession(path, key)
    return reads.fasta_records(path, key)


def write_fasta(genome: Iterable[tuple[str, str]], path: Path) -> Path:
    """(name, sequence) records as a FASTA of 80-column lines at ``path``."""
    with path.open("w") as handle:
        for name, seq in genome:
            handle.write(f">{name}\n")
            handle.writelines(f"{seq[i : i + 80]}\n" for i in range(0, len(seq), 80))
    return path


def genome_windows(fai: Path, width: int) -> pd.DataFrame:
    """Each sequence of a ``samtools faidx`` index cut into windows of ``width`` bp (the last
    one of a sequence shorter): chrom, start (0-based), end (exclusive), in genome order."""
    lengths = pd.read_csv(fai, sep="\t", header=None, usecols=[0, 1], dtype={0: str})
    rows = [
        (chrom, start, min(start + width, length))
        for chrom, length in lengths.itertuples(index=False)
        for start in range(0, length, width)
    ]
    return pd.DataFrame(rows, columns=["chrom", "start", "end"])


@dataclass(frozen=True)
class SequenceStats:
    """One record: ``length`` in bp, ``gc`` G+C bases, ``acgt`` A/C/G/T bases, ``n`` the
    other (ambiguous) positions."""

    name: str
    length: int
    gc: int
    acgt: int

    @property
    def n(self) -> int:
        return self.length - self.acgt

    @classmethod
    def of(cls, name: str, sequence: str) -> SequenceStats:
        upper = sequence.upper()
        gc = upper.count("G") + upper.count("C")
        return cls(name, len(sequence), gc, gc + upper.count("A") + upper.count("T"))


def n50(lengths: list[int]) -> int:
    """The length L (bp) such that sequences of length >= L hold at least half the bases."""
    total, running = sum(lengths), 0
    for length in sorted(lengths, reverse=True):
        running += length
        if 2 * running >= total:
            return length
    return 0


def summary(stats: list[SequenceStats]) -> dict[str, int | float]:
    """The genome's statistics from its records' (see :func:`fasta_stats`)."""
    acgt = sum(s.acgt for s in stats)
    return {
        "sequences": len(stats),
        "total_length": sum(s.length for s in stats),
        "n50": n50([s.length for s in stats]),
        "gc_fraction": round(sum(s.gc for s in stats) / acgt, 6) if acgt else 0.0,
        "n_bases": sum(s.n for s in stats),
    }


def fasta_stats(path: Path | str) -> dict[str, int | float]:
    """Statistics of a FASTA (plain or gzipped): ``sequences`` (count), ``total_length``
    (bp), ``n50`` (bp: the length L such that sequences of length >= L hold half the bases),
    ``gc_fraction`` (G+C over A+C+G+T, 0-1; ambiguous bases left out) and ``n_bases`` (bp
    that are not A, C, G or T). InputError for a file that is not a FASTA."""
    path = Path(path)
    return summary([SequenceStats.of(name, seq) for name, seq in records(path, "fasta")])
