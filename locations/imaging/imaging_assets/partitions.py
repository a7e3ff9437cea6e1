"""The imaging location's partitions: one per plate (wells fan out inside the assets)."""

import dagster as dg

plates = dg.DynamicPartitionsDefinition(name="plate")
GROUP = "imaging"
# What every plate asset declares: one partition per plate, the location's group.
PLATE_ASSET = {"partitions_def": plates, "group_name": GROUP}
