"""Bismark coverage files (``bismark2bedGraph`` / ``coverage2cytosine`` ``.cov``, plain or
gzipped) and the epigenome samplesheet, read and checked.

A coverage line is ``chrom start end percent meth unmeth``, tab-separated, no header:
1-based positions with ``start == end`` (one cytosine), ``percent`` = 100 * meth / (meth +
unmeth). What is refused (InputError naming the file and its 1-based line):

- a line without six fields, or a non-integer position or count, or a negative count;
- a percent more than :data:`PERCENT_TOLERANCE` points away from 100 * meth / (meth + unmeth)
  (Bismark writes it in full; a writer that rounds to whole percent stays within 0.5);
- ``end != start`` (``end == start + 1`` is a BED-style 0-based interval, not a Bismark cov line);
- a file shifted by one base against the others (:func:`check_shifts`): take the direction
  (one base after, or before) in which most of a file's positions sit one off a position of
  the other files without sitting exactly on one; of its positions that sit either exactly
  on, or one off in that direction, but not both, most must sit exactly on one. Otherwise
  the file counts 0-based against 1-based ones (or the reverse) and is refused, naming its
  first shifted line (at least 20 one-off sites are needed to call a shift).
  Strand-specific files (a CpG's two cytosines at p and p + 1) pass: their p + 1 sites are in
  both sets and count for neither.

Lines with meth + unmeth = 0 carry no information and are dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from omics_assets.science import reads
from omics_assets.science.reads import open_text
from omics_assets.science.steps import InputError

COLUMNS = ("chrom", "start", "end", "percent", "meth", "unmeth")
SHEET_COLUMNS = ("sample", "condition", "coverage")
PERCENT_TOLERANCE = 0.5 + 1e-6  # percentage points: rounding to a whole percent
SHIFT_MIN_SITES = 20  # fewer one-off matches than this cannot show a shift


def _bad_line(path: Path) -> str:
    """What is wrong with the first malformed line of a file (fields or numbers)."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(COLUMNS):
                return (
                    f"{path}: line {number}: {len(fields)} tab-separated fields, a Bismark "
                    f"coverage line has 6 ({' '.join(COLUMNS)})"
                )
            for name, value in zip(COLUMNS[1:], fields[1:], strict=True):
                kind = float if name == "percent" else int
                try:
                    kind(value)
                except ValueError:
                    return f"{path}: line {number}: {name} {value!r} is not a number"
    return f"{path}: cannot be read as a Bismark coverage file"


