"""The seed's launchd calendar as Dagster schedules, RUNNING by default (New York time)."""

import dagster as dg

from platform_core.dagster_internals import AssetJob
from platform_core.platform_config import ConfigError, LoadedConfig
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


# pipeline -> (schedule, its job, partitions, the seed's cron, what it does); the weekly chain
# starts with scenarios, and metrics and assessment follow it in dependency order.
PLAN = {
    "data": (
        "tetra_daily_data",
        jobs.data_job,
        trading_day_partitions,
        "0 19 * * 1-5",
        "Weekdays 19:00 New York: today's bars, macro series and events after the close.",
    ),
    "scenarios": (
        "tetra_weekly_chain",
        jobs.weekly_chain_job,
        weekly_partitions,
        "0 20 * * 0",
        "Sundays 20:00 New York: scenarios -> metrics -> assessment for the week ending today.",
    ),
}
SCHEDULES = [_latest_partition_schedule(*plan) for plan in PLAN.values()]


def configured_schedules(cfg: LoadedConfig) -> list[dg.ScheduleDefinition]:
    """The schedules with the crons of ``locations.tetra.pipelines.<pipeline>.schedule``
    (New York time) where the platform config sets one. A schedule on metrics or assessment
    is refused, naming the file and line: they run in the weekly chain after scenarios."""
    found = []
    for group in ("metrics", "assessment"):
        if cfg.pipeline("tetra", group).schedule is not None:
            path = ("locations", "tetra", "pipelines", group, "schedule")
            raise ConfigError(
                f"{cfg.where(*path)}: {'.'.join(path)}: {group} runs in the weekly chain after "
                "scenarios; schedule the chain with pipelines.scenarios.schedule"
            )
    for group, (name, job, partitions, default, description) in PLAN.items():
        cron = cfg.pipeline("tetra", group).schedule
        if cron is not None and cron != default:
            text = f"{description.split(':', 1)[1].strip()} (cron {cron}, platform config)"
            found.append(_latest_partition_schedule(name, job, partitions, cron, text))
    return found
