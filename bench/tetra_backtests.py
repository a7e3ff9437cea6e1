"""Benchmark: 4 strategies x N symbols x 5 years, our vectorised backtests vs vectorbt.

    uv run --extra bench python bench/tetra_backtests.py [--symbols 100] [--repeat 3]

Both engines get the same synthetic closes (2019-2023) and the same signals; vectorbt
trades them with ``Portfolio.from_signals`` (all-in, no fees, fractional size), which equals
``position = signal.shift(1)`` compounding. Prints best-of-N wall times and the largest
difference in final equity.
"""

import argparse
import time

import numpy as np
import pandas as pd
import vectorbt as vbt

from tetra_assets.science import backtest
from tetra_assets.science.ohlcv import synthetic, synthetic_symbols, to_wide


def best_of(repeat: int, fn) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def ours(close: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {name: backtest.performance(close, name)["total_return"] for name in backtest.STRATEGIES}
    )


def theirs(close: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for name in backtest.STRATEGIES:
        held = backtest.signal(close, name).astype(bool)
        portfolio = vbt.Portfolio.from_signals(
            close, entries=held, exits=~held, init_cash=1.0, fees=0.0, freq="1D"
        )
        out[name] = portfolio.total_return()
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    close = to_wide(synthetic(synthetic_symbols(args.symbols), "2019-01-01", "2023-12-29"), "close")
    theirs(close.iloc[:300, :2])  # JIT-compile vectorbt's numba kernels outside the timing
    ours_s, our_returns = best_of(args.repeat, lambda: ours(close))
    theirs_s, their_returns = best_of(args.repeat, lambda: theirs(close))
    diff = float(np.nanmax(np.abs(our_returns.to_numpy() - their_returns.to_numpy())))
    print(f"{close.shape[0]} sessions x {close.shape[1]} symbols x 4 strategies")
    print(
        f"ours (numpy): {ours_s * 1000:.0f} ms   vectorbt: {theirs_s * 1000:.0f} ms   "
        f"ratio vectorbt/ours: {theirs_s / ours_s:.1f}x"
    )
    print(f"max |total return difference| over {our_returns.size} backtests: {diff:.2e}")


if __name__ == "__main__":
    main()
