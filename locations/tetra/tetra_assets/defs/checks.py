"""Data-quality checks on market_data; the blocking ones keep bad bars out of the weekly chain."""

import dagster as dg
import pandas as pd

from platform_core import failure
from tetra_assets.defs.assets.data import market_data
from tetra_assets.defs.assets.metrics import FAILED_METRICS_KEY
from tetra_assets.partitions import trading_day_partitions, weekly_partitions
from tetra_assets.science import quality

BLOCKING = ("no_duplicate_dates", "positive_prices", "high_not_below_low")


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            name,
            asset=market_data,
            blocking=name in BLOCKING,
            partitions_def=trading_day_partitions,  # evaluate the run's days, not all days
        )
        for name in (*BLOCKING, "no_session_gaps", "no_missing_values")
    ],
    description="Duplicate dates, non-positive prices and high < low block downstream; gaps "
    "against the NYSE calendar and missing values warn.",
)
def market_data_quality(market_data: pd.DataFrame):
    if market_data.empty:
        for name in (*BLOCKING, "no_session_gaps", "no_missing_values"):
            yield dg.AssetCheckResult(
                check_name=name, asset_key="market_data", passed=True, metadata={"rows": 0}
            )
        return
    start = market_data["date"].min().date().isoformat()
    end = market_data["date"].max().date().isoformat()
    findings = {
        "no_duplicate_dates": quality.duplicate_dates(market_data),
        "positive_prices": quality.non_positive_prices(market_data),
        "high_not_below_low": quality.high_below_low(market_data),
        "no_session_gaps": quality.session_gaps(market_data, start, end),
    }
    for name, rows in findings.items():
        sample = rows.head(5).astype(str).to_dict(orient="records")
        yield dg.AssetCheckResult(
            check_name=name,
            asset_key="market_data",
            passed=rows.empty,
            severity=dg.AssetCheckSeverity.ERROR
            if name in BLOCKING
            else dg.AssetCheckSeverity.WARN,
            metadata={"offending_rows": len(rows), "sample": dg.MetadataValue.json(sample)},
        )
    missing = quality.missing_values(market_data)
    yield dg.AssetCheckResult(
        check_name="no_missing_values",
        asset_key="market_data",
        passed=missing.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "missing_by_column": dg.MetadataValue.json({k: int(v) for k, v in missing.items()})
        },
    )


# WARN while a partition holds a kept value (use_cached_data: the fetch failed on its last try).
market_data_fallback = failure.fallback_check("market_data", trading_day_partitions)
economic_data_fallback = failure.fallback_check("economic_data", trading_day_partitions)
# WARN while a week holds the previous good week's scenarios (use_previous_scenarios).
scenario_definitions_fallback = failure.fallback_check("scenario_definitions", weekly_partitions)
scenario_timeseries_fallback = failure.fallback_check("scenario_timeseries", weekly_partitions)
# WARN while a week's indicators lack the families that failed (partial_recovery).
technical_indicators_complete = failure.failed_items_check(
    "technical_indicators", weekly_partitions, FAILED_METRICS_KEY
)
