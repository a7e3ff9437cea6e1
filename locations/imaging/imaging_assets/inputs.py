"""The imaging location's inputs: plate folders, read where they lie (platform_core.inputs),
registered from ``hcs submit`` / ``hcs run`` and from the plate inbox alike; and where a
plate's stitched OME-Zarr goes."""

from pathlib import Path

import dagster as dg

from platform_core.datastore import DataStore
from platform_core.inputs import FolderInputs, InputRegistry

PLATES = FolderInputs(InputRegistry(("plates",), "plate", "hcs submit PLATE_DIR"))


def register_plate(store: DataStore, folder: Path, key: str | None = None) -> str:
    """Register a plate folder (key: its name unless given); returns the key."""
    return PLATES.register(store, folder, key)


def plate_source(store: DataStore, plate: str) -> Path:
    """The folder a registered plate reads from."""
    return PLATES.source(store, plate)


def stitched_store(store: DataStore, plate: str) -> Path:
    """The plate's OME-Zarr, beside the stitched_plate table: ``<plate>.ome.zarr``."""
    return store.value_path(dg.AssetKey("stitched_plate"), plate, "ome.zarr")
