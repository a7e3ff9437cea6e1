"""The omics figures: Manhattan, QQ, volcano and MA plots, for the report steps and for
``omics plot`` (imported by those only: matplotlib takes half a second to import).

Each function draws rows with usable values only and returns a :class:`Plot`: the figure and
what it shows (points drawn, how many past the threshold, the reference line's height).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from omics_assets.science.gwas import GENOME_WIDE, lambda_gc
from omics_assets.science.results_table import PlotType, valid_p
from platform_core.figures import figure_png

DE_ALPHA = 0.05  # the rnaseq defaults' alpha
SIGNIFICANT, OTHER = "tab:red", "#999999"


@dataclass
class Plot:
    """A figure and what it shows: ``points`` markers drawn, ``significant`` of them past
    the threshold (red in volcano and MA plots), ``line`` the height of its horizontal
    reference line (Manhattan: -log10 of the threshold; MA: 0), ``note`` one line of summary."""

    figure: Figure
    points: int
    significant: int
    line: float | None = None
    note: str = ""

    def png(self, dpi: int = 80) -> bytes:
        """PNG bytes, cropped to the content; the figure is closed."""
        try:
            return figure_png(self.figure, dpi)
        finally:
            plt.close(self.figure)


def _neg_log10(p: pd.Series | np.ndarray) -> np.ndarray:
    return -np.log10(np.clip(np.asarray(p, dtype=float), 1e-300, 1.0))


def _chrom_order(chrom: pd.Series) -> pd.Series:
    """Numeric chromosomes (``chr`` prefix or not) in numeric order, the others after."""
    numeric = pd.to_numeric(chrom.str.replace(r"^chr", "", case=False, regex=True), errors="coerce")
    return numeric.fillna(1000 + chrom.astype("category").cat.codes.astype(int))


def manhattan(table: pd.DataFrame, threshold: float = GENOME_WIDE, title: str = "") -> Plot:
    """-log10 p along the genome (``chrom``, ``pos``, ``p``), chromosomes alternating in
    colour, a line at the threshold."""
    usable = valid_p(table["p"]) & table["chrom"].notna().to_numpy()
    usable &= np.isfinite(table["pos"].to_numpy(dtype=float))
    table = table[usable]
    table = table.assign(chrom=table["chrom"].astype(str))
    table = table.assign(order=_chrom_order(table["chrom"])).sort_values(["order", "pos"])
    offsets = table.groupby("order", sort=True)["pos"].max().cumsum().shift(fill_value=0)
    x = table["pos"].to_numpy() + table["order"].map(offsets).to_numpy()
    figure, axis = plt.subplots(figsize=(10, 3))
    colours = np.where(
        table["order"].rank(method="dense").to_numpy() % 2 == 0, "#4c72b0", "#8faadc"
    )
    axis.scatter(x, _neg_log10(table["p"]), s=3, c=colours)
    line = float(-np.log10(threshold))
    axis.axhline(line, color="tab:red", lw=0.8)
    ticks = table.groupby("order")["chrom"].first()
    centres = [offsets[o] + table.loc[table["order"] == o, "pos"].median() for o in ticks.index]
    axis.set_xticks(centres, ticks.to_list(), fontsize=7)
    axis.set(xlabel="chromosome", ylabel="-log10 p")
    _title(figure, title)
    hits = int((table["p"] < threshold).sum())
    return Plot(figure, len(table), hits, line, f"{hits} at p < {threshold:g}")


def qq(p: pd.Series | np.ndarray, threshold: float = GENOME_WIDE, title: str = "") -> Plot:
    """Observed against expected -log10 p under the null, with the genomic inflation."""
    p = np.asarray(p, dtype=float)
    p = p[valid_p(p)]
    observed = _neg_log10(np.sort(p))
    expected = -np.log10((np.arange(1, len(p) + 1) - 0.5) / len(p))
    figure, axis = plt.subplots(figsize=(3.5, 3.5))
    axis.scatter(expected, observed, s=3, color="#4c72b0")
    top = max(expected.max(), 1.0)
    axis.plot([0, top], [0, top], color="tab:red", lw=0.8)
    inflation = lambda_gc(p)
    axis.set(
        xlabel="expected -log10 p",
        ylabel="observed -log10 p",
        title=f"lambda GC = {inflation:.3f}",
    )
    _title(figure, title)
    return Plot(figure, len(p), int((p < threshold).sum()), None, f"lambda GC {inflation:.3f}")


def _significance(results: pd.DataFrame, alpha: float) -> tuple[np.ndarray, str]:
    """Genes called at ``alpha``: by ``padj``, else (a table without it) by ``pvalue``."""
    column = "padj" if "padj" in results.columns else "pvalue"
    with np.errstate(invalid="ignore"):
        return results[column].to_numpy(dtype=float) < alpha, column


def _volcano_panel(axis: Axes, results: pd.DataFrame, alpha: float) -> tuple[int, int, str]:
    """-log10 p (``pvalue``, else ``padj``) against the log2 fold change, called genes red."""
    called, column = _significance(results, alpha)
    height = "pvalue" if "pvalue" in results.columns else "padj"
    fold = results["log2FoldChange"].to_numpy(dtype=float)
    usable = np.isfinite(fold) & valid_p(results[height])
    colours = np.where(called, SIGNIFICANT, OTHER)[usable]
    axis.scatter(fold[usable], _neg_log10(results[height][usable]), s=3, c=colours)
    axis.set(xlabel="log2 fold change", ylabel=f"-log10 {height}", title="volcano")
    return int(usable.sum()), int((called & usable).sum()), column


def _ma_panel(axis: Axes, results: pd.DataFrame, alpha: float) -> tuple[int, int, str]:
    """log2 fold change against log10 (mean count + 1), called genes red, a line at 0."""
    called, column = _significance(results, alpha)
    mean = results["baseMean"].to_numpy(dtype=float)
    fold = results["log2FoldChange"].to_numpy(dtype=float)
    usable = np.isfinite(fold) & np.isfinite(mean) & (mean >= 0)
    colours = np.where(called, SIGNIFICANT, OTHER)[usable]
    axis.scatter(np.log10(mean[usable] + 1), fold[usable], s=3, c=colours)
    axis.axhline(0.0, color="#444444", lw=0.6)
    axis.set(xlabel="log10 mean count", ylabel="log2 fold change", title="MA")
    return int(usable.sum()), int((called & usable).sum()), column


def volcano(results: pd.DataFrame, alpha: float = DE_ALPHA, title: str = "") -> Plot:
    """DESeq2 results (``log2FoldChange``, ``padj`` and/or ``pvalue``) as a volcano plot."""
    figure, axis = plt.subplots(figsize=(4.5, 3.4))
    points, called, column = _volcano_panel(axis, results, alpha)
    _title(figure, title)
    return Plot(figure, points, called, None, f"{called} at {column} < {alpha:g}")


def ma(results: pd.DataFrame, alpha: float = DE_ALPHA, title: str = "") -> Plot:
    """DESeq2 results (``baseMean``, ``log2FoldChange``, ``padj`` or ``pvalue``) as an MA
    plot."""
    figure, axis = plt.subplots(figsize=(4.5, 3.4))
    points, called, column = _ma_panel(axis, results, alpha)
    _title(figure, title)
    return Plot(figure, points, called, 0.0, f"{called} at {column} < {alpha:g}")


def draw(kind: PlotType, table: pd.DataFrame, title: str = "") -> Plot:
    """The plot ``kind`` of a table with our column names (``results_table.read_results``)."""
    if kind == "manhattan":
        return manhattan(table, title=title)
    if kind == "qq":
        return qq(table["p"], title=title)
    if kind == "volcano":
        return volcano(table, title=title)
    return ma(table, title=title)


def _title(figure: Figure, title: str) -> None:
    if title:
        figure.suptitle(title, fontsize=9)


# the report steps' figures, as PNG bytes


def manhattan_png(table: pd.DataFrame, threshold: float = GENOME_WIDE) -> bytes:
    """The GWAS report's Manhattan plot."""
    return manhattan(table, threshold).png()


def qq_png(p: np.ndarray) -> bytes:
    """The GWAS report's QQ plot."""
    return qq(p).png()


def ma_volcano_png(results: pd.DataFrame, alpha: float) -> bytes:
    """The RNA-seq report's MA and volcano plots, side by side."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    _ma_panel(left, results, alpha)
    _volcano_panel(right, results, alpha)
    return figure_png(figure)
