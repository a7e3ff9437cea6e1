"""Per-well image quality and the plate thumbnail montage."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from imaging_assets.science.layouts import row_number, split_well


def focus_score(image: np.ndarray) -> float:
    """Variance of the Laplacian divided by the squared mean intensity: high for sharp
    images, independent of exposure (dimensionless)."""
    pixels = image.astype(np.float32)
    mean = float(pixels.mean())
    return float(ndimage.laplace(pixels).var() / mean**2) if mean > 0 else 0.0


def intensity_stats(image: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation, 1st/99th percentiles (intensity units; for 8/16-bit images
    the smallest value with at least 1 % / 99 % of pixels at or below it) and the fraction of
    pixels at the dtype's maximum (saturated; 0 for float images)."""
    pixels = image.ravel()
    if image.dtype in (np.uint8, np.uint16):  # exact, from the histogram (no sort)
        counts = np.bincount(pixels, minlength=np.iinfo(image.dtype).max + 1)
        cumulative = np.cumsum(counts)
        p1, p99 = np.searchsorted(cumulative, [0.01 * pixels.size, 0.99 * pixels.size])
        values = np.arange(counts.size, dtype=np.float64)
        mean = float(values @ counts / pixels.size)
        std = float(np.sqrt(((values - mean) ** 2) @ counts / pixels.size))
        saturated = int(counts[-1])
    else:
        p1, p99 = np.percentile(pixels, [1, 99])
        mean, std, saturated = float(pixels.mean()), float(pixels.std()), 0
    return {
        "mean": mean,
        "std": std,
        "p1": float(p1),
        "p99": float(p99),
        "saturated_fraction": saturated / pixels.size,
    }


def plate_montage_png(thumbnails: dict[str, np.ndarray], cell: int = 64) -> bytes:
    """Grey PNG of the plate: each well's thumbnail (by well name, e.g. ``B03``) in its cell of
    a plate of at least 8 x 12 wells, contrast stretched over the whole plate (1st-99.5th
    percentile); empty wells stay black."""
    cells = {}
    for well, thumb in thumbnails.items():
        row, column = split_well(well)
        cells[(row_number(row) - 1, column - 1)] = thumb
    rows = max([8, *[r + 1 for r, _ in cells]])
    cols = max([12, *[c + 1 for _, c in cells]])
    canvas = np.zeros((rows * (cell + 2), cols * (cell + 2)), np.float32)
    values = np.concatenate([t.ravel() for t in cells.values()]) if cells else [0, 1]
    low, high = np.percentile(values, [1, 99.5])
    for (row, col), thumb in cells.items():
        image = Image.fromarray(thumb.astype(np.float32)).resize((cell, cell), Image.BILINEAR)
        scaled = (np.asarray(image) - low) / max(high - low, 1e-9)
        top, left = row * (cell + 2) + 1, col * (cell + 2) + 1
        canvas[top : top + cell, left : left + cell] = np.clip(scaled, 0, 1)
    buffer = io.BytesIO()
    Image.fromarray((canvas * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
