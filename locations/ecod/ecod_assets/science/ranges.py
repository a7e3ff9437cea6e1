"""Residue ranges in ECOD notation: ``A:10-120,A:130-150`` or ``10-120,130-150`` (1-based,
inclusive). A domain may be discontinuous, so a range is a tuple of segments."""

from __future__ import annotations

import re

Segment = tuple[int, int]
_SEGMENT = re.compile(r"^(?:[^:,]+:)?(-?\d+)-(-?\d+)$")


def parse_range(text: str) -> tuple[Segment, ...]:
    """Segments of ``text``; raises ValueError on anything else (empty, reversed, junk)."""
    segments = []
    for part in text.strip().split(","):
        match = _SEGMENT.fullmatch(part.strip())
        if not match:
            raise ValueError(f"range {text!r}: segment {part!r} is not 'start-end'")
        start, end = int(match.group(1)), int(match.group(2))
        if start < 1 or end < start:
            raise ValueError(f"range {text!r}: segment {part!r} is empty or reversed")
        segments.append((start, end))
    return tuple(segments)


def range_length(segments: tuple[Segment, ...] | list[Segment]) -> int:
    return sum(end - start + 1 for start, end in segments)
