"""The detection templates and thresholds: JSON files shipped with a sha256 manifest, verified
before every use."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MODEL_FILES = ("thresholds.json", "lv_template.json")
MANIFEST = "manifest.sha256"


class ModelCorruptedError(ValueError):
    """A model file whose bytes differ from its manifest entry (never retried)."""


class ModelLoadError(OSError):
    """A model file that could not be read (missing, unreadable): worth a reload."""


def load_models(folder: Path) -> dict[str, dict]:
    """``{"thresholds": ..., "lv_template": ...}`` after checking every file against the
    manifest's sha256."""
    try:
        manifest = dict(
            reversed(line.split(maxsplit=1))
            for line in (folder / MANIFEST).read_text().splitlines()
            if line.strip()
        )
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{folder / MANIFEST}: cannot read the manifest ({error})") from error
    models = {}
    for name in MODEL_FILES:
        path = folder / name
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ModelLoadError(f"{path}: cannot read ({error})") from error
        digest = hashlib.sha256(data).hexdigest()
        if manifest.get(name) != digest:
            raise ModelCorruptedError(
                f"{path}: sha256 {digest[:12]}... does not match the manifest "
                f"({(manifest.get(name) or 'no entry')[:12]}...); the file is corrupted"
            )
        try:
            models[path.stem] = json.loads(data)
        except json.JSONDecodeError as error:
            raise ModelCorruptedError(f"{path}: not valid JSON ({error})") from error
    return models
