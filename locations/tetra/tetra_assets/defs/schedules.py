"""The seed's launchd calendar as Dagster schedules, RUNNING by default (New York time)."""

import dagster as dg

from platform_core.dagster_internals import AssetJob
from tetra_assets.defs import jobs
from tetra_assets.partitions import TIMEZONE, trading_day_partitions, weekly_partitions


def _latest_partition_schedule(
    name: str,
    job: AssetJob,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    cron: str,
    description: str,
) -> dg.ScheduleDefinition:
    """Run ``job`` for the partition that is current at the scheduled time."""

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone=TIMEZONE,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        key = partitions_def.get_last_partition_key(current_time=context.scheduled_execution_time)
        if key is None:
            return dg.SkipReason("no partition exists yet")
        return dg.RunRequest(run_key=f"{name}:{key}", partition_key=key)

    return _schedule


daily_data_schedule = _latest_partition_schedule(
    "tetra_daily_data",
    jobs.data_job,
    trading_day_partitions,
    "0 19 * * 1-5",
    "Weekdays 19:00 New York: today's bars, macro series and events after the close.",
)
weekly_chain_schedule = _latest_partition_schedule(
    "tetra_weekly_chain",
    jobs.weekly_chain_job,
    weekly_partitions,
    "0 20 * * 0",
    "Sundays 20:00 New York: scenarios -> metrics -> assessment for the week ending today.",
)

SCHEDULES = [daily_data_schedule, weekly_chain_schedule]
