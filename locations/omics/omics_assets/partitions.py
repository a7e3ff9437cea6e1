"""One DynamicPartitionsDefinition per workflow: a partition is one run of its config. A
workflow fed by another (``input:``) shares that one's partitions, so a key is a run of both."""

import dagster as dg

from omics_assets.workflows import WorkflowDefinition


def workflow_partitions(definition: WorkflowDefinition) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=definition.partitions_name)
