"""ECOD batches: one dynamic partition per submitted FASTA (``ecod submit`` or the inbox)."""

import dagster as dg

ecod_batches = dg.DynamicPartitionsDefinition(name="ecod_batch")
