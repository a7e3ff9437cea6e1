"""The cardio location's partitions: one per study folder."""

import dagster as dg

studies = dg.DynamicPartitionsDefinition(name="cardio_study")
GROUP = "cardio"
# What every study asset declares: one partition per study, the location's group.
STUDY_ASSET = {"partitions_def": studies, "group_name": GROUP}
