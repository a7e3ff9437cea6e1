"""The ECOD location's inputs: a batch is a FASTA copied into the data root
(``<location>/inputs/<batch>/chains.fasta``, and ``truth.tsv`` when its domains are known) and
recorded in the input registry (platform_core.inputs), from ``ecod submit`` / ``ecod run`` and
from the inbox alike.

Registration validates everything first and writes atomically, so a rejected submission
leaves nothing behind and never touches an existing batch.
"""

import hashlib
import re
from pathlib import Path

from ecod_assets.science.fasta import decode_fasta, validate_chains
from platform_core.confine import InputFolder
from platform_core.datastore import DataStore
from platform_core.inputs import InputRegistry, RegisteredElsewhereError
from platform_core.io import atomic_write
from platform_core.keys import validate_partition_key

TRUTH_SUFFIX = ".truth.tsv"
FASTA_SUFFIXES = (".fasta", ".fa", ".faa")
BATCHES = InputRegistry(("inputs",), "batch", "ecod submit FASTA")
BatchExistsError = RegisteredElsewhereError


def batch_fasta(store: DataStore, batch_id: str) -> Path:
    return store.area("inputs", batch_id) / "chains.fasta"


def batch_truth(store: DataStore, batch_id: str) -> Path:
    return store.area("inputs", batch_id) / "truth.tsv"


def _stem(fasta: Path) -> str:
    stem = fasta.name
    for suffix in FASTA_SUFFIXES:
        stem = stem.removesuffix(suffix)
    return stem


def default_batch_id(fasta: Path) -> str:
    """A safe id from the file name: unsafe characters become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", _stem(fasta)).lstrip("._-")[:100] or "batch"


def register_batch(
    store: DataStore, fasta: Path, batch_id: str | None = None, folder: InputFolder | None = None
) -> str:
    """Validate ``fasta`` and store it as batch ``batch_id`` (default: from the file name);
    returns the id. A truth table ``<name>.truth.tsv`` beside the FASTA is stored with it.
    Each file is read once, through ``folder`` when given (a confined inbox). Registering the
    same content again is a no-op; a different FASTA under a taken id raises
    BatchExistsError."""
    batch_id = validate_partition_key(batch_id or default_batch_id(fasta))
    folder = folder or InputFolder(fasta.parent, confined=False)
    with folder.open(fasta) as handle:
        data = handle.read()
    records = validate_chains(decode_fasta(data, str(fasta)), str(fasta))
    record = {"sha256": hashlib.sha256(data).hexdigest(), "chains": len(records)}
    target = batch_fasta(store, batch_id)

    def taken(_: dict) -> str:
        return (
            f"batch {batch_id!r} already exists with a different FASTA; choose another --id "
            "(existing batches are never overwritten)"
        )

    if target.exists() and not BATCHES.entry(store, batch_id).exists():  # registered unrecorded
        stored = hashlib.sha256(target.read_bytes()).hexdigest()
        BATCHES.register(store, batch_id, {**record, "sha256": stored}, taken)
    BATCHES.register(store, batch_id, record, taken)
    if not target.exists():
        truth = fasta.with_name(_stem(fasta) + TRUTH_SUFFIX)
        if truth.exists() or truth.is_symlink():
            with folder.open(truth) as handle:
                table = handle.read()
            atomic_write(batch_truth(store, batch_id), lambda tmp: tmp.write_bytes(table))
        atomic_write(target, lambda tmp: tmp.write_bytes(data))
    return batch_id


def register_dropped_batch(store: DataStore, fasta: Path) -> str:
    """``register_batch`` for a FASTA dropped into the inbox: it and its truth table are read
    only as files of the inbox, never through a link."""
    inbox = InputFolder(store.inbox().resolve(), confined=True)
    return register_batch(store, fasta, folder=inbox)
