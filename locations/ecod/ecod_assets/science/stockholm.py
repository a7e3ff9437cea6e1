"""Stockholm multiple alignments (Pfam seeds): member names and their ungapped sequences."""

from __future__ import annotations

import gzip
from pathlib import Path

GAP_CHARACTERS = ".-~"
GAPS = str.maketrans("", "", GAP_CHARACTERS)


class StockholmError(ValueError):
    """Not a Stockholm alignment; the message says where."""


def read_stockholm(path: Path) -> list[tuple[str, str]]:
    """(name, sequence) of each member of the first alignment in ``path``, in file order,
    gaps removed and upper case; interleaved blocks are joined."""
    return [(name, row.translate(GAPS).upper()) for name, row in read_alignment(path)]


def read_alignment(path: Path) -> list[tuple[str, str]]:
    """(name, aligned row) of each member of the first alignment in ``path`` (plain or
    gzip-compressed), in file order, interleaved blocks joined; rows keep their gaps."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    lines = data.decode(errors="replace").splitlines()
    if not lines or not lines[0].startswith("# STOCKHOLM"):
        raise StockholmError(f"{path}:1: no '# STOCKHOLM 1.0' header; not a Stockholm file")
    rows: dict[str, list[str]] = {}
    for number, line in enumerate(lines[1:], start=2):
        if line.startswith("//"):
            break
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise StockholmError(f"{path}:{number}: expected 'name aligned-sequence'")
        rows.setdefault(fields[0], []).append(fields[1])
    if not rows:
        raise StockholmError(f"{path}: no alignment rows")
    return [(name, "".join(parts)) for name, parts in rows.items()]
