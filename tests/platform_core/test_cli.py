"""Shared CLI helpers that reimplement a Dagster rule for use without a daemon."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from platform_core.runstats import stale_after

NEW_YORK = ZoneInfo("America/New_York")


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK).timestamp()


def test_stale_after_follows_the_daemons_rules() -> None:
    weekday_close = dg.FreshnessPolicy.cron(
        deadline_cron="0 20 * * 1-5", lower_bound_delta=timedelta(hours=2), timezone=str(NEW_YORK)
    )
    # Friday 19:05, inside Friday's window (18:00-20:00): fresh until Monday's deadline
    assert stale_after(weekday_close, _at("2018-06-01 19:05")) == _at("2018-06-04 20:00")
    # Friday 17:00, before the window opens: already stale at Friday's deadline
    assert stale_after(weekday_close, _at("2018-06-01 17:00")) == _at("2018-06-01 20:00")
    window = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=30))
    assert stale_after(window, 1_000.0) == 1_000.0 + 30 * 3600
