"""The imaging location's inputs: plate folders, read where they lie (platform_core.inputs),
registered from ``hcs submit`` / ``hcs run`` and from the plate inbox alike; and where a
plate's stitched OME-Zarr goes.

Every file of a plate is read at run time through its ``plate_folder``: a plate from the
inbox is confined (a file that became a link out of the plate is refused when opened); one
registered from the CLI is read as the user wrote it."""

from pathlib import Path

import dagster as dg

from platform_core.confine import InputFolder
from platform_core.datastore import DataStore
from platform_core.inputs import FolderInputs, InputRegistry

PLATES = FolderInputs(InputRegistry(("plates",), "plate", "hcs submit PLATE_DIR"))


def register_plate(store: DataStore, folder: Path, key: str | None = None) -> str:
    """Register a plate folder (key: its name unless given); returns the key."""
    return PLATES.register(store, folder, key)


def plate_folder(store: DataStore, plate: str) -> InputFolder:
    """The folder a registered plate reads from, and whether it is confined (from the inbox)."""
    return PLATES.folder(store, plate)


def beside_plate(folder: InputFolder) -> InputFolder:
    """The folder holding a plate (its demo truth table lies beside it), as confined as the
    plate: for a dropped plate, the inbox, never a link out of it."""
    return InputFolder(folder.path.parent, folder.confined)


def stitched_store(store: DataStore, plate: str) -> Path:
    """The plate's OME-Zarr, beside the stitched_plate table: ``<plate>.ome.zarr``."""
    return store.value_path(dg.AssetKey("stitched_plate"), plate, "ome.zarr")
