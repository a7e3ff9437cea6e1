"""ECOD X/H/T/F assignment of placed domains, and the export table."""

from __future__ import annotations

import pandas as pd

from ecod_assets.science.evidence import with_hierarchy

CLASSIFICATION_COLUMNS = [
    "chain_id",
    "domain_number",
    "range",
    "start",
    "end",
    "length",
    "ecod_domain_id",
    "f_id",
    "x_group",
    "h_group",
    "t_group",
    "x_name",
    "h_name",
    "t_name",
    "f_name",
    "evidence_type",
    "evalue",
    "probability",
    "identity",
    "coverage",
    "chain_quality",
]
EXPORT_COLUMNS = [
    "chain_id",
    "domain_number",
    "range",
    "ecod_domain_id",
    "f_id",
    "x_name",
    "h_name",
    "t_name",
    "f_name",
    "evidence_type",
    "probability",
    "evalue",
]


def classify(partition: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Each placed domain takes the X/H/T/F groups of the reference domain whose evidence
    placed it. ``partition``: rows of ``partition_domains``; ``reference``: the library's
    domains (ecod_domain_id, f_id, x/h/t/f names)."""
    domains = partition[partition["domain_number"] > 0]
    table = domains.rename(
        columns={"target": "ecod_domain_id", "type": "evidence_type", "quality": "chain_quality"}
    )
    table = with_hierarchy(table, reference, on="ecod_domain_id")
    return table[CLASSIFICATION_COLUMNS].reset_index(drop=True)
