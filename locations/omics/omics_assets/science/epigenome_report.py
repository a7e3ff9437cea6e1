"""The epigenome report's figures (imported by the report step only: matplotlib is slow to
import): per-sample methylation distributions and a volcano plot of the CpG tests."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from omics_assets.science.plots import OTHER, SIGNIFICANT
from platform_core.figures import figure_png


def distributions_png(table: pd.DataFrame, samples: list[str]) -> bytes:
    """Histograms of per-CpG methylation (meth / cov, CpGs the sample covers), one line per
    sample."""
    figure, axis = plt.subplots(figsize=(5, 3.2))
    bins = np.linspace(0, 1, 26)
    for sample in samples:
        cov = table[f"cov_{sample}"].to_numpy()
        level = table[f"meth_{sample}"].to_numpy()[cov > 0] / cov[cov > 0]
        axis.hist(level, bins=bins, histtype="step", density=True, label=sample)
    axis.set(xlabel="methylation (meth / cov)", ylabel="density", title="CpG methylation")
    axis.legend(fontsize=6, ncol=2)
    return figure_png(figure)


def volcano_png(dml: pd.DataFrame, dmrs: pd.DataFrame) -> bytes:
    """-log10 p against the methylation difference (treated - control); CpGs inside DMRs
    in red."""
    inside = np.zeros(len(dml), dtype=bool)
    for chrom, rows in dml.groupby("chrom", sort=False).indices.items():
        on = dmrs[dmrs["chrom"].astype(str) == str(chrom)]
        pos = dml["pos"].to_numpy()[rows]  # sorted within a chromosome
        edges = np.zeros(len(pos) + 1, dtype=int)
        np.add.at(edges, np.searchsorted(pos, on["start"].to_numpy()), 1)
        np.add.at(edges, np.searchsorted(pos, on["end"].to_numpy(), side="right"), -1)
        inside[rows] = np.cumsum(edges)[:-1] > 0
    figure, axis = plt.subplots(figsize=(4.5, 3.4))
    height = -np.log10(np.clip(dml["p"].to_numpy(), 1e-300, 1))
    diff = dml["diff"].to_numpy()
    for chosen, colour in ((~inside, OTHER), (inside, SIGNIFICANT)):
        axis.scatter(diff[chosen], height[chosen], s=2, color=colour, rasterized=True)
    axis.set(
        xlabel="methylation difference (treated - control)",
        ylabel="-log10 p",
        title=f"{int(inside.sum())} CpGs in {len(dmrs)} DMRs (red)",
    )
    return figure_png(figure)
