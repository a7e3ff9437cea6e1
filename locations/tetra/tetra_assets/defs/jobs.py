"""One asset job per seed pipeline, plus the weekly chain (scenarios -> assessment)."""

from __future__ import annotations

import dagster as dg

PIPELINE_GROUPS = {
    "data": "data",
    "scenarios": "scenarios",
    "metrics": "metrics",
    "assessment": "assessment",
}

data_job = dg.define_asset_job(
    "tetra_data",
    selection=dg.AssetSelection.groups("data"),
    description="Market bars, macro series and events for trading days (daily 19:00).",
)
scenarios_job = dg.define_asset_job(
    "tetra_scenarios",
    selection=dg.AssetSelection.groups("scenarios"),
)
metrics_job = dg.define_asset_job("tetra_metrics", selection=dg.AssetSelection.groups("metrics"))
assessment_job = dg.define_asset_job(
    "tetra_assessment",
    selection=dg.AssetSelection.groups("assessment"),
)
weekly_chain_job = dg.define_asset_job(
    "tetra_weekly",
    selection=dg.AssetSelection.groups("scenarios", "metrics", "assessment"),
    description="Scenarios, metrics and assessment for a week, in dependency order (Sunday 20:00).",
)

PIPELINE_JOBS = {
    "data": data_job,
    "scenarios": scenarios_job,
    "metrics": metrics_job,
    "assessment": assessment_job,
}
ALL_JOBS = [*PIPELINE_JOBS.values(), weekly_chain_job]
