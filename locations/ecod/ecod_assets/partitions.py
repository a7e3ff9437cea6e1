"""ECOD batches: one dynamic partition per submitted FASTA (``ecod submit`` or the inbox)."""

import dagster as dg

ecod_batches = dg.DynamicPartitionsDefinition(name="ecod_batch")
# The asset group of every batch stage (the reference library has its own group).
BATCH_GROUP = "ecod"
