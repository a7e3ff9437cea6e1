"""FASTA reading and validation of protein chains.

Errors name the file and line so a user can fix the input: an empty file, something that is
not FASTA (or is binary), duplicate ids, letters that are not amino acids, chains outside the
length limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The 20 standard amino acids plus the IUPAC ambiguity/rare codes BLAST and HH-suite accept.
AMINO_ACIDS = frozenset("ACDEFGHIKLMNPQRSTVWYBZXUO")
NUCLEOTIDES = frozenset("ACGTUN")
MIN_CHAIN_LENGTH = 20
MAX_CHAIN_LENGTH = 10_000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._|:-]{0,63}$")


class FastaError(ValueError):
    """The input is not a valid protein FASTA file; the message says what and where."""


@dataclass(frozen=True)
class FastaRecord:
    id: str
    description: str
    sequence: str
    line: int  # line number of the header, 1-based


def read_fasta(path: Path) -> list[FastaRecord]:
    """Parse ``path`` strictly; raises FastaError naming the file and line of any problem."""
    return decode_fasta(path.read_bytes(), str(path))


def decode_fasta(data: bytes, source: str) -> list[FastaRecord]:
    """Records of a FASTA file's bytes (UTF-8 text); ``source`` names it in errors."""
    if b"\x00" in data:
        raise FastaError(f"{source}: binary data (NUL bytes), not a FASTA text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FastaError(
            f"{source}: not UTF-8 text (byte {error.start}); not a FASTA file"
        ) from None
    return parse_fasta(text, source)


def parse_fasta(text: str, source: str) -> list[FastaRecord]:
    """Records of ``text``; ``source`` names it in error messages."""
    if not text.strip():
        raise FastaError(f"{source}: empty file, no FASTA records")
    records: list[FastaRecord] = []
    header: tuple[str, str, int] | None = None
    chunks: list[str] = []

    def close() -> None:
        if header is not None:
            records.append(FastaRecord(header[0], header[1], "".join(chunks).upper(), header[2]))

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            close()
            fields = line[1:].split(maxsplit=1)
            if not fields:
                raise FastaError(f"{source}:{number}: header without an id")
            header = (fields[0], fields[1] if len(fields) > 1 else "", number)
            chunks = []
        elif header is None:
            raise FastaError(
                f"{source}:{number}: expected a '>' header line, found {line[:40]!r}; "
                "not a FASTA file"
            )
        else:
            chunks.append(line.replace(" ", "").rstrip("*"))
    close()
    return records


def validate_chains(
    records: list[FastaRecord],
    source: str,
    min_length: int = MIN_CHAIN_LENGTH,
    max_length: int = MAX_CHAIN_LENGTH,
) -> list[FastaRecord]:
    """Check ids (safe, unique) and sequences (amino acids, length limits) of query chains."""
    seen: dict[str, int] = {}
    for record in records:
        where = f"{source}:{record.line}: chain {record.id!r}"
        if not _ID.fullmatch(record.id):
            raise FastaError(f"{where}: invalid id (use up to 64 letters, digits and . _ | : -)")
        if record.id in seen:
            raise FastaError(f"{where}: duplicate chain id (first at line {seen[record.id]})")
        seen[record.id] = record.line
        bad = sorted(set(record.sequence) - AMINO_ACIDS)
        if bad:
            position = min(record.sequence.index(letter) for letter in bad) + 1
            raise FastaError(
                f"{where}: non-amino-acid letter(s) {''.join(bad)!r} (first at residue "
                f"{position}); is this a nucleotide or binary file?"
            )
        if len(record.sequence) >= min_length and set(record.sequence) <= NUCLEOTIDES:
            raise FastaError(f"{where}: only nucleotide letters (ACGTUN); expected a protein")
        if len(record.sequence) < min_length:
            raise FastaError(
                f"{where}: {len(record.sequence)} residues, shorter than the minimum {min_length}"
            )
        if len(record.sequence) > max_length:
            raise FastaError(
                f"{where}: {len(record.sequence)} residues, longer than the maximum {max_length}"
            )
    return records


def format_fasta(records: list[tuple[str, str]], width: int = 80) -> str:
    """FASTA text of (id, sequence) pairs."""
    lines: list[str] = []
    for identifier, sequence in records:
        lines.append(f">{identifier}")
        lines.extend(sequence[i : i + width] for i in range(0, len(sequence), width))
    return "\n".join(lines) + "\n"
