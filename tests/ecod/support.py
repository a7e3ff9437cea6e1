"""Helpers shared by the ECOD tests."""

from pathlib import Path

import dagster as dg

from ecod_assets.demo import demo_batch


def write_demo_batch(folder: Path, name: str, chains: int, seed: int) -> Path:
    """A demo FASTA with its ``.truth.tsv`` beside it."""
    fasta, truth = demo_batch(chains, seed)
    path = folder / f"{name}.fasta"
    path.write_text(fasta)
    truth.to_csv(folder / f"{name}.truth.tsv", sep="\t", index=False)
    return path


def latest_metadata(inst: dg.DagsterInstance, asset: str, batch: str) -> dict:
    records = inst.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[batch]), limit=1
    ).records
    assert records, f"{asset} has no materialization for {batch}"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
