"""Assessment pipeline (weekly, Sunday 22:00): backtests per scenario, rankings, report."""

from collections.abc import Callable
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from platform_core import failure
from platform_core.checkpoint import fingerprint
from platform_core.datastore import DataStore
from platform_core.io import atomic_write
from platform_core.platform_models import FailureActions
from tetra_assets.defs.assets.common import (
    MARKET_HISTORY,
    WEEKLY_BACKFILL,
    WEEKLY_CHAIN_FRESHNESS,
    by_week,
    describe_each,
    fallback_inputs,
    history,
    per_partition,
    require_clean,
    require_weeks,
    run_windows,
)
from tetra_assets.failure_actions import SEED_ACTIONS
from tetra_assets.partitions import weekly_partitions
from tetra_assets.science import backtest, report
from tetra_assets.science.ohlcv import to_wide
from tetra_assets.science.scenarios import rows_before_scenarios, scenario_panel

Piece = Callable[[str, Callable[[], pd.DataFrame]], pd.DataFrame]


class BacktestSettings(dg.Config):
    """Strategy parameters (sessions, z-scores)."""

    sma_fast: int = 50
    sma_slow: int = 200
    momentum_lookback: int = 60
    reversion_window: int = 20
    reversion_entry_z: float = 1.0
    reversion_exit_z: float = 0.0

    def params(self) -> dict[str, dict[str, float]]:
        return {
            "buy_and_hold": {},
            "sma_crossover": {"fast": self.sma_fast, "slow": self.sma_slow},
            "momentum": {"lookback": self.momentum_lookback},
            "mean_reversion": {
                "window": self.reversion_window,
                "entry_z": self.reversion_entry_z,
                "exit_z": self.reversion_exit_z,
            },
        }


def checkpointed(
    context: dg.AssetExecutionContext, storage: DataStore, enabled: bool, *inputs: Any
) -> tuple[Piece, failure.Checkpoints | None]:
    """How the step computes a piece: through checkpoints of its partition range and inputs
    (``checkpoint_recovery``: a retry or a re-execution from failure resumes after the
    completed pieces), else directly."""
    if not enabled:
        return (lambda _name, compute: compute()), None
    keys = context.partition_keys
    folder = storage.area("checkpoints", context.asset_key.to_python_identifier())
    pieces = failure.Checkpoints(folder / f"{keys[0]}_{keys[-1]}", fingerprint(*inputs, index=True))
    if pieces.stored():
        context.log.info(f"resuming from {len(pieces.stored())} checkpointed pieces")
    return pieces.piece, pieces


