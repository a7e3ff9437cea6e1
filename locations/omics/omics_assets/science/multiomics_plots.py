"""The multiomics report's figures: variance explained per view and factor (a heatmap) and
two factors against each other, coloured by a sample group. Imported by the report step
only (matplotlib is slow to import)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from platform_core.figures import figure_png


def variance_heatmap_png(explained: pd.DataFrame) -> bytes:
    """Views (rows) x factors (columns), percent of each view's variance, annotated."""
    values = explained.to_numpy(dtype=float)
    figure, axis = plt.subplots(figsize=(1.2 + 0.7 * values.shape[1], 0.9 + 0.45 * values.shape[0]))
    image = axis.imshow(values, cmap="Blues", vmin=0, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        colour = "white" if value > 0.6 * np.nanmax(values) else "black"
        axis.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7, color=colour)
    axis.set_xticks(range(values.shape[1]), [c.replace("factor_", "F") for c in explained.columns])
    axis.set_yticks(range(values.shape[0]), explained.index)
    axis.set_title("variance explained (%)", fontsize=9)
    figure.colorbar(image, ax=axis, fraction=0.05)
    return figure_png(figure)


def factor_scatter_png(
    factors: pd.DataFrame, x: str, y: str, groups: pd.Series | None, group_name: str = ""
) -> bytes:
    """Factor ``x`` against factor ``y``, one point per sample, coloured by ``groups``
    (samples without a group in grey)."""
    figure, axis = plt.subplots(figsize=(4.2, 3.6))
    if groups is None:
        axis.scatter(factors[x], factors[y], s=12, color="#4c72b0")
    else:
        labels = groups.reindex(factors.index)
        for i, (label, members) in enumerate(factors.groupby(labels.fillna("(none)"), sort=True)):
            colour = "#bbbbbb" if label == "(none)" else f"C{i % 10}"
            axis.scatter(members[x], members[y], s=12, color=colour, label=str(label))
        axis.legend(title=group_name or None, fontsize=7, title_fontsize=7, frameon=False)
    axis.axhline(0, color="#dddddd", lw=0.6, zorder=0)
    axis.axvline(0, color="#dddddd", lw=0.6, zorder=0)
    axis.set(xlabel=x, ylabel=y)
    return figure_png(figure)
