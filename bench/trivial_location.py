"""A bench-only code location: what the platform adds per run, without the science.

``trivial`` does nothing (no stored value), so a run of ``trivial_job`` costs only the launch,
the run process and the event log. ``daily_marker`` has exactly 1,000 daily partitions and a
single-run backfill policy, to fill a 1,000-partition status page in the UI.
"""

import dagster as dg

THOUSAND_DAYS = dg.DailyPartitionsDefinition(start_date="2020-01-01", end_date="2022-09-27")


@dg.asset
def trivial() -> dg.MaterializeResult:
    """Nothing: a run of it measures the platform's own cost."""
    return dg.MaterializeResult()


@dg.asset(partitions_def=THOUSAND_DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def daily_marker() -> dg.MaterializeResult:
    """One event per day of the range, no stored value."""
    return dg.MaterializeResult()


trivial_job = dg.define_asset_job(
    "trivial_job", selection=[trivial], executor_def=dg.in_process_executor
)
defs = dg.Definitions(assets=[trivial, daily_marker], jobs=[trivial_job])
