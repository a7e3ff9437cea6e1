"""Validation of names that become file paths (partition keys, batch ids, plate names)."""

from __future__ import annotations

import re

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class InvalidKeyError(ValueError):
    """A key that would be unsafe or ambiguous as a path component."""


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
