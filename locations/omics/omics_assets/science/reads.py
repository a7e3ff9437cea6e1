"""Sequencing inputs, checked before any tool reads them (RNA-seq and DNA): nucleotide FASTA,
transcript-to-gene annotation (GTF or two-column TSV), samplesheets and the files they name
(resolved exactly as the core confines them), FASTQ files."""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pandas as pd

from omics_assets.science.steps import InputError

SAMPLESHEET_COLUMNS = ("sample", "condition")
READ_COLUMNS = ("fastq_1", "fastq_2")
SHEET_FILE_COLUMNS = (*READ_COLUMNS, "coverage")  # the files a samplesheet names (epigenome)
_SAFE_SAMPLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a read group, a path
_NOT_NUCLEOTIDE = re.compile(r"[^ACGTURYSWKMBDHVNacgturyswkmbdhvn]")
_GTF_ATTRIBUTE = re.compile(r'(\w+) "([^"]*)"')


def open_text(path: Path) -> IO[str]:
    """A text handle on a plain or gzip/bgzip file, recognized by its magic bytes (a gzipped
    file is read as such whatever its name)."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt") if gzipped else path.open()


def fasta_records(path: Path, key: str) -> Iterator[tuple[str, str]]:
    """(name, sequence) of each record of a nucleotide FASTA (plain or gzipped), in order;
    the name is the header's first word. InputError (``key``, the file, the line) for what is
    not one: a missing file, sequence before the first header, an empty or repeated name, a
    character that is not an IUPAC nucleotide code (gaps ``-`` ``.`` and stops ``*`` belong
    in alignments and proteins, not in a genome or transcripts), a record without sequence."""
    if not path.is_file():
        raise InputError(f"{key}: {path} {'is not a file' if path.exists() else 'does not exist'}")
    seen: set[str] = set()
    name: str | None = None
    parts: list[str] = []
    header_line = 0
    try:
        with open_text(path) as handle:
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
                    bad = _NOT_NUCLEOTIDE.search(line)
                    if bad:
                        raise InputError(
                            f"{key}: {path} line {number} column {bad.start() + 1}: "
                            f"{bad.group()!r} is not a nucleotide (IUPAC codes only; no gaps "
                            "or stops)"
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


def read_fasta(path: Path) -> dict[str, str]:
    """Transcript sequences by their first word (:func:`fasta_records`)."""
    return dict(fasta_records(path, "transcripts"))


def read_gene_map(path: Path) -> pd.DataFrame:
    """transcript -> gene (and gene name when known) from a GTF's transcript_id/gene_id
    attributes or a TSV with columns ``transcript`` and ``gene``."""
    if not path.is_file():
        raise InputError(f"annotation: {path} does not exist")
    if ".gtf" in path.name:
        rows = []
        with open_text(path) as handle:
            for line in handle:
                if line.startswith("#"):
                    continue
                attributes = dict(_GTF_ATTRIBUTE.findall(line))
                if "transcript_id" not in attributes or "gene_id" not in attributes:
                    continue
                transcript = attributes["transcript_id"]
                if "transcript_version" in attributes and "." not in transcript:
                    transcript = f"{transcript}.{attributes['transcript_version']}"
                gene = attributes["gene_id"]
                rows.append((transcript, gene, attributes.get("gene_name", gene)))
        table = pd.DataFrame(rows, columns=["transcript", "gene", "gene_name"]).drop_duplicates()
    else:
        table = pd.read_csv(path, sep="\t", dtype=str)
        if not {"transcript", "gene"} <= set(table.columns):
            raise InputError(f"annotation: {path} needs columns 'transcript' and 'gene'")
        table["gene_name"] = table.get("gene_name", table["gene"])
    if table.empty:
        raise InputError(f"annotation: {path} maps no transcript to a gene")
    return table.drop_duplicates("transcript").reset_index(drop=True)


def samplesheet_table(path: Path) -> pd.DataFrame:
    """A samplesheet's rows as text (TSV, or CSV by extension), column names stripped, with
    the file ``line`` of each row; blank lines dropped. InputError if it cannot be parsed."""
    if not path.is_file():
        raise InputError(f"samplesheet: {path} does not exist")
    sep = "," if path.suffix == ".csv" else "\t"
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, skip_blank_lines=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise InputError(f"samplesheet: {path}: {error}") from error
    table.columns = [c.strip() for c in table.columns]
    table["line"] = range(2, len(table) + 2)
    return table.dropna(how="all", subset=[c for c in table.columns if c != "line"])


def sheet_file(sheet: Path, value: str) -> Path:
    """The file a samplesheet's cell names, as the core confines it (``_sheet_reads``) and as
    every step reads it: the value as written (spaces are part of the name), ``~`` expanded,
    relative to the sheet's folder; not resolved."""
    return sheet.parent / Path(value).expanduser()


