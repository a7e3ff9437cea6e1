"""What the plate assets share: which wells a run does, when too many failed, tables."""

from collections.abc import Sequence

import dagster as dg
import pandas as pd

from imaging_assets.resources import ImagingConfig


def table_md(frame: pd.DataFrame, limit: int = 10) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(limit).to_markdown(index=False) if len(frame) else "")


def selected_wells(available: Sequence[str], requested: Sequence[str]) -> list[str]:
    if not requested:
        return list(available)
    unknown = sorted(set(requested) - set(available))
    if unknown:
        raise dg.Failure(
            f"wells {unknown} are not valid wells of this plate (valid: "
            f"{', '.join(available[:12])}{' ...' if len(available) > 12 else ''})"
        )
    return [w for w in available if w in set(requested)]


def fail_past_threshold(
    failed: int, total: int, imaging: ImagingConfig, what: str, first_error: str = ""
) -> None:
    if total and failed / total > imaging.max_failed_fraction:
        first = f"; the first: {first_error}" if first_error else ""
        raise dg.Failure(
            f"{failed} of {total} wells failed {what}, more than max_failed_fraction="
            f"{imaging.max_failed_fraction}; see the step log for each well's error{first}"
        )
