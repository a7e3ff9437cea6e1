"""The omics reports' figures as PNG bytes (imported by the report steps only: matplotlib
takes half a second to import)."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from omics_assets.science.gwas import GENOME_WIDE, lambda_gc
from platform_core.figures import figure_png


def _chrom_order(chrom: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(chrom, errors="coerce")
    return numeric.fillna(1000 + chrom.astype("category").cat.codes.astype(int))


def manhattan_png(table: pd.DataFrame, threshold: float = GENOME_WIDE) -> bytes:
    """-log10 p along the genome, chromosomes alternating in colour."""
    table = table.assign(order=_chrom_order(table["chrom"])).sort_values(["order", "pos"])
    offsets = table.groupby("order", sort=True)["pos"].max().cumsum().shift(fill_value=0)
    x = table["pos"].to_numpy() + table["order"].map(offsets).to_numpy()
    figure, axis = plt.subplots(figsize=(10, 3))
    colours = np.where(
        table["order"].rank(method="dense").to_numpy() % 2 == 0, "#4c72b0", "#8faadc"
    )
    axis.scatter(x, -np.log10(table["p"].clip(lower=1e-300)), s=3, c=colours)
    axis.axhline(-np.log10(threshold), color="tab:red", lw=0.8)
    ticks = table.groupby("order")["chrom"].first()
    centres = [offsets[o] + table.loc[table["order"] == o, "pos"].median() for o in ticks.index]
    axis.set_xticks(centres, ticks.to_list(), fontsize=7)
    axis.set(xlabel="chromosome", ylabel="-log10 p")
    return figure_png(figure)


def qq_png(p: np.ndarray) -> bytes:
    """Observed against expected -log10 p under the null, with the genomic inflation."""
    observed = -np.log10(np.sort(np.clip(p, 1e-300, 1.0)))
    expected = -np.log10((np.arange(1, len(p) + 1) - 0.5) / len(p))
    figure, axis = plt.subplots(figsize=(3.5, 3.5))
    axis.scatter(expected, observed, s=3, color="#4c72b0")
    top = max(expected.max(), 1.0)
    axis.plot([0, top], [0, top], color="tab:red", lw=0.8)
    axis.set(
        xlabel="expected -log10 p",
        ylabel="observed -log10 p",
        title=f"lambda GC = {lambda_gc(p):.3f}",
    )
    return figure_png(figure)


def ma_volcano_png(results: pd.DataFrame, alpha: float) -> bytes:
    """DESeq2 results: log2 fold change against mean count (MA) and -log10 p (volcano),
    genes at padj < alpha in red."""
    significant = (results["padj"] < alpha).to_numpy()
    colours = np.where(significant, "tab:red", "#999999")
    figure, (ma, volcano) = plt.subplots(1, 2, figsize=(9, 3.4))
    ma.scatter(np.log10(results["baseMean"] + 1), results["log2FoldChange"], s=3, c=colours)
    ma.set(xlabel="log10 mean count", ylabel="log2 fold change", title="MA")
    volcano.scatter(
        results["log2FoldChange"], -np.log10(results["pvalue"].clip(lower=1e-300)), s=3, c=colours
    )
    volcano.set(xlabel="log2 fold change", ylabel="-log10 p", title="volcano")
    return figure_png(figure)
