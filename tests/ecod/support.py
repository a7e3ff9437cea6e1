"""Helpers shared by the ECOD tests."""

from pathlib import Path

from ecod_assets.demo import demo_batch


def write_demo_batch(folder: Path, name: str, chains: int, seed: int) -> Path:
    """A demo FASTA with its ``.truth.tsv`` beside it."""
    fasta, truth = demo_batch(chains, seed)
    path = folder / f"{name}.fasta"
    path.write_text(fasta)
    truth.to_csv(folder / f"{name}.truth.tsv", sep="\t", index=False)
    return path
