"""Strategy ranking and the weekly assessment report (markdown + HTML with a PNG plot)."""

from __future__ import annotations

import base64
import io

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def rank_strategies(results: pd.DataFrame) -> pd.DataFrame:
    """Aggregate backtests over scenarios and symbols; rank by mean Sharpe (1 = best).

    ``beats_buy_and_hold`` is the share of (scenario, symbol) cells where the strategy's total
    return exceeds buy-and-hold's on the same cell. A cell where the strategy stayed flat has
    no volatility and an undefined Sharpe; it counts as 0 (no risk taken, no reward).
    """
    hold = results[results["strategy"] == "buy_and_hold"].set_index(["scenario_id", "symbol"])
    rows = []
    for strategy, group in results.groupby("strategy"):
        cells = group.set_index(["scenario_id", "symbol"])
        rows.append(
            {
                "strategy": strategy,
                "mean_sharpe": cells["sharpe"].fillna(0.0).mean(),
                "median_total_return": cells["total_return"].median(),
                "worst_drawdown": cells["max_drawdown"].min(),
                "mean_exposure": cells["exposure"].mean(),
                "beats_buy_and_hold": float(
                    (cells["total_return"] > hold["total_return"].reindex(cells.index)).mean()
                ),
                "cells": len(cells),
            }
        )
    table = pd.DataFrame(rows).sort_values("mean_sharpe", ascending=False, na_position="last")
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.reset_index(drop=True)


def equity_plot_png(curves: pd.DataFrame, title: str) -> bytes:
    """Line plot of equity curves (one column per strategy) as PNG bytes."""
    fig = Figure(figsize=(7, 3.2), dpi=80)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.15)
    ax = fig.add_subplot()
    for column in curves.columns:
        ax.plot(curves.index, curves[column], label=column, linewidth=1.4)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("session")
    ax.set_ylabel("equity (start = 1)")
    ax.legend(fontsize=8, loc="best")
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
