"""Registered plates: partition key (the plate folder's name) -> the folder it reads from.

The plate folder itself is never written to; the registry lives under
``<data root>/imaging/plates/<plate>.json``. The inbox the sensor watches is
``<data root>/imaging/inbox/`` (one sub-folder per plate).
"""

import json
from pathlib import Path

from platform_core.io import data_root, write_json
from platform_core.keys import validate_partition_key


class PlateExistsError(ValueError):
    """A plate name is registered for a different folder."""


def registry_dir() -> Path:
    return data_root() / "imaging" / "plates"


def inbox_dir() -> Path:
    return data_root() / "imaging" / "inbox"


def register_plate(folder: Path, plate: str | None = None) -> str:
    """Register ``folder`` under ``plate`` (default: the folder's name, validated); returns
    the plate key. Registering the same folder again is a no-op."""
    source = folder.resolve()
    if not source.is_dir():
        raise FileNotFoundError(f"{folder}: no such plate folder")
    key = validate_partition_key(plate or folder.name)
    entry = registry_dir() / f"{key}.json"
    if entry.exists():
        known = json.loads(entry.read_text())["source"]
        if known != str(source):
            raise PlateExistsError(
                f"plate {key!r} is already registered for {known}; rename the folder or pass "
                "another plate name (registered plates are never repointed)"
            )
        return key
    write_json(entry, {"source": str(source)})
    return key


def plate_source(plate: str) -> Path:
    """The folder a registered plate reads from."""
    entry = registry_dir() / f"{validate_partition_key(plate)}.json"
    if not entry.exists():
        raise FileNotFoundError(f"plate {plate!r} is not registered (run `hcs run PLATE_DIR`)")
    return Path(json.loads(entry.read_text())["source"])


def stitched_store(plate: str) -> Path:
    """Where the plate's OME-Zarr goes."""
    return data_root() / "imaging" / "stitched_plate" / f"{validate_partition_key(plate)}.ome.zarr"