def read_coverage(path: Path) -> pd.DataFrame:
    """One Bismark coverage file as ``chrom, pos, meth, cov`` (1-based positions, counts),
    sorted by chromosome and position; InputError for what the module refuses."""
    if not path.is_file():
        raise InputError(f"coverage file not found: {path}")
    try:
        with open_text(path) as handle:
            table = pd.read_csv(
                handle,
                sep="\t",
                header=None,
                names=list(COLUMNS),
                dtype={"chrom": str},
                skip_blank_lines=False,
                engine="c",
            )
    except (ValueError, pd.errors.ParserError):
        raise InputError(_bad_line(path)) from None
    numbers = table[list(COLUMNS[1:])]
    if table.empty:
        raise InputError(f"{path}: no coverage lines")
    if table.isna().to_numpy().any() or any(
        not pd.api.types.is_numeric_dtype(numbers[c]) for c in numbers
    ):
        raise InputError(_bad_line(path))
    counts = numbers[["start", "end", "meth", "unmeth"]].to_numpy(dtype=float)
    if not np.array_equal(counts, np.round(counts)):
        row = int(np.flatnonzero((counts != np.round(counts)).any(axis=1))[0])
        raise InputError(f"{path}: line {row + 1}: a position or count is not an integer")
    start, end, meth, unmeth = counts.astype(np.int64).T
    _refuse(path, (meth < 0) | (unmeth < 0), "a negative count (meth or unmeth)")
    _refuse(path, start < 1, "a position below 1 (Bismark positions are 1-based)")
    zero_based = end == start + 1
    _refuse(
        path,
        zero_based,
        "end = start + 1: a 0-based (BED) interval; Bismark coverage "
        "lines are 1-based with start = end",
    )
    _refuse(path, end != start, "end differs from start (one cytosine per line: start = end)")
    cov = meth + unmeth
    percent = table["percent"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = 100.0 * meth / cov
    off = (cov > 0) & ~(np.abs(percent - expected) <= PERCENT_TOLERANCE)
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise InputError(
            f"{path}: line {row + 1}: percent {percent[row]:g} disagrees with 100 * meth / "
            f"(meth + unmeth) = {expected[row]:.4g} ({meth[row]} / {cov[row]})"
        )
    result = pd.DataFrame(
        {"chrom": table["chrom"], "pos": start, "meth": meth, "cov": cov, "line": table.index + 1}
    )[cov > 0]
    if result.duplicated(["chrom", "pos"]).any():
        row = int(result.loc[result.duplicated(["chrom", "pos"]), "line"].iloc[0])
        raise InputError(f"{path}: line {row}: a position listed twice")
    return result.sort_values(["chrom", "pos"], kind="stable").reset_index(drop=True)


def _refuse(path: Path, bad: np.ndarray, what: str) -> None:
    if bad.any():
        raise InputError(f"{path}: line {int(np.flatnonzero(bad)[0]) + 1}: {what}")


def _keys(tables: list[pd.DataFrame]) -> list[np.ndarray]:
    """Each table's positions as one int64 per site, the chromosome's code (shared by all
    tables: one factorisation of their chromosome columns) in the high bits."""
    chroms = pd.concat([t["chrom"] for t in tables], ignore_index=True)
    codes = pd.factorize(chroms)[0].astype(np.int64)
    bounds = np.cumsum([0, *(len(t) for t in tables)])
    return [
        (codes[a:b] << 40) + t["pos"].to_numpy(dtype=np.int64)
        for a, b, t in zip(bounds[:-1], bounds[1:], tables, strict=True)
    ]


def _member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Whether each value is in ``sorted_set`` (sorted, unique; faster than np.isin here)."""
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[at] == values


def check_shifts(tables: dict[Path, pd.DataFrame]) -> None:
    """InputError when one file's positions sit one base off the other files' (the module's
    rule); the message names the file and its first shifted line. The sites of all files are
    counted once: a site is in the other files when its count over all files exceeds its
    count (0 or 1) in this one."""
    if len(tables) < 2:
        return
    keys = dict(zip(tables, _keys(list(tables.values())), strict=True))
    every = np.sort(np.concatenate(list(keys.values())))
    first = np.flatnonzero(np.concatenate([[True], every[1:] != every[:-1]]))
    sites, counts = every[first], np.diff(np.append(first, len(every)))

    def count(values: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(sites, values), len(sites) - 1)
        return np.where(sites[at] == values, counts[at], 0)

    for path, own in keys.items():
        mine = np.sort(own)
        exact = count(own) > 1
        off = {
            step: count(own - step) > _member(own - step, mine).astype(np.int64) for step in (1, -1)
        }
        step = max(off, key=lambda s: int((off[s] & ~exact).sum()))
        only_off, only_exact = off[step] & ~exact, int((exact & ~off[step]).sum())
        if only_off.sum() >= SHIFT_MIN_SITES and only_off.sum() > only_exact:
            line = int(tables[path]["line"].to_numpy()[np.flatnonzero(only_off)[0]])
            raise InputError(
                f"{path}: line {line}: positions sit one base {'after' if step == 1 else 'before'}"
                f" the other files' CpGs ({int(only_off.sum())} sites one off, {only_exact} "
                "exact): mixed 0- and 1-based coordinates (Bismark coverage is 1-based)"
            )


def read_samplesheet(path: Path, contrast: list[str]) -> pd.DataFrame:
    """The samplesheet's rows (``sample``, ``condition``, ``coverage``) of the two contrast
    conditions, text as written. It is read by :func:`reads.checked_samplesheet`, the reader
    whose parse the core confines (TSV, or CSV by name; ``~`` expanded; relative to the
    sheet): a step never opens a file the core did not check. ``coverage`` is the resolved
    path; ``line`` the row's line in the file. InputError (file and line) for a contrast that
    is not two of the sheet's conditions, or two rows naming one coverage file."""
    if len(contrast) != 2 or contrast[0] == contrast[1]:
        raise InputError(
            f"contrast must be two different conditions [control, treated]: {contrast}"
        )
    sheet = reads.checked_samplesheet(path, SHEET_COLUMNS, ("coverage",))
    conditions = set(sheet["condition"])
    absent = [c for c in contrast if c not in conditions]
    if absent:
        raise InputError(
            f"samplesheet: {path}: contrast condition(s) {', '.join(absent)} not among its "
            f"conditions ({', '.join(sorted(conditions))})"
        )
    sheet = sheet[sheet["condition"].isin(contrast)].reset_index(drop=True)
    again = sheet[sheet["coverage"].duplicated()]
    if len(again):
        row = again.iloc[0]
        first = sheet.loc[sheet["coverage"] == row["coverage"], "line"].iloc[0]
        raise InputError(
            f"samplesheet: {path} line {row['line']}: sample {row['sample']!r} names the "
            f"coverage file of line {first} ({row['coverage']}): one file per sample"
        )
    return sheet[[*SHEET_COLUMNS, "line"]]
