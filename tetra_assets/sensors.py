"""Alerting sensors: failed runs, failed checks and stale assets reach the notifier."""

from platform_core.alerts import alert_sensors

SENSORS = alert_sensors("tetra")
