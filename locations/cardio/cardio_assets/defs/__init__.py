"""What Dagster loads for the cardio location: its assets, checks, jobs and schedules (the
shared sensors, resources and executor come from the location kit: location.py)."""
