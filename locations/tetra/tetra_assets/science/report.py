"""Strategy ranking and the weekly assessment report (markdown + HTML with a PNG plot)."""

from __future__ import annotations

import base64
import functools
import io
import threading
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from platform_core.figures import markdown_image


def rank_strategies(results: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Aggregate backtests over scenarios and symbols; rank by mean Sharpe (1 = best) within
    each group of ``by`` (e.g. ``["week"]`` to rank many weeks in one pass).

    ``beats_buy_and_hold`` is the share of (scenario, symbol) cells where the strategy's total
    return exceeds buy-and-hold's on the same cell. A cell where the strategy stayed flat has
    no volatility and an undefined Sharpe; it counts as 0 (no risk taken, no reward).
    """
    by = list(by)
    cell = [*by, "scenario_id", "symbol"]
    hold = results[results["strategy"] == "buy_and_hold"].set_index(cell)["total_return"]
    hold_on_cell = hold.reindex(pd.MultiIndex.from_frame(results[cell])).to_numpy()
    scored = results.assign(
        sharpe_or_zero=results["sharpe"].fillna(0.0),
        beats=results["total_return"].to_numpy() > hold_on_cell,
    )
    groups = scored.groupby([*by, "strategy"])
    table = pd.DataFrame(
        {
            "mean_sharpe": groups["sharpe_or_zero"].mean(),
            "median_total_return": groups["total_return"].median(),
            "worst_drawdown": groups["max_drawdown"].min(),
            "mean_exposure": groups["exposure"].mean(),
            "beats_buy_and_hold": groups["beats"].mean(),
            "cells": groups.size(),
        }
    ).reset_index()
    table = table.sort_values(
        [*by, "mean_sharpe"], ascending=[True] * len(by) + [False], na_position="last"
    )
    ranks = table.groupby(by).cumcount() + 1 if by else range(1, len(table) + 1)
    table.insert(len(by), "rank", ranks)
    return table.reset_index(drop=True)


class _EquityCanvas:
    """One figure per (title, series labels, curve length), drawn in full once without the
    parts that change between plots; each plot then restores that background and draws only the
    lines, the y axis and the start line (matplotlib blitting). Text layout is most of a full
    draw, so a backfill that renders one plot per week pays for it once."""

    def __init__(self, title: str, labels: tuple[str, ...], length: int) -> None:
        self.fig = Figure(figsize=(7, 3.2), dpi=80)
        self.fig.subplots_adjust(left=0.1, right=0.78, top=0.9, bottom=0.15)
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_subplot()
        self.lines = [self.ax.plot([], [], label=label, linewidth=1.4)[0] for label in labels]
        self.start_line = self.ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
        span = max(length - 1, 1)
        self.ax.set_xlim(-0.03 * span, 1.03 * span)
        for axis in (self.ax.xaxis, self.ax.yaxis):
            axis.set_major_locator(MaxNLocator(5))
        self.ax.set_xlabel("session")
        # a figure text, not the axis label: the y axis is redrawn per plot, its label need not
        self.fig.text(0.01, 0.52, "equity (start = 1)", rotation=90, va="center")
        self.ax.set_title(title, fontsize=10)
        # outside the axes: the legend is background and never hides a curve
        self.ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        self.changing = [*self.lines, self.start_line, self.ax.yaxis]
        for artist in self.changing:
            artist.set_visible(False)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        for artist in self.changing:
            artist.set_visible(True)

    def png(self, curves: pd.DataFrame) -> bytes:
        self.canvas.restore_region(self.background)
        for line, column in zip(self.lines, curves.columns, strict=True):
            line.set_data(np.arange(len(curves)), curves[column].to_numpy())
        self.ax.relim()
        self.ax.autoscale_view(scalex=False)
        for artist in self.changing:
            self.ax.draw_artist(artist)
        rgb = np.asarray(self.canvas.buffer_rgba())[..., :3]
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="png", compress_level=1)  # ~2.5 ms less
        return buffer.getvalue()


_equity_canvas = functools.lru_cache(maxsize=8)(_EquityCanvas)
_PLOT_LOCK = threading.Lock()


def equity_plot_png(curves: pd.DataFrame, title: str) -> bytes:
    """Line plot of equity curves (one column per strategy, one row per session) as PNG bytes.
    Plots that share a title, strategies and length reuse one figure: keep ``title`` free of
    what changes from plot to plot (the report's heading names the week)."""
    with _PLOT_LOCK:
        canvas = _equity_canvas(title, tuple(map(str, curves.columns)), len(curves))
        return canvas.png(curves)


def report_markdown(week: str, rankings: pd.DataFrame, by_kind: pd.DataFrame, png: bytes) -> str:
    return "\n\n".join(
        [
            f"# Tetra assessment, week of {week}",
            f"Best strategy: **{rankings.iloc[0]['strategy']}** "
            f"(mean Sharpe {rankings.iloc[0]['mean_sharpe']:.2f}).",
            "## Strategy rankings",
            rankings.to_markdown(index=False, floatfmt=".3f"),
            "## Mean total return by scenario kind",
            by_kind.to_markdown(floatfmt=".3f"),
            "## Equity curves, realized scenario (mean over symbols)",
            markdown_image(png, "equity curves"),
        ]
    )


def report_html(tables: list[pd.DataFrame], png: bytes, week: str) -> str:
    image = base64.b64encode(png).decode()
    body = "".join(t.to_html(index=False, float_format="%.3f", border=0) for t in tables)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Tetra {week}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px}</style></head>"
        f"<body><h1>Tetra assessment, week of {week}</h1>{body}"
        f"<img alt='equity curves' src='data:image/png;base64,{image}'></body></html>"
    )
