"""Market scenarios built from a trailing window of daily returns.

A scenario is a (horizon x symbol) matrix of daily simple returns that is appended to the
observed history at the as-of date (``anchor_offset`` = 0) or replaces its last days
(``realized``: the actual last ``horizon`` days, ``anchor_offset`` = horizon). Kinds:

- ``realized``: what actually happened over the last ``horizon`` sessions.
- ``historical``: named stress episodes and the worst non-overlapping drawdown windows of the
  equal-weighted market found in the window, replayed for every symbol.
- ``regime``: bootstrap of days classified bull / bear / high-volatility by trailing 21-day
  market return and volatility.
- ``monte_carlo``: stationary block bootstrap of the whole window (whole cross-sections are
  resampled together, so correlations between symbols are kept).

Random draws are seeded from the as-of date and scenario id: the same inputs give the same
scenarios on every run.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

STRESS_EPISODES: dict[str, tuple[str, str]] = {
    "dotcom_peak_2000": ("2000-03-24", "2000-05-23"),
    "september_11_2001": ("2001-09-10", "2001-10-11"),
    "wall_street_2002": ("2002-05-17", "2002-07-23"),
    "lehman_2008": ("2008-09-12", "2008-11-20"),
    "flash_crash_2010": ("2010-04-23", "2010-07-02"),
    "us_downgrade_2011": ("2011-07-22", "2011-10-03"),
    "china_devaluation_2015": ("2015-08-10", "2015-08-25"),
    "volmageddon_2018": ("2018-01-26", "2018-02-08"),
    "q4_selloff_2018": ("2018-10-03", "2018-12-24"),
    "covid_crash_2020": ("2020-02-19", "2020-03-23"),
    "rate_shock_2022": ("2022-01-03", "2022-06-16"),
}


class InsufficientHistory(ValueError):
    """Too few sessions of history for the week's scenarios: the data's to fix, not a
    computation failure (never retried, never replaced by a fallback)."""


@dataclass(frozen=True)
class ScenarioConfig:
    horizon: int = 21
    worst_windows: int = 2
    monte_carlo_paths: int = 4
    block_length: int = 5
    regime_window: int = 21
    min_history: int = 63


def _seed(*parts: object) -> int:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def market_returns(returns: pd.DataFrame) -> pd.Series:
    """Equal-weighted market: mean daily return across symbols."""
    return returns.mean(axis=1)


def worst_windows(market: pd.Series, length: int, count: int) -> list[tuple[int, int]]:
    """Start/end row positions of the ``count`` worst non-overlapping ``length``-day windows."""
    if len(market) < length:
        return []
    log_growth = np.log1p(market.fillna(0.0)).rolling(length).sum().to_numpy()
    order = np.argsort(np.nan_to_num(log_growth, nan=np.inf))
    chosen: list[tuple[int, int]] = []
    for end in order:
        if len(chosen) == count or not np.isfinite(log_growth[end]):
            break
        start = end - length + 1
        if all(end < s or start > e for s, e in chosen):
            chosen.append((int(start), int(end)))
    return chosen


def regimes(market: pd.Series, window: int) -> pd.Series:
    """Label each day bull, bear or high_vol from trailing market return and volatility."""
    trailing = market.rolling(window).sum()
    vol = market.rolling(window).std()
    labels = pd.Series(np.where(trailing >= 0, "bull", "bear"), index=market.index, dtype=object)
    labels[vol > vol.quantile(0.8)] = "high_vol"
    return labels[trailing.notna()]


def _block_bootstrap(n_rows: int, horizon: int, block: int, rng: np.random.Generator) -> np.ndarray:
    starts = rng.integers(0, n_rows, size=-(-horizon // block))
    idx = (starts[:, None] + np.arange(block)[None, :]).ravel()[:horizon]
    return idx % n_rows


def build_scenarios(
    returns: pd.DataFrame, as_of: str, config: ScenarioConfig = ScenarioConfig()
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Scenario definitions and their return paths from a trailing window of returns.

    ``returns``: wide daily simple returns (date x symbol) up to ``as_of``. Returns the
    definitions table and ``{scenario_id: horizon x symbol returns}``.
    """
    returns = returns.dropna(how="all")
    if len(returns) < config.min_history:
        raise InsufficientHistory(
            f"scenarios for {as_of} need at least {config.min_history} sessions of history, "
            f"found {len(returns)}; materialize earlier market_data partitions first"
        )
    market = market_returns(returns)
    filled = returns.fillna(0.0)
    h = config.horizon
    rows: list[dict[str, object]] = []
    paths: dict[str, pd.DataFrame] = {}

    def add(sid: str, kind: str, path: pd.DataFrame, anchor: int, **params: object) -> None:
        rows.append(
            {
                "scenario_id": sid,
                "kind": kind,
                "horizon": len(path),
                "anchor_offset": anchor,
                "market_return": float((1.0 + market_returns(path)).prod() - 1.0),
                "params": json.dumps(params, default=str, sort_keys=True),
            }
        )
        paths[sid] = path.reset_index(drop=True)

    add("realized", "realized", filled.iloc[-h:], h, start=returns.index[-h].date())

    dates = returns.index
    for name, (lo, hi) in STRESS_EPISODES.items():
        mask = (dates >= pd.Timestamp(lo)) & (dates <= pd.Timestamp(hi))
        if mask.sum() >= 5:
            add(f"stress_{name}", "historical", filled[mask], 0, start=lo, end=hi)
    for rank, (s, e) in enumerate(worst_windows(market, h, config.worst_windows), start=1):
        add(
            f"worst_window_{rank}",
            "historical",
            filled.iloc[s : e + 1],
            0,
            start=dates[s].date(),
            end=dates[e].date(),
        )

    labels = regimes(market, config.regime_window)
    for regime in ("bull", "bear", "high_vol"):
        days = labels.index[labels == regime]
        if len(days) < config.block_length:
            continue
        rng = np.random.default_rng(_seed(as_of, "regime", regime))
        pick = rng.integers(0, len(days), size=h)
        add(f"regime_{regime}", "regime", filled.loc[days[pick]], 0, days=len(days))

    for i in range(config.monte_carlo_paths):
        rng = np.random.default_rng(_seed(as_of, "monte_carlo", i))
        idx = _block_bootstrap(len(filled), h, config.block_length, rng)
        add(f"monte_carlo_{i}", "monte_carlo", filled.iloc[idx], 0, block=config.block_length)

    return pd.DataFrame(rows), paths


