"""The weekly report's equity plot: a reused (blitted) figure draws exactly what a fresh one
draws, and each plot shows its own curves."""

import io

import numpy as np
import pandas as pd
from PIL import Image

from tetra_assets.science import report

STRATEGIES = ["buy_and_hold", "sma_crossover", "momentum", "mean_reversion"]
TITLE = "Realized scenario: the last 21 sessions"


def curves(seed: int, scale: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, scale, (22, len(STRATEGIES)))
    return pd.DataFrame(np.cumprod(1.0 + steps, axis=0), columns=STRATEGIES)


def pixels(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_reused_figure_draws_what_a_fresh_figure_draws() -> None:
    calm, wild = curves(1, 0.002), curves(2, 0.05)  # very different y ranges and tick labels
    report._equity_canvas.cache_clear()
    fresh_wild = pixels(report.equity_plot_png(wild, TITLE))
    report._equity_canvas.cache_clear()
    first_calm = pixels(report.equity_plot_png(calm, TITLE))
    reused_wild = pixels(report.equity_plot_png(wild, TITLE))
    assert report._equity_canvas.cache_info().hits == 1  # the second plot reused the figure
    np.testing.assert_array_equal(reused_wild, fresh_wild)  # nothing of the calm plot is left
    assert (first_calm != reused_wild).any(axis=2).sum() > 500  # the plots do differ


def test_each_strategy_line_is_drawn_in_its_colour() -> None:
    report._equity_canvas.cache_clear()
    image = pixels(report.equity_plot_png(curves(3, 0.01), TITLE)).astype(int)
    # matplotlib's default cycle: blue, orange, green, red, one per strategy
    for colour in [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]:
        close = (np.abs(image - np.array(colour)).sum(axis=2) < 30).sum()
        assert close > 100, f"no line in {colour}"
