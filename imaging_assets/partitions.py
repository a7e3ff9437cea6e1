"""The imaging location's partitions: one per plate (wells fan out inside the assets)."""

import dagster as dg

plates = dg.DynamicPartitionsDefinition(name="plate")
GROUP = "imaging"
