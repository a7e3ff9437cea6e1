"""What users look at after a pipeline: per-well counts, areas and intensities, and a plate
heatmap of counts. No Dagster here."""

from __future__ import annotations

import numpy as np
import pandas as pd

from imaging_assets.science.layouts import row_letters, row_number, split_well
from platform_core.figures import figure_png

INTENSITY = "mean_intensity_"


def well_summary(objects: pd.DataFrame | None, wells: list[str]) -> pd.DataFrame:
    """One row per well: object count, mean area (pixels), mean intensity per channel (the
    ``mean_intensity_<channel>`` columns of a measure_objects table)."""
    frame = pd.DataFrame({"well": wells})
    if objects is None or "well" not in objects:
        return frame.assign(objects=pd.NA)
    grouped = objects.groupby("well")
    counts = grouped.size().rename("objects")
    frame = frame.merge(counts, on="well", how="left")
    frame["objects"] = frame["objects"].fillna(0).astype(int)
    means = [c for c in objects.columns if c == "area_px" or c.startswith(INTENSITY)]
    if means:
        averages = grouped[means].mean().rename(columns={"area_px": "mean_area_px"})
        frame = frame.merge(averages, on="well", how="left")
    return frame


def plate_heatmap_png(values: dict[str, float], title: str) -> bytes:
    """A plate map (rows A.., columns 1..) coloured by ``values`` per well; empty wells grey."""
    from matplotlib.figure import Figure

    positions = {well: split_well(well) for well in values}
    rows = max([row_number(r) for r, _ in positions.values()] + [8])
    columns = max([c for _, c in positions.values()] + [12])
    grid = np.full((rows, columns), np.nan)
    for well, (row, column) in positions.items():
        grid[row_number(row) - 1, column - 1] = values[well]
    figure = Figure(figsize=(max(4.0, columns * 0.45), max(2.5, rows * 0.4)))
    axes = figure.subplots()
    shown = axes.imshow(np.ma.masked_invalid(grid), cmap="viridis")
    axes.set_xticks(range(columns), [str(c + 1) for c in range(columns)], fontsize=7)
    axes.set_yticks(range(rows), [row_letters(r + 1) for r in range(rows)], fontsize=7)
    axes.set_facecolor("#dddddd")
    axes.set_title(title, fontsize=9)
    figure.colorbar(shown, ax=axes, shrink=0.8)
    return figure_png(figure)
