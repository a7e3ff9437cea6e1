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
    from ome_zarr.writer import write_multiscale, write_plate_metadata, write_well_metadata

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
        for leftover in well_path(store, row, column).glob(f".{FIELD}.*"):
            shutil.rmtree(leftover, ignore_errors=True)


def write_well(
    store: Path,
    row: str,
    column: int,
    image: np.ndarray,
    pixel_size_um: float | None,
    channel_names: list[str],
    provenance: dict,
) -> Path:
    """Write one well's (c, z, y, x) image atomically; returns the well's folder."""
    well = well_path(store, row, column)
    temporary = well / f".{FIELD}.{uuid.uuid4().hex}.partial"
    try:
        group = zarr.open_group(temporary, mode="w")
        levels = pyramid(image)
        size = pixel_size_um or 1.0
        write_multiscale(
            levels,
            group,
            axes=[
                {"name": "c", "type": "channel"},
                {"name": "z", "type": "space", "unit": "micrometer"},
                {"name": "y", "type": "space", "unit": "micrometer"},
                {"name": "x", "type": "space", "unit": "micrometer"},
            ],
            coordinate_transformations=[
                [{"type": "scale", "scale": [1.0, 1.0, size * 2**i, size * 2**i]}]
                for i in range(len(levels))
            ],
            storage_options={
                "chunks": (1, 1, CHUNK, CHUNK),
                "compressors": [ZstdCodec(level=1)],
            },
        )
        group.attrs[PROVENANCE] = {**provenance, "channels": channel_names}
        final = well / FIELD
        retired = well / f".{FIELD}.{uuid.uuid4().hex}.old"
        if final.exists():
            os.replace(final, retired)
        os.replace(temporary, final)
        shutil.rmtree(retired, ignore_errors=True)
        write_well_metadata(zarr.open_group(well, mode="a"), [FIELD])
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return well


def well_provenance(store: Path, row: str, column: int) -> dict | None:
    """The provenance stored with a complete well image, or None if there is none."""
    field = well_path(store, row, column) / FIELD
    if not (field / "zarr.json").exists():
        return None
    try:
        value = zarr.open_group(field, mode="r").attrs.get(PROVENANCE)
    except (OSError, ValueError):
        return None
    return dict(value) if isinstance(value, dict) else None


def read_well(store: Path, row: str, column: int, level: int = 0) -> np.ndarray:
    """The (c, z, y, x) image of a well at a pyramid level (0 = full resolution)."""
    group = zarr.open_group(well_path(store, row, column) / FIELD, mode="r")
    datasets = group.attrs["ome"]["multiscales"][0]["datasets"]
    return np.asarray(group[datasets[min(level, len(datasets) - 1)]["path"]][:])


def write_plate_index(store: Path, name: str, wells: list[tuple[str, int]]) -> None:
    """Plate metadata listing ``wells`` (those with a complete image)."""
    rows = sorted({r for r, _ in wells}, key=lambda r: (len(r), r))
    columns = sorted({c for _, c in wells})
    write_plate_metadata(
        zarr.open_group(store, mode="a"),
        rows,
        [str(c) for c in columns],
        [f"{r}/{c}" for r, c in sorted(wells, key=lambda w: (len(w[0]), w[0], w[1]))],
        name=name,
        field_count=1,
    )
