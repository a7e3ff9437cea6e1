"""Scenarios pipeline (weekly, Sunday 20:00): scenario definitions and their return paths."""

import dagster as dg
import pandas as pd

from tetra_assets.defs.assets.common import (
    MARKET_HISTORY,
    WEEKLY_BACKFILL,
    WEEKLY_CHAIN_FRESHNESS,
    history,
    require_clean,
    require_weeks,
    run_windows,
)
from tetra_assets.partitions import weekly_partitions
from tetra_assets.science.ohlcv import to_wide
from tetra_assets.science.scenarios import ScenarioConfig, build_scenarios, long_paths


class ScenarioSettings(dg.Config):
    """Scenario generation knobs (sessions / counts)."""

    horizon: int = 21
    worst_windows: int = 2
    monte_carlo_paths: int = 4
    block_length: int = 5


@dg.multi_asset(
    group_name="scenarios",
    partitions_def=weekly_partitions,
    backfill_policy=WEEKLY_BACKFILL,
    ins={"market_data": MARKET_HISTORY},
    outs={
        "scenario_definitions": dg.AssetOut(
            description="One row per scenario: id, kind (realized, historical, regime, "
            "monte_carlo), horizon, anchor offset, market return, parameters.",
            freshness_policy=WEEKLY_CHAIN_FRESHNESS,
            code_version="1",
            kinds={"pandas", "arrow"},
        ),
        "scenario_timeseries": dg.AssetOut(
            description="Daily simple returns per (week, scenario, step, symbol).",
            freshness_policy=WEEKLY_CHAIN_FRESHNESS,
            code_version="1",
            kinds={"pandas", "arrow"},
        ),
    },
    internal_asset_deps={
        "scenario_definitions": {dg.AssetKey("market_data")},
        "scenario_timeseries": {dg.AssetKey("market_data"), dg.AssetKey("scenario_definitions")},
    },
)
def scenarios(
    context: dg.AssetExecutionContext, config: ScenarioSettings, market_data: pd.DataFrame
):
    market_data = require_clean(market_data)
    settings = ScenarioConfig(
        horizon=config.horizon,
        worst_windows=config.worst_windows,
        monte_carlo_paths=config.monte_carlo_paths,
        block_length=config.block_length,
    )
    definitions: dict[str, pd.DataFrame] = {}
    series: dict[str, pd.DataFrame] = {}
    windows = run_windows(context)
    require_weeks(market_data, windows)
    closes = to_wide(market_data, "close")
    for window in windows:
        returns = history(closes, window).pct_change(fill_method=None)
        try:
            table, paths = build_scenarios(returns.iloc[1:], window.key, settings)
        except ValueError as exc:
            raise dg.Failure(str(exc)) from exc
        table.insert(0, "week", window.key)
        definitions[window.key] = table
        series[window.key] = long_paths(paths).assign(week=window.key)[
            ["week", "scenario_id", "step", "symbol", "return"]
        ]
    keys = list(definitions)
    single = len(keys) == 1
    last = definitions[keys[-1]]
    yield dg.Output(
        definitions[keys[0]] if single else definitions,
        output_name="scenario_definitions",
        metadata={
            "scenarios_per_week": len(last),
            "by_kind": dg.MetadataValue.json(last["kind"].value_counts().to_dict()),
            "preview": dg.MetadataValue.md(last.drop(columns="params").to_markdown(index=False)),
        },
    )
    yield dg.Output(series[keys[0]] if single else series, output_name="scenario_timeseries")
