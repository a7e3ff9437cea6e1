"""Registered plates (platform_core.registry): the plate folder's name -> the folder it reads
from; the inbox the sensor watches is ``<data root>/imaging/inbox/`` (one sub-folder per
plate)."""

from pathlib import Path

from platform_core.io import data_root
from platform_core.keys import validate_partition_key
from platform_core.registry import FolderRegistry, RegisteredElsewhereError

PLATES = FolderRegistry("imaging", "plate", "hcs run PLATE_DIR")
PlateExistsError = RegisteredElsewhereError
registry_dir = PLATES.registry_dir
inbox_dir = PLATES.inbox_dir
register_plate = PLATES.register
plate_source = PLATES.source


def stitched_store(plate: str) -> Path:
    """Where the plate's OME-Zarr goes."""
    return data_root() / "imaging" / "stitched_plate" / f"{validate_partition_key(plate)}.ome.zarr"
