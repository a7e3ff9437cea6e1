"""Registered studies (platform_core.registry): the study folder's name -> the folder it reads
from; the inbox the sensor watches is ``<data root>/cardio/inbox/``."""

from pathlib import Path

from platform_core.io import data_root
from platform_core.keys import validate_partition_key
from platform_core.registry import FolderRegistry

STUDIES = FolderRegistry("cardio", "study", "cardio run STUDY_DIR")


def array_path(asset: str, study: str, name: str) -> Path:
    """Where an asset of a study keeps an array (``.npy``) beside its JSON record."""
    return data_root() / "cardio" / asset / f"{validate_partition_key(study)}.{name}.npy"
