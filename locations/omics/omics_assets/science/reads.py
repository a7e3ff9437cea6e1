"""RNA-seq inputs, checked before any tool reads them: transcript FASTA, transcript-to-gene
annotation (GTF or two-column TSV), the samplesheet and FASTQ files."""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import pandas as pd

from omics_assets.science.steps import InputError

SAMPLESHEET_COLUMNS = ("sample", "condition")
READ_COLUMNS = ("fastq_1", "fastq_2")
SHEET_FILE_COLUMNS = (*READ_COLUMNS, "coverage")  # the files a samplesheet names (epigenome)
_SAFE_SAMPLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_GTF_ATTRIBUTE = re.compile(r'(\w+) "([^"]*)"')


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else path.open()


def read_fasta(path: Path) -> dict[str, str]:
    """Sequences of a (gzipped) FASTA by their first word; InputError for what is not one."""
    if not path.is_file():
        raise InputError(f"transcripts: {path} does not exist")
    sequences: dict[str, list[str]] = {}
    name = None
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, 1):
                line = line.strip()
                if line.startswith(">"):
                    name = line[1:].split()[0] if line[1:].strip() else ""
                    if not name or name in sequences:
                        raise InputError(
                            f"transcripts: {path} line {number}: empty or repeated name {name!r}"
                        )
                    sequences[name] = []
                elif line:
                    if name is None:
                        raise InputError(
                            f"transcripts: {path} line {number}: sequence before "
                            "the first '>' header: not a FASTA file"
                        )
                    sequences[name].append(line)
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as error:
        raise InputError(f"transcripts: {path} cannot be read: {error}") from error
    if not sequences:
        raise InputError(f"transcripts: {path} holds no sequence")
    return {key: "".join(parts) for key, parts in sequences.items()}


def read_gene_map(path: Path) -> pd.DataFrame:
    """transcript -> gene (and gene name when known) from a GTF's transcript_id/gene_id
    attributes or a TSV with columns ``transcript`` and ``gene``."""
    if not path.is_file():
        raise InputError(f"annotation: {path} does not exist")
    if ".gtf" in path.name:
        rows = []
        with _open_text(path) as handle:
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


def read_samplesheet(path: Path, need_reads: bool) -> pd.DataFrame:
    """The samplesheet (TSV or CSV): ``sample``, ``condition`` and, when reads are not
    simulated, ``fastq_1`` (and optionally ``fastq_2``). Blank lines and extra columns are
    tolerated; errors name the line. Relative FASTQ paths are relative to the sheet."""
    table = samplesheet_table(path)
    required = SAMPLESHEET_COLUMNS + (READ_COLUMNS[:1] if need_reads else ())
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
    if need_reads:
        for column in READ_COLUMNS:
            if column not in table.columns:
                continue
            for _, row in table.iterrows():
                if pd.isna(row[column]):
                    continue
                fastq = (path.parent / row[column]).resolve()
                if not fastq.is_file():
                    raise InputError(
                        f"samplesheet: {path} line {row['line']}: {column} "
                        f"{row[column]!r} does not exist ({fastq})"
                    )
                table.loc[row.name, column] = str(fastq)
    columns = ["sample", "condition", *(c for c in READ_COLUMNS if c in table.columns)]
    return table[columns].reset_index(drop=True)


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
