"""The cardio location's inputs: study folders (platform_core.inputs), registered from
``cardio submit`` / ``cardio run`` and from the study inbox alike. (The registry's folder name,
``studys``, is what earlier versions wrote: kept so registered studies stay found.) A study
from the inbox is confined: its files are read only inside its folder (``study_folder``)."""

from pathlib import Path

from platform_core.confine import InputFolder
from platform_core.datastore import DataStore
from platform_core.inputs import FolderInputs, InputRegistry

STUDIES = FolderInputs(InputRegistry(("studys",), "study", "cardio submit STUDY_DIR"))


def register_study(store: DataStore, folder: Path, key: str | None = None) -> str:
    """Register a study folder (key: its name unless given); returns the key."""
    return STUDIES.register(store, folder, key)


def study_folder(store: DataStore, study: str) -> InputFolder:
    """The registered study's folder, through which every run reads its files (confined to
    the folder for a study from the inbox)."""
    return STUDIES.folder(store, study)
