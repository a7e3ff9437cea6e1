"""Alerting sensors: failed runs, failed checks and overdue market-data partitions."""

from __future__ import annotations

import dagster as dg

from platform_core.alerts import build_check_failure_sensor, build_run_failure_sensor
from tetra_assets.checks import market_data_freshness

freshness_check_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=market_data_freshness,
    name="tetra_freshness_checks",
    default_status=dg.DefaultSensorStatus.RUNNING,
)

SENSORS = [
    freshness_check_sensor,
    build_run_failure_sensor("tetra"),
    build_check_failure_sensor("tetra"),
]
