"""The ecology figures as PNG bytes: rarefaction curves, the PCoA coloured by the factor and
alpha diversity boxplots by the factor (imported by the steps that draw them: matplotlib
takes half a second to import)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from platform_core.figures import figure_png

DIVERSITY_PANELS = (
    ("richness", "richness (taxa)"),
    ("shannon", "Shannon (nats)"),
    ("simpson", "Simpson 1 - sum p^2"),
)


def rarefaction_png(curves: pd.DataFrame, depth: int | None) -> bytes:
    """Expected richness against individuals drawn (``sample``, ``depth``, ``expected``), one
    line per sample; a dashed line at the rarefaction depth."""
    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    for _, curve in curves.groupby("sample", sort=False):
        axis.plot(curve["depth"], curve["expected"], lw=0.8, color="#4c72b0", alpha=0.7)
    if depth is not None:
        axis.axvline(depth, color="tab:red", lw=0.8, ls="--")
    axis.set(xlabel="individuals drawn", ylabel="expected richness", title="rarefaction")
    return figure_png(figure)


def _groups(groups: pd.Series | None, index: pd.Index) -> pd.Series:
    """The factor's level of each sample, or one group "all" without a factor."""
    if groups is None:
        return pd.Series("all", index=index)
    return groups.reindex(index).astype(str)


def ordination_png(
    coordinates: pd.DataFrame, explained: list[float], groups: pd.Series | None, title: str
) -> bytes:
    """The first two PCoA axes (``coordinates``' first two columns; sample index), one colour
    per level of the factor, axes labelled with their share of the positive eigenvalues."""
    levels = _groups(groups, coordinates.index)
    figure, axis = plt.subplots(figsize=(5, 4))
    colours = plt.get_cmap("tab10")
    x, y = coordinates.columns[:2]
    for number, (level, members) in enumerate(levels.groupby(levels, sort=True)):
        points = coordinates.loc[members.index]
        axis.scatter(points[x], points[y], s=22, color=colours(number % 10), label=level)
    axis.set(
        xlabel=f"{x} ({100 * explained[0]:.1f} %)",
        ylabel=f"{y} ({100 * explained[1]:.1f} %)",
        title=title,
    )
    if groups is not None:
        axis.legend(fontsize=7, title=groups.name, title_fontsize=7, frameon=False)
    return figure_png(figure)


def diversity_png(diversity: pd.DataFrame, groups: pd.Series | None) -> bytes:
    """Boxplots of richness, Shannon and Simpson per level of the factor, samples as dots."""
    levels = _groups(groups, diversity.index)
    names = sorted(levels.unique())
    figure, axes = plt.subplots(
        1, len(DIVERSITY_PANELS), figsize=(3.2 * len(DIVERSITY_PANELS), 3.4), layout="constrained"
    )
    for axis, (column, label) in zip(axes, DIVERSITY_PANELS, strict=True):
        values = [diversity.loc[levels == name, column].to_numpy(dtype=float) for name in names]
        axis.boxplot(values, showfliers=False)
        for number, points in enumerate(values, start=1):
            jitter = np.linspace(-0.12, 0.12, len(points)) if len(points) > 1 else np.zeros(1)
            axis.scatter(number + jitter, points, s=8, color="#4c72b0", zorder=3)
        axis.set_xticks(range(1, len(names) + 1), names, fontsize=7, rotation=30)
        axis.set_title(label, fontsize=9)
    if groups is not None:
        figure.supxlabel(str(groups.name), fontsize=8)
    return figure_png(figure)
