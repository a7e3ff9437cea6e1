"""Reading and checking the ecology domain's inputs: a community table (samples in rows, the
first column the sample ID, one column per taxon; TSV, or CSV by its ``.csv`` name, either
may be gzipped) and a metadata TSV with a ``sample`` column. Lines starting with ``#`` and
blank lines are skipped; errors name the file, its line and its column."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from omics_assets.science.steps import InputError


@dataclass(frozen=True)
class Community:
    """A checked community table: ``values`` (samples x taxa; counts, or abundances such as
    percent cover) and the file line of each sample."""

    samples: list[str]
    taxa: list[str]
    values: np.ndarray
    lines: list[int]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            self.values, index=pd.Index(self.samples, name="sample"), columns=self.taxa
        )


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each data line; comma-separated for ``.csv``, else tabs."""
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


def _header(path: Path, rows: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str]]:
    header = next(rows, None)
    if header is None:
        raise InputError(f"{path}: the table is empty (no header line)")
    return header


def _first_duplicate(names: list[str]) -> tuple[int, int] | None:
    """Positions of the first name seen twice, or None."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in seen:
            return seen[name], position
        seen[name] = position
    return None


def read_community(path: Path, integers: bool) -> Community:
    """The community table at ``path``. InputError (file, line, column) for: no samples or no
    taxa, an empty or repeated sample ID or taxon name, a line with the wrong number of
    fields, a value that is not a finite number, a negative value, and a non-integer where
    ``integers`` (counts) are required."""
    rows = _rows(path)
    header_line, header = _header(path, rows)
    taxa = header[1:]
    if not taxa:
        raise InputError(f"{path}: line {header_line}: no taxon columns after the sample ID")
    if "" in taxa:
        raise InputError(f"{path}: line {header_line}: column {taxa.index('') + 2} has no name")
    if (twice := _first_duplicate(taxa)) is not None:
        first, second = twice
        raise InputError(
            f"{path}: line {header_line}: taxon {taxa[first]!r} is the name of columns "
            f"{first + 2} and {second + 2}"
        )
    samples: list[str] = []
    lines: list[int] = []
    cells: list[list[str]] = []
    where: dict[str, int] = {}
    for line, fields in rows:
        if len(fields) != len(header):
            raise InputError(
                f"{path}: line {line}: {len(fields)} fields, the header has {len(header)}"
            )
        sample = fields[0]
        if not sample:
            raise InputError(f"{path}: line {line}: the sample ID is empty")
        if sample in where:
            raise InputError(
                f"{path}: line {line}: sample {sample!r} appears again (first on line "
                f"{where[sample]})"
            )
        where[sample] = line
        samples.append(sample)
        lines.append(line)
        cells.append(fields[1:])
    if not samples:
        raise InputError(f"{path}: the table has a header but no samples")
    values = _numbers(path, np.array(cells, dtype=object), lines, taxa)

    def refuse(bad: np.ndarray, what: str) -> None:
        if bad.any():
            row, column = (int(i) for i in np.argwhere(bad)[0])
            raise InputError(
                f"{path}: line {lines[row]}, column {column + 2} ({taxa[column]}): "
                f"{cells[row][column]!r} {what} ({int(bad.sum())} such value(s) in the table)"
            )

    refuse(values < 0, "is negative: counts and abundances must be >= 0")
    if integers:
        refuse(
            values != np.round(values),
            "is not an integer count (for cover, biomass or relative abundances set "
            "steps.community.config.values: abundances)",
        )
    return Community(samples, taxa, values, lines)


def _numbers(path: Path, cells: np.ndarray, lines: list[int], taxa: list[str]) -> np.ndarray:
    """The cells as floats; InputError at the first cell that is not a finite number."""
    try:
        values = cells.astype(float)
        bad = ~np.isfinite(values)
    except ValueError:
        values = np.zeros(cells.shape)
        bad = np.zeros(cells.shape, dtype=bool)
        for index, text in np.ndenumerate(cells):
            try:
                values[index] = float(text)
            except ValueError:
                bad[index] = True
        bad |= ~np.isfinite(values)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"{path}: line {lines[row]}, column {column + 2} ({taxa[column]}): "
            f"{cells[row, column]!r} is not a number"
        )
    return values


def read_metadata(
    path: Path, community: Community, counts: Path, factor: str | None
) -> pd.DataFrame:
    """The metadata rows of the community's samples, in its order (text columns; ``sample``
    the index). InputError for: no ``sample`` column or no ``factor`` column, a repeated
    sample, a community sample missing from the metadata (its line in ``counts`` named), an
    empty ``factor`` value. Metadata rows of other samples are ignored."""
    rows = _rows(path)
    header_line, header = _header(path, rows)
    if "sample" not in header:
        raise InputError(
            f"{path}: line {header_line}: no column 'sample' (columns: {', '.join(header)})"
        )
    if factor is not None and factor not in header:
        raise InputError(
            f"{path}: line {header_line}: no column {factor!r}, the factor to test "
            f"(columns: {', '.join(header)})"
        )
    records: dict[str, list[str]] = {}
    where: dict[str, int] = {}
    for line, fields in rows:
        if len(fields) != len(header):
            raise InputError(
                f"{path}: line {line}: {len(fields)} fields, the header has {len(header)}"
            )
        sample = fields[header.index("sample")]
        if sample in where:
            raise InputError(
                f"{path}: line {line}: sample {sample!r} appears again (first on line "
                f"{where[sample]})"
            )
        where[sample] = line
        records[sample] = fields
    missing = [
        (s, line)
        for s, line in zip(community.samples, community.lines, strict=True)
        if s not in where
    ]
    if missing:
        listed = ", ".join(f"{s!r} (line {line})" for s, line in missing[:5])
        raise InputError(
            f"{counts}: {len(missing)} sample(s) missing from the metadata {path}: {listed}"
            + (" ..." if len(missing) > 5 else "")
        )
    table = pd.DataFrame([records[s] for s in community.samples], columns=header, dtype=str)
    if factor is not None:
        empty = [s for s in community.samples if not records[s][header.index(factor)]]
        if empty:
            raise InputError(
                f"{path}: line {where[empty[0]]}: sample {empty[0]!r} has no value of the "
                f"factor {factor!r}"
            )
    return table.set_index("sample")
