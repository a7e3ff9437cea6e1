"""The two rules for names that users give: names that become Dagster names (workflows,
pipelines) and partition keys (batches, plates, studies, runs). Names are data, never paths:
every entry point checks its names here. Also how a list held in one setting is read."""

from __future__ import annotations

import re

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NAME_RULE = r"^[A-Za-z_][A-Za-z0-9_]*$"  # Dagster's own rule for job and asset names
_NAME = re.compile(NAME_RULE)


class InvalidKeyError(ValueError):
    """A key that would be unsafe or ambiguous as a path component."""


class InvalidNameError(InvalidKeyError):
    """A name that Dagster would refuse as a job, asset or group name."""


def validate_partition_key(key: str) -> str:
    """Return ``key`` if it is a safe single path component, else raise ``InvalidKeyError``.

    Allowed: letters, digits, ``.``, ``_``, ``-``; must start with a letter or digit; at most
    128 characters; never ``..``. This rejects ``/``, ``\\``, NUL, spaces and hidden names.
    """
    if not isinstance(key, str) or not _SAFE_KEY.fullmatch(key) or ".." in key:
        raise InvalidKeyError(
            f"invalid key {key!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, with no '/' and no '..'"
        )
    return key


def validate_name(name: object, what: str = "name") -> str:
    """Return ``name`` if Dagster accepts it as a job or asset name (``NAME_RULE``, at most
    128 characters), else raise ``InvalidNameError`` naming ``what`` (``"workflow name"``)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > 128:
        raise InvalidNameError(
            f"invalid {what} {name!r}: use letters, digits and '_', starting with a letter or "
            f"'_' (Dagster's rule {NAME_RULE}), at most 128 characters"
        )
    return name


def comma_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: list settings held in one environment variable."""
    return [item.strip() for item in text.split(",") if item.strip()]
