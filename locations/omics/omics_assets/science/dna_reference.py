"""A genome FASTA, checked before any tool reads it: its records (plain or gzipped), their
statistics (count, length, N50, GC) and the refusal of an assembly accession where a file is
expected (fetching one needs the internet; a run never downloads)."""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from omics_assets.science.steps import InputError

# RefSeq/GenBank assembly (GCF_000840245.1), RefSeq sequence (NC_001416.1), GenBank (J02459.1)
# and WGS (JAAAAA010000001) accessions
ACCESSION = re.compile(
    r"^(GC[AF]_\d{9}|[A-Z]{2}_\d{6,9}|[A-Z]{1,2}\d{5,8}|[A-Z]{4,6}\d{8,11})(\.\d+)?$"
)
_NOT_SEQUENCE = re.compile(r"[^A-Za-z*.-]")  # IUPAC letters, gaps and stops are sequence


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


def _open(path: Path) -> IO[str]:
    """A text handle on a plain or gzip/bgzip file (recognized by its magic bytes)."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt") if gzipped else path.open()


def records(path: Path, key: str = "reference") -> Iterator[tuple[str, str]]:
    """(name, sequence) of each record of a FASTA, in order; the name is the header's first
    word. InputError naming the line for a file that is not a FASTA, an empty or repeated
    name, a character that is not sequence, or a record without sequence."""
    if not path.is_file():
        refuse_accession(path, key)
        raise InputError(f"{key}: {path} is not a file")
    seen: set[str] = set()
    name: str | None = None
    parts: list[str] = []
    header_line = 0
    try:
        with _open(path) as handle:
            for number, raw in enumerate(handle, 1):
                line = raw.strip()
                if line.startswith(">"):
                    if name is not None:
                        yield _record(path, key, name, parts, header_line)
                    name = line[1:].split()[0] if line[1:].strip() else ""
                    if not name or name in seen:
                        raise InputError(
                            f"{key}: {path} line {number}: empty or repeated name {name!r}"
                        )
                    seen.add(name)
                    parts, header_line = [], number
                elif line:
                    if name is None:
                        raise InputError(
                            f"{key}: {path} line {number}: sequence before the first '>' "
                            "header: not a FASTA file"
                        )
                    bad = _NOT_SEQUENCE.search(line)
                    if bad:
                        raise InputError(
                            f"{key}: {path} line {number} column {bad.start() + 1}: "
                            f"{bad.group()!r} is not a sequence character"
                        )
                    parts.append(line)
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as error:
        raise InputError(f"{key}: {path} cannot be read: {error}") from error
    if name is None:
        raise InputError(f"{key}: {path} holds no sequence (no '>' header)")
    yield _record(path, key, name, parts, header_line)


def _record(path: Path, key: str, name: str, parts: list[str], line: int) -> tuple[str, str]:
    if not parts:
        raise InputError(f"{key}: {path} line {line}: record {name!r} has no sequence")
    return name, "".join(parts)


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
