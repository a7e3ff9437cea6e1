"""Where submitted batches live: ``<data root>/ecod/inputs/<batch id>/chains.fasta`` (and
``truth.tsv`` when the batch has known domains), and the inbox the sensor watches.

Registration validates everything first and writes atomically, so a rejected submission leaves
nothing behind and never touches an existing batch.
"""

import hashlib
import re
import shutil
from pathlib import Path

from ecod_assets.science.fasta import read_fasta, validate_chains
from platform_core.io import atomic_write, data_root
from platform_core.keys import validate_partition_key

TRUTH_SUFFIX = ".truth.tsv"
FASTA_SUFFIXES = (".fasta", ".fa", ".faa")


class BatchExistsError(ValueError):
    """A batch id is taken by a different FASTA."""


def inputs_dir() -> Path:
    return data_root() / "ecod" / "inputs"


def inbox_dir() -> Path:
    return data_root() / "ecod" / "inbox"


def batch_fasta(batch_id: str) -> Path:
    return inputs_dir() / validate_partition_key(batch_id) / "chains.fasta"


def batch_truth(batch_id: str) -> Path:
    return inputs_dir() / validate_partition_key(batch_id) / "truth.tsv"


def _stem(fasta: Path) -> str:
    stem = fasta.name
    for suffix in FASTA_SUFFIXES:
        stem = stem.removesuffix(suffix)
    return stem


def default_batch_id(fasta: Path) -> str:
    """A safe id from the file name: unsafe characters become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", _stem(fasta)).lstrip("._-")[:100] or "batch"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def register_batch(fasta: Path, batch_id: str) -> int:
    """Validate ``fasta`` and store it as batch ``batch_id``; returns the number of chains.

    A truth table ``<name>.truth.tsv`` beside the FASTA is stored with it. Registering the same
    content again is a no-op; a different FASTA under a taken id raises BatchExistsError.
    """
    validate_partition_key(batch_id)
    records = validate_chains(read_fasta(fasta), str(fasta))
    target = batch_fasta(batch_id)
    if target.exists():
        if digest(target) != digest(fasta):
            raise BatchExistsError(
                f"batch {batch_id!r} already exists with a different FASTA; choose another "
                "--batch-id (existing batches are never overwritten)"
            )
        return len(records)
    truth = fasta.with_name(_stem(fasta) + TRUTH_SUFFIX)
    if truth.exists():
        atomic_write(batch_truth(batch_id), lambda tmp: shutil.copyfile(truth, tmp))
    atomic_write(target, lambda tmp: shutil.copyfile(fasta, tmp))
    return len(records)
