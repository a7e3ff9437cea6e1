"""Reading the multiomics domain's views: numeric TSV matrices, oriented so that samples are
rows, with unique sample and feature IDs, and linked to each other by shared samples.

A matrix's first column holds row IDs and its header the column IDs (text: ``NA`` or ``001``
are IDs as written); a cell is a number or missing (empty, ``NA``, ``NaN``, ``N/A``,
``null``). Its orientation is ``transpose``: ``false`` (samples in rows), ``true`` (samples in
columns, as a gene x sample count table) or ``auto``: the axis whose IDs the other views'
samples share most (rows on a tie).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from omics_assets.science.steps import InputError

Transpose = bool | Literal["auto"]
MISSING = ("", "NA", "NaN", "nan", "N/A", "null")  # a missing value in a matrix's cell


@dataclass(frozen=True)
class RawMatrix:
    """A matrix as its file holds it: values (float, NaN missing), row and column IDs."""

    view: str
    path: Path
    values: np.ndarray
    rows: list[str]
    columns: list[str]


def _few(ids: Iterable[str], count: int = 3) -> str:
    ids = list(ids)
    shown = ", ".join(ids[:count])
    return f"{shown}, ... ({len(ids)} in all)" if len(ids) > count else shown


def read_matrix(view: str, path: Path) -> RawMatrix:
    """A TSV (may be gzipped) as numbers; InputError naming the file, the line, the row ID
    and the column of the first cell that is not a number (or is infinite)."""
    if not path.is_file():
        raise InputError(f"view {view}: {path} does not exist")
    try:
        table = pd.read_csv(path, sep="\t", header=None, dtype=str, keep_default_na=False)
        table = table.fillna("")  # a short line's absent fields
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise InputError(f"view {view}: {path} is not a TSV matrix: {e}") from e
    if table.shape[0] < 2 or table.shape[1] < 2:
        raise InputError(
            f"view {view}: {path} has {table.shape[0]} lines and {table.shape[1]} columns: a "
            "matrix needs a header, at least one row and an ID column plus one value column"
        )
    columns = table.iloc[0, 1:].str.strip().to_list()
    rows = table.iloc[1:, 0].str.strip().to_list()
    cells = table.iloc[1:, 1:].apply(lambda column: column.str.strip())
    cells = cells.mask(cells.isin(MISSING))
    values = cells.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = (cells.notna().to_numpy() & np.isnan(values)) | np.isinf(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InputError(
            f"view {view}: {path} line {i + 2}, row {rows[i]!r}, column {columns[j]!r}: "
            f"{cells.iat[i, j]!r} is not a finite number ({int(bad.sum())} such cells)"
        )
    return RawMatrix(view, path, values, rows, columns)


def orient(raw: RawMatrix, transpose: Transpose, samples: set[str]) -> tuple[pd.DataFrame, bool]:
    """The matrix with samples in rows (and whether it was transposed): as ``transpose``
    says, or for ``auto`` the axis sharing more IDs with ``samples`` (the other views')."""
    if transpose == "auto":
        transpose = len(samples.intersection(raw.columns)) > len(samples.intersection(raw.rows))
    frame = pd.DataFrame(raw.values, index=raw.rows, columns=raw.columns)
    if transpose:
        frame = frame.T
    for axis, ids in (("sample", frame.index), ("feature", frame.columns)):
        if "" in ids:
            raise InputError(f"view {raw.view}: {raw.path} has an empty {axis} ID")
        duplicated = ids[ids.duplicated()].unique()
        if len(duplicated):
            raise InputError(
                f"view {raw.view}: {raw.path}: {axis} IDs must be unique; repeated: "
                f"{_few(duplicated)}" + (" (samples in columns: transpose)" if transpose else "")
            )
    frame.index.name = "sample"
    return frame, bool(transpose)


def orient_all(
    raws: Mapping[str, RawMatrix], transpose: Mapping[str, Transpose]
) -> dict[str, tuple[pd.DataFrame, bool]]:
    """Every view oriented: views with a fixed orientation first; an ``auto`` view is
    compared with their samples, or, when every view is ``auto``, with both axes of the
    other views."""
    fixed = {v: orient(raws[v], transpose[v], set()) for v in raws if transpose[v] != "auto"}
    known = {str(s) for frame, _ in fixed.values() for s in frame.index}
    oriented = dict(fixed)
    for view, raw in raws.items():
        if view in oriented:
            continue
        samples = known or {
            i for other, r in raws.items() if other != view for i in (*r.rows, *r.columns)
        }
        oriented[view] = orient(raw, "auto", samples)
    return {view: oriented[view] for view in raws}


def check_linked(samples: Mapping[str, pd.Index]) -> None:
    """InputError unless the views are linked by shared samples (each pair directly or
    through other views): a factor model cannot place views that share no sample on the
    same factors. The error names the groups of views and a few sample IDs of each."""
    groups: list[tuple[list[str], set[str]]] = []
    for view, ids in samples.items():
        merged = ([view], set(map(str, ids)))
        for group in [g for g in groups if g[1] & merged[1]]:
            groups.remove(group)
            merged = (group[0] + merged[0], group[1] | merged[1])
        groups.append(merged)
    if len(groups) > 1:
        parts = "; ".join(
            f"view{'s' if len(vs) > 1 else ''} {', '.join(vs)} (samples {_few(sorted(ids))})"
            for vs, ids in groups
        )
        raise InputError(f"the views share no sample: {parts}")