def _positions(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 if absent): the few distinct values are looked
    up, not every row (4x faster on a week's string columns)."""
    codes, distinct = pd.factorize(values)
    return np.append(index.get_indexer(distinct), -1)[codes]  # code -1 (missing value): -1


def path_cube(paths: pd.DataFrame, scenario_ids: pd.Index, symbols: pd.Index) -> np.ndarray:
    """Long path rows (scenario_id, step, symbol, return) as a (scenario, step, symbol) array in
    the given id and symbol order, NaN where a row is missing or names an id or symbol not
    asked for: a pivot by position, several times cheaper than pandas' pivot or unstack."""
    steps = paths["step"].to_numpy(dtype=int)
    cube = np.full((len(scenario_ids), steps.max() + 1 if len(steps) else 0, len(symbols)), np.nan)
    sid, sym = _positions(paths["scenario_id"], scenario_ids), _positions(paths["symbol"], symbols)
    keep = (sid >= 0) & (sym >= 0)
    cube[sid[keep], steps[keep], sym[keep]] = paths["return"].to_numpy(dtype=float)[keep]
    return cube


def scenario_panel(
    closes: pd.DataFrame, definitions: pd.DataFrame, paths: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series]:
    """Every scenario's prices side by side, for backtesting them all at once.

    Each scenario is the observed closes up to its anchor (``anchor_offset`` sessions before
    the as-of date) followed by its path compounded from the last observed close at the
    anchor. Columns are (scenario_id, symbol); blocks are right-aligned so every scenario ends
    on the last row (NaN above a shorter block). Also returns each column's first scenario
    row (where evaluation starts; the rows above only warm up the signals).

    ``paths``: long rows (scenario_id, step, symbol, return), ``horizon`` steps per scenario;
    a missing return counts as 0.
    """
    symbols = closes.columns
    observed = closes.to_numpy(dtype=float)
    last_close = closes.ffill().to_numpy(dtype=float)
    ids = pd.Index(definitions["scenario_id"])
    cube = np.nan_to_num(path_cube(paths, ids, symbols))
    blocks = []
    for i, (anchor, horizon) in enumerate(
        zip(definitions["anchor_offset"], definitions["horizon"], strict=True)
    ):
        base = len(observed) - int(anchor)
        growth = np.cumprod(1.0 + cube[i, : int(horizon)], axis=0)
        blocks.append(np.vstack([observed[:base], last_close[base - 1] * growth]))
    length = max(len(block) for block in blocks)
    n = len(symbols)
    panel = np.full((length, n * len(blocks)), np.nan)
    for i, block in enumerate(blocks):
        panel[length - len(block) :, i * n : (i + 1) * n] = block
    columns = pd.MultiIndex.from_product([ids, symbols], names=["scenario_id", "symbol"])
    starts = np.repeat(length - definitions["horizon"].to_numpy(dtype=int), n)
    return pd.DataFrame(panel, columns=columns), pd.Series(starts, index=columns)


def rows_before_scenarios(
    observed_rows: int, definitions: pd.DataFrame, symbols: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each ``scenario_panel`` column: the row of the observed closes just before the
    scenario's first day (its anchor) and the symbol's column, to look up what a causal
    computation on the observed history had reached there."""
    anchors = definitions["anchor_offset"].to_numpy(dtype=int)
    rows = np.repeat(observed_rows - anchors - 1, symbols)
    return rows, np.tile(np.arange(symbols), len(anchors))


def long_paths(paths: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """{scenario_id: step x symbol returns} (at least one) -> rows (scenario_id, step, symbol,
    return). The id and symbol columns are taken from small indexes by position rather than
    built from Python strings (a week's ~25,000 rows: 10 -> 2 ms)."""
    ids = pd.Index(list(paths), dtype="str")
    every_symbol = np.concatenate([path.columns.to_numpy(dtype=object) for path in paths.values()])
    symbols = pd.Index(pd.unique(every_symbol), dtype="str")
    parts: dict[str, list[np.ndarray]] = {"scenario_id": [], "step": [], "symbol": [], "return": []}
    for code, path in enumerate(paths.values()):
        steps, width = path.shape
        parts["scenario_id"].append(np.full(steps * width, code))
        parts["step"].append(np.repeat(np.arange(steps), width))
        parts["symbol"].append(np.tile(symbols.get_indexer(path.columns), steps))
        parts["return"].append(path.to_numpy(dtype=float).ravel())
    column = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    return pd.DataFrame(
        {
            "scenario_id": ids.take(column["scenario_id"]),
            "step": column["step"],
            "symbol": symbols.take(column["symbol"]),
            "return": column["return"],
        }
    )


def paths_with_market(week_paths: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A week's scenario paths (rows scenario_id, step, symbol, return) as one wide frame of
    step x (scenario_id, symbol) returns, and beside it each scenario's equal-weighted market
    return (the benchmark of its symbols), in the same shape: every scenario's statistics in
    one vectorised call. Steps after a shorter path ends are NaN."""
    ids, symbols = (pd.Index(week_paths[c].unique()) for c in ("scenario_id", "symbol"))
    cube = path_cube(week_paths, ids, symbols)  # (scenario, step, symbol)
    paths = pd.DataFrame(
        cube.transpose(1, 0, 2).reshape(cube.shape[1], -1),
        columns=pd.MultiIndex.from_product([ids, symbols], names=["scenario_id", "symbol"]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps after a path ends
        market = np.nanmean(cube, axis=2)  # (scenario, step)
    benchmark = pd.DataFrame(np.repeat(market.T, len(symbols), axis=1), columns=paths.columns)
    return paths, benchmark
