"""One OME-Zarr (OME-NGFF 0.5, zarr v3) plate per plate: ``<row>/<column>/0`` per well.

Each well's image has axes c, z, y, x, a pyramid halving y and x down to ``MIN_LEVEL_SIZE``
and zstd compression. A well is written into a hidden temporary group and renamed into place,
with its input fingerprint in the same group, so a reader never sees half a well and a
re-run can tell which wells are already done. The plate metadata (the list of wells) is
written last and names only wells whose image is complete.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

with warnings.catch_warnings():  # ome-zarr builds a deprecated Scaler as a default argument of
    # write_labels when its writer module loads; we never call it (pyramid() downsamples)
    warnings.filterwarnings("ignore", "Call to deprecated class Scaler", DeprecationWarning)
    from ome_zarr.writer import (
        write_multiscale,
        write_multiscale_labels,
        write_plate_metadata,
        write_well_metadata,
    )

FIELD = "0"
MIN_LEVEL_SIZE = 256
CHUNK = 1024
PROVENANCE = "asset_platform"


def well_path(store: Path, row: str, column: int) -> Path:
    return store / row / str(column)


def downsample(image: np.ndarray) -> np.ndarray:
    """2 x 2 mean of a (..., y, x) image (an odd last row / column is averaged with itself),
    rounded back to the image's dtype."""
    height, width = image.shape[-2:]
    padded = np.pad(image, [(0, 0)] * (image.ndim - 2) + [(0, height % 2), (0, width % 2)], "edge")
    blocks = padded.reshape(*padded.shape[:-2], padded.shape[-2] // 2, 2, padded.shape[-1] // 2, 2)
    mean = blocks.mean(axis=(-3, -1), dtype=np.float32)
    return (np.rint(mean) if np.issubdtype(image.dtype, np.integer) else mean).astype(image.dtype)


def pyramid(image: np.ndarray) -> list[np.ndarray]:
    """``image`` (c, z, y, x) and its 2 x 2 mean-downsampled levels until y and x are at
    most MIN_LEVEL_SIZE."""
    levels = [image]
    while max(levels[-1].shape[-2:]) > MIN_LEVEL_SIZE:
        levels.append(downsample(levels[-1]))
    return levels


def prepare_plate(store: Path, wells: list[tuple[str, int]]) -> None:
    """Create the plate and well groups (before workers write wells in parallel, so no two
    processes ever write the same group metadata) and remove what a killed writer left:
    hidden temporary or retired images, which no reader ever opens."""
    root = zarr.open_group(store, mode="a")
    for row, column in wells:
        root.require_group(row).require_group(str(column))
        for leftover in well_path(store, row, column).glob(".*.*"):
            if leftover.suffix in (".partial", ".old"):
                shutil.rmtree(leftover, ignore_errors=True)


def _axes() -> list[dict[str, str]]:
    return [
        {"name": "c", "type": "channel"},
        {"name": "z", "type": "space", "unit": "micrometer"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]


def _scales(levels: int, pixel_size_um: float | None) -> list[list[dict]]:
    size = pixel_size_um or 1.0
    return [
        [{"type": "scale", "scale": [1.0, 1.0, size * 2**i, size * 2**i]}] for i in range(levels)
    ]


def write_field(
    store: Path,
    row: str,
    column: int,
    field: str,
    image: np.ndarray,
    pixel_size_um: float | None,
    channel_names: list[str],
    provenance: dict,
    labels: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write one field's (c, z, y, x) image, and its label images ((z, y, x) integers under
    ``labels/<name>``, as OME-NGFF places them), atomically; returns the field's folder."""
    for name, label in (labels or {}).items():
        if label.shape[-2:] != image.shape[-2:] or label.shape[0] != image.shape[1]:
            raise ValueError(
                f"labels {name!r} are {label.shape} (z, y, x), not the shape of the image "
                f"they segment {image.shape[1:]} (well {row}{column:02d}, field {field})"
            )
    well = well_path(store, row, column)
    temporary = well / f".{field}.{uuid.uuid4().hex}.partial"
    try:
        group = zarr.open_group(temporary, mode="w")
        levels = pyramid(image)
        storage = {"chunks": (1, 1, CHUNK, CHUNK), "compressors": [ZstdCodec(level=1)]}
        scales = _scales(len(levels), pixel_size_um)
        write_multiscale(
            levels,
            group,
            axes=_axes(),
            coordinate_transformations=scales,
            storage_options=storage,
        )
        for name, label in (labels or {}).items():
            full = label[None].astype(np.int32)
            label_levels = [full[..., :: 2**i, :: 2**i] for i in range(len(levels))]
            label_levels = [
                lv[..., : lvl.shape[-2], : lvl.shape[-1]]
                for lv, lvl in zip(label_levels, levels, strict=True)
            ]
            write_multiscale_labels(
                label_levels,
                group,
                name,
                axes=_axes(),
                coordinate_transformations=scales,
                storage_options=storage,
            )
        group.attrs[PROVENANCE] = {**provenance, "channels": channel_names}
        final = well / field
        retired = well / f".{field}.{uuid.uuid4().hex}.old"
        if final.exists():
            os.replace(final, retired)
        os.replace(temporary, final)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return well / field


def write_well(
    store: Path,
    row: str,
    column: int,
    image: np.ndarray,
    pixel_size_um: float | None,
    channel_names: list[str],
    provenance: dict,
) -> Path:
    """Write one well's (c, z, y, x) mosaic as its only field, atomically; returns the well."""
    write_field(store, row, column, FIELD, image, pixel_size_um, channel_names, provenance)
    write_well_metadata(zarr.open_group(well_path(store, row, column), mode="a"), [FIELD])
    return well_path(store, row, column)


def write_well_fields(store: Path, row: str, column: int, fields: list[str]) -> None:
    """The well's metadata listing its fields."""
    write_well_metadata(zarr.open_group(well_path(store, row, column), mode="a"), fields)


def promote_well(staging: Path, store: Path, row: str, column: int) -> list[str]:
    """Move a well's fields from ``staging`` (where a run wrote them) into ``store``, field by
    field with a rename (a reader sees the old field or the new one), and drop fields of the
    well the staged set no longer has; returns the fields."""
    source, target = well_path(staging, row, column), well_path(store, row, column)
    fields = sorted((p.name for p in source.iterdir() if p.name.isdigit()), key=int)
    zarr.open_group(store, mode="a").require_group(row).require_group(str(column))
    for old in [p for p in target.iterdir() if p.name.isdigit() and p.name not in fields]:
        shutil.rmtree(old)
    for field in fields:
        retired = target / f".{field}.{uuid.uuid4().hex}.old"
        if (target / field).exists():
            os.replace(target / field, retired)
        os.replace(source / field, target / field)
        shutil.rmtree(retired, ignore_errors=True)
    write_well_fields(store, row, column, fields)
    return fields


def well_provenance(store: Path, row: str, column: int, field: str = FIELD) -> dict | None:
    """The provenance stored with a complete field image, or None if there is none."""
    field_path = well_path(store, row, column) / field
    if not (field_path / "zarr.json").exists():
        return None
    try:
        value = zarr.open_group(field_path, mode="r").attrs.get(PROVENANCE)
    except (OSError, ValueError):
        return None
    return dict(value) if isinstance(value, dict) else None


def read_well(
    store: Path, row: str, column: int, level: int = 0, field: str = FIELD, labels: str = ""
) -> np.ndarray:
    """The (c, z, y, x) image of a field at a pyramid level (0 = full resolution), or its
    ``labels`` image of that name."""
    group = zarr.open_group(well_path(store, row, column) / field, mode="r")
    if labels:
        group = group["labels"][labels]
    datasets = group.attrs["ome"]["multiscales"][0]["datasets"]
    return np.asarray(group[datasets[min(level, len(datasets) - 1)]["path"]][:])


def write_plate_index(
    store: Path, name: str, wells: list[tuple[str, int]], field_count: int = 1
) -> None:
    """Plate metadata listing ``wells`` (those with a complete image)."""
    rows = sorted({r for r, _ in wells}, key=lambda r: (len(r), r))
    columns = sorted({c for _, c in wells})
    write_plate_metadata(
        zarr.open_group(store, mode="a"),
        rows,
        [str(c) for c in columns],
        [f"{r}/{c}" for r, c in sorted(wells, key=lambda w: (len(w[0]), w[0], w[1]))],
        name=name,
        field_count=field_count,
    )