def assessment_assets(actions: FailureActions) -> list[dg.AssetsDefinition]:
    """The assessment pipeline's assets with its failure actions (retries; with
    ``checkpoint_recovery``, each week x strategy backtest checkpointed)."""
    weekly = {
        "group_name": "assessment",
        "partitions_def": weekly_partitions,
        "backfill_policy": WEEKLY_BACKFILL,
        "freshness_policy": WEEKLY_CHAIN_FRESHNESS,
        "retry_policy": failure.retry_policy(actions),
        "code_version": "1",
    }

    @dg.asset(
        ins={"market_data": MARKET_HISTORY},
        description="Buy-and-hold, SMA crossover, momentum and mean reversion backtested on every "
        "scenario and symbol (warm-up on observed history, evaluation on the scenario horizon).",
        kinds={"pandas", "arrow"},
        **weekly,
    )
    def backtest_results(
        context: dg.AssetExecutionContext,
        config: BacktestSettings,
        market_data: pd.DataFrame,
        scenario_definitions: pd.DataFrame,
        scenario_timeseries: pd.DataFrame,
        storage: DataStore,
    ):
        market_data = require_clean(market_data)
        context.add_output_metadata(
            fallback_inputs(context, "scenario_definitions", "scenario_timeseries")
        )
        windows = run_windows(context)
        require_weeks(market_data, windows)
        params = config.params()
        inputs = (market_data, scenario_definitions, scenario_timeseries)
        piece, checkpoints = checkpointed(context, storage, actions.checkpoint_recovery, *inputs)
        closes = to_wide(market_data, "close")
        definitions_by_week = by_week(scenario_definitions)
        paths_by_week = by_week(scenario_timeseries)

        def build(window) -> pd.DataFrame:
            definitions = definitions_by_week[window.key]
            observed = history(closes, window)
            panel, starts = scenario_panel(observed, definitions, paths_by_week[window.key])
            # every scenario replays the observed history up to its anchor: signals there once
            before = rows_before_scenarios(len(observed), definitions, observed.shape[1])
            observed_prices = observed.to_numpy(dtype=float)

            def run(name: str) -> pd.DataFrame:
                carry = backtest.signal_array(observed_prices, name, params[name])[before]
                return backtest.performance(panel, name, starts, params[name], carry=carry)

            parts = [  # a piece: one week x strategy, named with its parameters
                piece(
                    f"{window.key}_{name}_{fingerprint(params[name])[:8]}",
                    lambda name=name: run(name),
                )
                for name in backtest.STRATEGIES
            ]
            table = pd.concat(parts).reset_index()
            table["strategy"] = np.repeat(list(backtest.STRATEGIES), [len(p) for p in parts])
            kinds = definitions.set_index("scenario_id")["kind"]
            table.insert(1, "kind", table["scenario_id"].map(kinds))
            table.insert(0, "week", window.key)
            return table

        value = per_partition(windows, build)
        if checkpoints is not None:
            context.add_output_metadata({"checkpoints_reused": len(checkpoints.reused)})
            checkpoints.clear()  # the value is complete: the IO manager stores it next
        describe_each(
            context,
            windows,
            value,
            lambda week: {
                "backtests": len(week),
                "scenarios": int(week["scenario_id"].nunique()),
                "mean_sharpe_by_strategy": dg.MetadataValue.json(
                    week.groupby("strategy")["sharpe"].mean().round(4).to_dict()
                ),
            },
        )
        return value

    @dg.asset(
        description="Strategies ranked by mean Sharpe over all scenarios and symbols, with median "
        "return, worst drawdown, exposure and the share of cells beating buy-and-hold.",
        kinds={"pandas", "arrow"},
        **weekly,
    )
    def strategy_rankings(context: dg.AssetExecutionContext, backtest_results: pd.DataFrame):
        windows = run_windows(context)
        ranked = report.rank_strategies(backtest_results, by=["week"])
        weeks = by_week(ranked[[*ranked.columns.drop("week"), "week"]])
        value = per_partition(windows, lambda w: weeks[w.key].reset_index(drop=True))
        describe_each(
            context,
            windows,
            value,
            lambda week: {
                "best_strategy": str(week.iloc[0]["strategy"]),
                "rankings": dg.MetadataValue.md(week.to_markdown(index=False, floatfmt=".3f")),
            },
        )
        return value

    @dg.asset(
        ins={"market_data": MARKET_HISTORY},
        description="Weekly report: rankings, returns by scenario kind and the realized-scenario "
        "equity curves (PNG), as markdown in the UI and as an HTML file.",
        kinds={"html"},
        **weekly,
    )
    def assessment_report(
        context: dg.AssetExecutionContext,
        config: BacktestSettings,
        market_data: pd.DataFrame,
        backtest_results: pd.DataFrame,
        strategy_rankings: pd.DataFrame,
        storage: DataStore,
    ):
        market_data = require_clean(market_data)
        context.add_output_metadata(fallback_inputs(context))
        windows = run_windows(context)
        require_weeks(market_data, windows)
        params = config.params()
        results, rankings = by_week(backtest_results), by_week(strategy_rankings)
        by_kind = backtest_results.pivot_table(
            index=["week", "kind"], columns="strategy", values="total_return", aggfunc="mean"
        )
        all_closes = to_wide(market_data, "close")
        out_dir = storage.area("reports")
        built: dict[str, dict[str, object]] = {}
        for window in windows:
            week_results, week_rankings = results[window.key], rankings[window.key]
            closes = history(all_closes, window)
            horizon = int(week_results.loc[week_results["kind"] == "realized", "days"].max())
            start = len(closes) - horizon
            curves = backtest.mean_equity_curves(closes, start, params)
            png = report.equity_plot_png(curves, f"Realized scenario: the last {horizon} sessions")
            kinds = by_kind.loc[window.key]
            ranking_table = week_rankings.drop(columns="week")
            markdown = report.report_markdown(window.key, ranking_table, kinds, png)
            html_path = out_dir / f"{window.key}.html"
            html = report.report_html([ranking_table, kinds.reset_index()], png, window.key)
            atomic_write(html_path, lambda tmp, text=html: tmp.write_text(text))
            built[window.key] = {
                "week": window.key,
                "best_strategy": str(ranking_table.iloc[0]["strategy"]),
                "html": str(html_path),
                "final_equity": {k: float(v) for k, v in curves.iloc[-1].items()},
                "markdown": markdown,
            }
        value = per_partition(windows, lambda w: built[w.key])
        describe_each(
            context,
            windows,
            value,
            lambda week: {
                "report": dg.MetadataValue.md(str(week["markdown"])),
                "html": dg.MetadataValue.path(str(week["html"])),
                "best_strategy": str(week["best_strategy"]),
            },
        )
        return value

    return [backtest_results, strategy_rankings, assessment_report]


# The folder loaders see the assets with the seed's actions; the location swaps in those the
# platform config sets when it builds its Definitions (tetra_assets.location).
backtest_results, strategy_rankings, assessment_report = assessment_assets(
    SEED_ACTIONS["assessment"]
)
