"""Strategy ranking and the weekly assessment report (markdown + HTML with a PNG plot)."""

from __future__ import annotations

import base64
import functools
import io
import threading
from collections.abc import Sequence

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator


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


@functools.cache
def _equity_figure(labels: tuple[str, ...]) -> tuple[Figure, Axes, list[Line2D]]:
    """One figure per set of series, redrawn for every plot: building a matplotlib figure
    costs about as much as rendering it, and a backfill renders one plot per week."""
    fig = Figure(figsize=(7, 3.2), dpi=80)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.15)
    ax = fig.add_subplot()
    lines = [ax.plot([], [], label=label, linewidth=1.4)[0] for label in labels]
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    for axis in (ax.xaxis, ax.yaxis):  # tick labels are most of the drawing time
        axis.set_major_locator(MaxNLocator(5))
    ax.set_xlabel("session")
    ax.set_ylabel("equity (start = 1)")
    ax.legend(fontsize=8, loc="upper left")
    return fig, ax, lines


_PLOT_LOCK = threading.Lock()


def equity_plot_png(curves: pd.DataFrame, title: str) -> bytes:
    """Line plot of equity curves (one column per strategy) as PNG bytes."""
    with _PLOT_LOCK:
        fig, ax, lines = _equity_figure(tuple(map(str, curves.columns)))
        for line, column in zip(lines, curves.columns, strict=True):
            line.set_data(curves.index, curves[column])
        ax.relim()
        ax.autoscale_view()
        ax.set_title(title, fontsize=10)
        buffer = io.BytesIO()
        FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def report_markdown(week: str, rankings: pd.DataFrame, by_kind: pd.DataFrame, png: bytes) -> str:
    image = base64.b64encode(png).decode()
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
            f"![equity curves](data:image/png;base64,{image})",
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
