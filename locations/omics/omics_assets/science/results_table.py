"""Results tables as ``omics plot`` reads them: association results (plink2 ``--glm``, GEMMA
``.assoc.txt``, PLINK 1.9) and DESeq2 results (pydeseq2's table, as the rnaseq step writes it).

A table may be tab-, comma- or whitespace-separated, plain or gzipped. Its columns are found
under the names each tool writes (``ALIASES``, matched exactly first, then ignoring case) and
renamed to ours; what a plot needs is ``NEEDS``.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd

from omics_assets.science.steps import InputError

PlotType = Literal["manhattan", "qq", "volcano", "ma"]
PLOT_TYPES: tuple[PlotType, ...] = get_args(PlotType)

# our name -> the names tools write it under, in order of preference
ALIASES: dict[str, tuple[str, ...]] = {
    "chrom": ("chrom", "#CHROM", "chr", "CHR"),  # ours, plink2, GEMMA, plink 1.9
    "pos": ("pos", "POS", "ps", "BP"),
    "p": ("p", "P", "p_wald", "p_lrt", "p_score"),  # GEMMA: Wald test first
    "log2FoldChange": ("log2FoldChange",),  # (py)DESeq2
    "baseMean": ("baseMean",),
    "padj": ("padj",),
    "pvalue": ("pvalue",),
}
# per plot, the columns it needs; a group of several needs at least one of them
NEEDS: dict[PlotType, tuple[tuple[str, ...], ...]] = {
    "manhattan": (("chrom",), ("pos",), ("p",)),
    "qq": (("p",),),
    "volcano": (("log2FoldChange",), ("padj", "pvalue")),
    "ma": (("baseMean",), ("log2FoldChange",), ("padj", "pvalue")),
}
NA_VALUES = ["NA", ".", "-nan", "nan"]  # besides pandas' own; plink2 writes "." too
_READ_ERRORS = (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError, zlib.error)


@dataclass(frozen=True)
class ResultsTable:
    """The columns a plot needs, under our names (numbers as floats, ``chrom`` as text);
    ``columns`` maps each of ours to its name in the file."""

    path: Path
    frame: pd.DataFrame
    columns: dict[str, str]


def valid_p(p: pd.Series | np.ndarray) -> np.ndarray:
    """Where ``p`` is a p-value: finite, in [0, 1]."""
    values = np.asarray(p, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values >= 0) & (values <= 1)


def p_column(columns: pd.Index | list[str], plot: PlotType) -> str:
    """The p-value column a plot stands on: ``p`` (GWAS); for the volcano's height the raw
    ``pvalue`` if present, for the MA plot's colour ``padj`` if present."""
    if plot in ("manhattan", "qq"):
        return "p"
    order = ("pvalue", "padj") if plot == "volcano" else ("padj", "pvalue")
    return next(c for c in order if c in columns)


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _first_line(path: Path, compression: str | None) -> str:
    try:
        opener = gzip.open if compression else open
        with opener(path, "rt", encoding="utf-8") as handle:
            line = handle.readline()
    except _READ_ERRORS as error:
        raise InputError(f"{path}: not a text table ({error})") from None
    if not line.strip():
        raise InputError(f"{path}: is empty (no header line)")
    if "\x00" in line:
        raise InputError(f"{path}: not a text table (binary content)")
    return line


def _separator(header: str, path: Path) -> str:
    if "\t" in header:
        return "\t"
    if "," in header or path.name.lower().removesuffix(".gz").endswith(".csv"):
        return ","
    return r"\s+"


def find_columns(columns: list[str], plot: PlotType, path: Path) -> dict[str, str]:
    """Ours -> the file's name, for the columns ``plot`` needs; InputError naming the
    column, the file and the names looked for when one is missing."""
    lower: dict[str, str] = {}
    for column in columns:
        lower.setdefault(column.lower(), column)
    found: dict[str, str] = {}
    for group in NEEDS[plot]:
        for ours in group:
            names = ALIASES[ours]
            name = next((n for n in names if n in columns), None) or next(
                (lower[n.lower()] for n in names if n.lower() in lower), None
            )
            if name is not None:
                found[ours] = name
        if not any(ours in found for ours in group):
            wanted = " or ".join(repr(c) for c in group)
            looked = ", ".join(n for ours in group for n in ALIASES[ours])
            shown = ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "")
            raise InputError(
                f"{path}: no column {wanted} for a {plot} plot (looked for: {looked}); "
                f"its columns: {shown}"
            )
    return found


def read_results(path: Path, plot: PlotType) -> ResultsTable:
    """The columns of ``path`` that ``plot`` needs (InputError, saying what is wrong, for a
    missing, empty, unreadable or non-table file, a missing column, or no usable p-value).
    plink2 writes a row per term when covariates are not hidden: only its ``ADD`` rows
    (the variant's additive effect) are kept."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    compression = "gzip" if _is_gzip(path) else None
    sep = _separator(_first_line(path, compression), path)
    read = {"sep": sep, "compression": compression, "na_values": NA_VALUES}
    try:
        columns = [str(c) for c in pd.read_csv(path, nrows=0, **read).columns]
        found = find_columns(columns, plot, path)
        test = ["TEST"] if "TEST" in columns else []
        frame = pd.read_csv(
            path,
            usecols=[*found.values(), *test],
            dtype={name: str for name in (found.get("chrom"), *test) if name},
            **read,
        )
    except _READ_ERRORS as error:
        raise InputError(f"{path}: not a readable table ({error})") from None
    if test and (frame["TEST"] == "ADD").any():
        frame = frame[frame["TEST"] == "ADD"]
    frame = frame.rename(columns={name: ours for ours, name in found.items()})[list(found)]
    for ours in found:
        if ours != "chrom":
            frame[ours] = pd.to_numeric(frame[ours], errors="coerce").astype(float)
    if frame.empty:
        raise InputError(f"{path}: has a header but no rows")
    ours = p_column(frame.columns, plot)
    if not valid_p(frame[ours]).any():
        raise InputError(
            f"{path}: none of its {len(frame)} rows has a p-value in column "
            f"{found[ours]!r} (a finite number in [0, 1])"
        )
    return ResultsTable(path, frame.reset_index(drop=True), found)
