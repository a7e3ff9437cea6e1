"""Reading sample tables, shared by the ecology and multiomics domains.

- :func:`table_rows`: the data lines of a user's TSV or CSV (``.csv`` by name; either may be
  gzipped) as text fields, with their line numbers; ``#`` lines and blank lines skipped.
- :func:`read_sample_table`: a user's sample metadata TSV (a ``sample`` column and any
  others), every value text as written (a sample named ``NA`` or ``001`` is that ID); a
  repeated sample or column name is refused with its file and line.
- :func:`read_step_table`: a TSV a step wrote, indexed by its first column (text IDs).
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from omics_assets.science.steps import InputError

SAMPLE = "sample"  # the ID column of a sample table


def table_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, stripped fields) of each line that is neither blank nor a ``#``
    comment; comma-separated for a ``.csv`` name, else tab-separated. InputError for a file
    that does not exist or cannot be read as text."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    name = path.name.removesuffix(".gz")
    delimiter = "," if name.lower().endswith(".csv") else "\t"
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", newline="") as handle:
            for number, fields in enumerate(csv.reader(handle, delimiter=delimiter), start=1):
                if fields and any(f.strip() for f in fields) and not fields[0].startswith("#"):
                    yield number, [f.strip() for f in fields]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: cannot be read as a table ({error})") from None


def header_row(path: Path, rows: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str]]:
    """The first data line (the header) and its line number; InputError for an empty file."""
    header = next(rows, None)
    if header is None:
        raise InputError(f"{path}: the table is empty (no header line)")
    return header


def refuse_repeated_names(path: Path, line: int, names: list[str], what: str) -> None:
    """InputError naming the first name of ``names`` (a header, line ``line``) given to two
    columns (1-based column numbers, as a spreadsheet shows them)."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise InputError(
                f"{path}: line {line}: {what} {name!r} is the name of columns {seen[name]} "
                f"and {position}"
            )
        seen[name] = position


@dataclass(frozen=True)
class SampleTable:
    """A checked sample table: ``table`` (text values, indexed by ``sample``, in file
    order) and the file line of each sample."""

    path: Path
    table: pd.DataFrame
    lines: dict[str, int]


def read_sample_table(path: Path, columns: Mapping[str, str]) -> SampleTable:
    """The sample table at ``path``; ``columns``: the columns it must have, each with the
    setting that names it (``{"Management": "domain_specific.factor"}``). InputError (file
    and line) for: no ``sample`` column, a required column absent or being ``sample``
    itself, a column name given twice, a line with the wrong number of fields, an empty or
    repeated sample ID."""
    for column, setting in columns.items():
        if column == SAMPLE:
            raise InputError(
                f"{setting} is {SAMPLE!r}, the column of sample IDs: name a column of "
                f"values in {path}"
            )
    rows = table_rows(path)
    header_line, header = header_row(path, rows)
    refuse_repeated_names(path, header_line, header, "column")
    listed = ", ".join(header)
    if SAMPLE not in header:
        raise InputError(f"{path}: line {header_line}: no column {SAMPLE!r} (columns: {listed})")
    for column, setting in columns.items():
        if column not in header:
            raise InputError(
                f"{path}: line {header_line}: no column {column!r}, named by {setting} "
                f"(columns: {listed})"
            )
    lines: dict[str, int] = {}
    records = [fields for _, _, fields in sample_rows(path, rows, header, SAMPLE, lines)]
    table = pd.DataFrame(records, columns=header, dtype=str).set_index(SAMPLE)
    return SampleTable(path, table, lines)


def sample_rows(
    path: Path,
    rows: list[tuple[int, list[str]]],
    header: list[str],
    column: str,
    lines: dict[str, int],
) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, sample, fields)`` of each data row, its sample ID in ``column``, recorded in
    ``lines`` (sample -> line). InputError for a row with the wrong number of fields, an
    empty sample ID, or a sample that appears again."""
    at = header.index(column)
    for line, fields in rows:
        if len(fields) != len(header):
            raise InputError(
                f"{path}: line {line}: {len(fields)} fields, the header has {len(header)}"
            )
        sample = fields[at]
        if not sample:
            raise InputError(f"{path}: line {line}: the sample ID is empty")
        if sample in lines:
            raise InputError(
                f"{path}: line {line}: sample {sample!r} appears again (first on line "
                f"{lines[sample]})"
            )
        lines[sample] = line
        yield line, sample, fields


def read_step_table(path: Path) -> pd.DataFrame:
    """A TSV a step wrote (pandas ``to_csv``), indexed by its first column: IDs stay text as
    written (``NA``, ``null``, ``001``); an empty cell is missing; a column of numbers is
    numeric."""
    return pd.read_csv(
        path, sep="\t", index_col=0, converters={0: str}, keep_default_na=False, na_values=[""]
    )