def checked_samplesheet(
    path: Path, required: Sequence[str], files: Sequence[str] = ()
) -> pd.DataFrame:
    """A samplesheet's rows (:func:`samplesheet_table`, with their file ``line``) once
    checked: each ``required`` column present and filled, ``sample`` a safe name (1-64
    letters, digits, '.', '_', '-': it becomes read groups and file names) and unique, and
    each filled cell of the ``files`` columns an existing file (:func:`sheet_file`), replaced
    by its resolved path. Blank lines and extra columns are tolerated; InputError names the
    line and column."""
    table = samplesheet_table(path)
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputError(
            f"samplesheet: {path} has no column {', '.join(missing)} "
            f"(columns: {', '.join(c for c in table.columns if c != 'line')})"
        )
    if table.empty:
        raise InputError(f"samplesheet: {path} lists no sample")
    for column in required:
        blank = table[table[column].isna() | (table[column].str.strip() == "")]
        if len(blank):
            raise InputError(f"samplesheet: {path} line {blank['line'].iloc[0]}: {column} is empty")
    for _, row in table.iterrows():
        if not _SAFE_SAMPLE.fullmatch(row["sample"]):
            raise InputError(
                f"samplesheet: {path} line {row['line']}: sample {row['sample']!r} "
                "must be 1-64 letters, digits, '.', '_' or '-'"
            )
    duplicated = table[table["sample"].duplicated()]
    if len(duplicated):
        first = duplicated.iloc[0]
        raise InputError(
            f"samplesheet: {path} line {first['line']}: sample {first['sample']!r} "
            "appears more than once"
        )
    for column in (c for c in files if c in table.columns):
        for _, row in table[table[column].notna()].iterrows():
            value = row[column]
            file = sheet_file(path, value).resolve()
            if not file.is_file():
                spaces = " (the spaces around it are part of the name)" * (value != value.strip())
                raise InputError(
                    f"samplesheet: {path} line {row['line']}: {column} {value!r} does not "
                    f"exist ({file}){spaces}"
                )
            table.loc[row.name, column] = str(file)
    return table.reset_index(drop=True)


def read_samplesheet(path: Path, need_reads: bool) -> pd.DataFrame:
    """The RNA-seq samplesheet: ``sample``, ``condition`` and, when reads are not simulated,
    ``fastq_1`` (and optionally ``fastq_2``), made absolute (:func:`checked_samplesheet`)."""
    required = SAMPLESHEET_COLUMNS + (READ_COLUMNS[:1] if need_reads else ())
    table = checked_samplesheet(path, required, READ_COLUMNS if need_reads else ())
    return table[["sample", "condition", *(c for c in READ_COLUMNS if c in table.columns)]]


HEAD_RECORDS = 1000  # records whose 4-line structure is checked one by one


def check_fastq(path: Path) -> int:
    """Read a FASTQ through (gzipped if named ``.gz``) and return its record count.

    InputError for a file that is not gzip though named so, is truncated (the gzip stream
    ends early, or the lines are not a multiple of 4), or whose first ``HEAD_RECORDS`` records
    are not four lines starting with '@' and '+'. The whole file is decompressed and its lines
    counted in C-sized chunks; checking every record's structure in Python would cost more
    than the quantifier."""
    opener = gzip.open if path.suffix == ".gz" else open
    lines, head, last = 0, b"", b""
    try:
        with opener(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                if len(head) < 1 << 16:
                    head += chunk[: 1 << 16]
                lines += chunk.count(b"\n")
                last = chunk
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise InputError(f"FASTQ {path} is damaged or not gzip-compressed: {error}") from error
    lines += bool(last) and not last.endswith(b"\n")  # a last line without its newline
    if lines == 0:
        raise InputError(f"FASTQ {path} is empty")
    complete = head.split(b"\n")[:-1]  # whole lines only: the head may end mid-line
    for number, line in enumerate(complete[: 4 * HEAD_RECORDS], 1):
        kind = (number - 1) % 4
        if (kind == 0 and not line.startswith(b"@")) or (kind == 2 and not line.startswith(b"+")):
            raise InputError(
                f"FASTQ {path} line {number}: expected "
                f"{'@' if kind == 0 else '+'}, found {line[:20]!r}"
            )
    if lines % 4:
        raise InputError(f"FASTQ {path} is truncated: {lines} lines, not a multiple of 4")
    return lines // 4
