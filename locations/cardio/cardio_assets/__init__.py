"""Cardiology studies (seed 002) as study-partitioned assets."""
