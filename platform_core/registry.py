"""Registered input folders: partition key (the folder's name) -> the folder it reads from.

A plate (imaging) or a study (cardio) is read where it lies and never written to; the registry
lives under ``<data root>/<location>/<kind>s/<key>.json``. The inbox the location's sensor
watches is ``<data root>/<location>/inbox/`` (one sub-folder per item).
"""

import json
from dataclasses import dataclass
from pathlib import Path

from platform_core.io import data_root, write_json
from platform_core.keys import validate_partition_key


class RegisteredElsewhereError(ValueError):
    """A key is registered for a different folder."""


@dataclass(frozen=True)
class FolderRegistry:
    """The registry of one location's input folders (``kind``: "plate", "study", ...;
    ``command``: how a user registers one, quoted in errors)."""

    location: str
    kind: str
    command: str

    def registry_dir(self) -> Path:
        return data_root() / self.location / f"{self.kind}s"

    def inbox_dir(self) -> Path:
        return data_root() / self.location / "inbox"

    def register(self, folder: Path, key: str | None = None) -> str:
        """Register ``folder`` under ``key`` (default: the folder's name, validated); returns
        the key. Registering the same folder again is a no-op; a key is never repointed."""
        source = folder.resolve()
        if not source.is_dir():
            raise FileNotFoundError(f"{folder}: no such {self.kind} folder")
        key = validate_partition_key(key or folder.name)
        entry = self.registry_dir() / f"{key}.json"
        if entry.exists():
            known = json.loads(entry.read_text())["source"]
            if known != str(source):
                raise RegisteredElsewhereError(
                    f"{self.kind} {key!r} is already registered for {known}; rename the folder "
                    f"or pass another {self.kind} name (registered {self.kind}s are never "
                    "repointed)"
                )
            return key
        write_json(entry, {"source": str(source)})
        return key

    def source(self, key: str) -> Path:
        """The folder a registered key reads from."""
        entry = self.registry_dir() / f"{validate_partition_key(key)}.json"
        if not entry.exists():
            raise FileNotFoundError(f"{self.kind} {key!r} is not registered (run `{self.command}`)")
        return Path(json.loads(entry.read_text())["source"])
