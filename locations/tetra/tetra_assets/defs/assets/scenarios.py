"""Scenarios pipeline (weekly, Sunday 20:00): scenario definitions and their return paths."""

import dagster as dg
import pandas as pd

from platform_core import failure
from platform_core.io import stored_partition
from platform_core.platform_models import FailureActions
from tetra_assets.defs.assets.common import (
    MARKET_HISTORY,
    WEEKLY_BACKFILL,
    WEEKLY_CHAIN_FRESHNESS,
    Window,
    fallback_inputs,
    history,
    require_clean,
    require_weeks,
    run_windows,
)
from tetra_assets.failure_actions import SEED_ACTIONS
from tetra_assets.partitions import weekly_partitions
from tetra_assets.science.ohlcv import to_wide
from tetra_assets.science.scenarios import (
    InsufficientHistory,
    ScenarioConfig,
    build_scenarios,
    long_paths,
)

DEFINITIONS, TIMESERIES = dg.AssetKey("scenario_definitions"), dg.AssetKey("scenario_timeseries")
Week = tuple[pd.DataFrame, pd.DataFrame]  # (definitions, timeseries) of one week


class ScenarioSettings(dg.Config):
    """Scenario generation knobs (sessions / counts)."""

    horizon: int = 21
    worst_windows: int = 2
    monte_carlo_paths: int = 4
    block_length: int = 5


def build_week(closes: pd.DataFrame, window: Window, settings: ScenarioConfig) -> Week:
    """One week's scenario table and long return paths, both labelled with the week."""
    returns = history(closes, window).pct_change(fill_method=None)
    try:
        table, paths = build_scenarios(returns.iloc[1:], window.key, settings)
    except InsufficientHistory as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc
    table.insert(0, "week", window.key)
    series = long_paths(paths).assign(week=window.key)
    return table, series[["week", "scenario_id", "step", "symbol", "return"]]


def previous_week(
    context: dg.AssetExecutionContext, window: Window, fresh: dict[str, Week], error: Exception
) -> tuple[str, Week]:
    """The nearest earlier good week's scenarios (computed in this run, else stored and not
    itself a fallback), re-labelled as ``window``'s week: ``use_previous_scenarios``."""
    earlier = [k for k in fresh if k < window.key]
    source = earlier[-1] if earlier else None
    if source is not None:
        kept = fresh[source]
    else:
        source = failure.last_good_partition(context.instance, DEFINITIONS, window.key)
        keys = (DEFINITIONS, TIMESERIES) if source is not None else ()
        stored = [stored_partition(context, key, source) for key in keys]
        if source is None or any(frame is None for frame in stored):
            raise dg.Failure(
                f"scenarios for {window.key}: the computation failed on its last attempt "
                f"({type(error).__name__}: {error}) and no earlier good week is stored: "
                "nothing to fall back on"
            ) from error
        kept = (stored[0], stored[1])
    return source, (kept[0].assign(week=window.key), kept[1].assign(week=window.key))


def scenario_assets(actions: FailureActions) -> dg.AssetsDefinition:
    """The scenarios pipeline's multi-asset with its failure actions (retries and, with
    ``use_previous_scenarios``, the previous good week's scenarios when a week's computation
    still fails on its last attempt; bad input is never replaced)."""

    @dg.multi_asset(
        group_name="scenarios",
        partitions_def=weekly_partitions,
        backfill_policy=WEEKLY_BACKFILL,
        retry_policy=failure.retry_policy(actions),
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
            "scenario_timeseries": {dg.AssetKey("market_data"), DEFINITIONS},
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
        windows = run_windows(context)
        require_weeks(market_data, windows)
        closes = to_wide(market_data, "close")
        fresh: dict[str, Week] = {}
        weeks: dict[str, Week] = {}
        for window in windows:
            try:
                weeks[window.key] = fresh[window.key] = build_week(closes, window, settings)
            except dg.Failure:
                raise
            except Exception as exc:  # a computation failure: retried, then the fallback
                if actions.fallback != "use_previous_scenarios" or not failure.is_last_attempt(
                    context
                ):
                    raise
                source, weeks[window.key] = previous_week(context, window, fresh, exc)
                context.log.warning(
                    f"scenarios for {window.key} failed ({exc}); keeping week {source}'s"
                )
                for key in (DEFINITIONS, TIMESERIES):
                    meta = failure.fallback_metadata(f"week {source}", exc)
                    context.add_asset_metadata(meta, asset_key=key, partition_key=window.key)
        for key in (DEFINITIONS, TIMESERIES):
            for week in fresh:
                meta = failure.fallback_metadata(None, None)
                context.add_asset_metadata(meta, asset_key=key, partition_key=week)
        read = fallback_inputs(context)
        single = len(weeks) == 1
        last = weeks[windows[-1].key][0]
        yield dg.Output(
            next(iter(weeks.values()))[0] if single else {k: w[0] for k, w in weeks.items()},
            output_name="scenario_definitions",
            metadata={
                "scenarios_per_week": len(last),
                "by_kind": dg.MetadataValue.json(last["kind"].value_counts().to_dict()),
                "preview": dg.MetadataValue.md(
                    last.drop(columns="params").to_markdown(index=False)
                ),
                **read,
            },
        )
        yield dg.Output(
            next(iter(weeks.values()))[1] if single else {k: w[1] for k, w in weeks.items()},
            output_name="scenario_timeseries",
            metadata=read,
        )

    return scenarios


# The folder loaders see the assets with the seed's actions; the location swaps in those the
# platform config sets when it builds its Definitions (tetra_assets.location).
scenarios = scenario_assets(SEED_ACTIONS["scenarios"])
