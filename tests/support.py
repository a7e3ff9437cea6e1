"""Helpers shared by the tests of every location."""

import dagster as dg


def latest_metadata(inst: dg.DagsterInstance, asset: str, partition: str) -> dict:
    """The metadata of the latest materialization of one asset partition."""
    records = inst.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    assert records, f"{asset} has no materialization for {partition}"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
