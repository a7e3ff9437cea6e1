"""Reading and checking the ecology domain's inputs: a community table (samples in rows, the
first column the sample ID, one column per taxon; TSV, or CSV by its ``.csv`` name, either
may be gzipped) and a metadata TSV with a ``sample`` column. Lines starting with ``#`` and
blank lines are skipped; errors name the file, its line and its column."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from omics_assets.science.sample_tables import (
    header_row,
    read_sample_table,
    refuse_repeated_names,
    sample_rows,
    table_rows,
)
from omics_assets.science.steps import InputError, StepContext


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


def read_community(path: Path, integers: bool) -> Community:
    """The community table at ``path``. InputError (file, line, column) for: no samples or no
    taxa, an empty or repeated sample ID or taxon name, a line with the wrong number of
    fields, a value that is not a finite number, a negative value, and a non-integer where
    ``integers`` (counts) are required."""
    rows = table_rows(path)
    header_line, header = header_row(path, rows)
    taxa = header[1:]
    if not taxa:
        raise InputError(f"{path}: line {header_line}: no taxon columns after the sample ID")
    if "" in taxa:
        raise InputError(f"{path}: line {header_line}: column {taxa.index('') + 2} has no name")
    refuse_repeated_names(path, header_line, header, "taxon")
    samples: list[str] = []
    lines: list[int] = []
    cells: list[list[str]] = []
    for line, sample, fields in sample_rows(path, rows, header, header[0], {}):
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
    the index; see :func:`read_sample_table` for what is refused). InputError, too, for a
    community sample missing from the metadata (its line in ``counts`` named) and an empty
    ``factor`` value. Metadata rows of other samples are ignored."""
    columns = {factor: "domain_specific.factor"} if factor is not None else {}
    metadata = read_sample_table(path, columns)
    missing = [
        (s, line)
        for s, line in zip(community.samples, community.lines, strict=True)
        if s not in metadata.lines
    ]
    if missing:
        listed = ", ".join(f"{s!r} (line {line})" for s, line in missing[:5])
        raise InputError(
            f"{counts}: {len(missing)} sample(s) missing from the metadata {path}: {listed}"
            + (" ..." if len(missing) > 5 else "")
        )
    table = metadata.table.loc[community.samples]
    if factor is not None:
        empty = table.index[table[factor] == ""]
        if len(empty):
            raise InputError(
                f"{path}: line {metadata.lines[empty[0]]}: sample {empty[0]!r} has no value of "
                f"the factor {factor!r}"
            )
    return table


def factor_levels(ctx: StepContext) -> pd.Series | None:
    """The factor's level (text) of each sample the community step kept, or None without
    a factor."""
    name = ctx.domain_specific.get("factor")
    if not name:
        return None
    metadata = read_sample_table(
        ctx.input_file("community", "metadata"), {name: "domain_specific.factor"}
    )
    return metadata.table[name]
