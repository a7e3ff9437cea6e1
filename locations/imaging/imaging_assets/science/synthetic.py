"""Deterministic synthetic wells with known tile positions (the stitching ground truth).

A well is a cell-like field (nuclei as small bright blobs in channel 1, cytoplasm as larger
dim blobs around them in channel 2, fine texture, a background level) cut into an overlapping
grid of tiles at known, sub-pixel jittered positions (or whole pixels: the bias test). Instead
of the generated field, a real image can be cut (e.g. a micrograph shipped with scikit-image),
so the content is nobody's assumption. Each tile then gets what a microscope adds: uneven
illumination (vignetting and, optionally, a linear ramp, the same in every tile) and shot +
read noise.
Positions are pixels, the top-left corner of each tile in the field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

SATURATION = 65535


@dataclass(frozen=True)
class TileGrid:
    """``overlap``: fraction of a tile shared with each neighbour; ``jitter``: largest stage
    error in pixels (uniform, sub-pixel unless ``whole_pixels``); ``ramp``: illumination
    rising linearly by this fraction across each tile (left to right), on top of vignetting."""

    rows: int = 3
    cols: int = 3
    tile: int = 256
    overlap: float = 0.1
    jitter: float = 3.0
    whole_pixels: bool = False
    ramp: float = 0.0

    @property
    def step(self) -> float:
        return self.tile * (1 - self.overlap)


def true_positions(grid: TileGrid, rng: np.random.Generator) -> pd.DataFrame:
    """site (row-major, 1-based), grid_row, grid_col, y, x of every tile."""
    rows = []
    for row in range(grid.rows):
        for col in range(grid.cols):
            dy, dx = rng.uniform(-grid.jitter, grid.jitter, 2)
            if grid.whole_pixels:
                dy, dx = round(dy), round(dx)
            rows.append(
                {
                    "site": row * grid.cols + col + 1,
                    "grid_row": row,
                    "grid_col": col,
                    "y": row * grid.step + dy,
                    "x": col * grid.step + dx,
                }
            )
    positions = pd.DataFrame(rows)
    positions[["y", "x"]] -= positions[["y", "x"]].min()
    if grid.whole_pixels:
        positions[["y", "x"]] = positions[["y", "x"]].round()
    return positions


def cell_field(shape: tuple[int, int], channels: int, rng: np.random.Generator) -> np.ndarray:
    """(channels, H, W) float32 field in arbitrary intensity units (0 .. ~1)."""
    height, width = shape
    count = int(height * width / 900)  # one cell per ~30x30 pixels
    ys, xs = rng.integers(0, height, count), rng.integers(0, width, count)
    brightness = rng.uniform(0.5, 1.0, count)
    impulses = np.zeros(shape, np.float32)
    np.add.at(impulses, (ys, xs), brightness)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1.5)
    field = np.empty((channels, height, width), np.float32)
    for channel in range(channels):
        sigma = 3.0 + 5.0 * channel  # nuclei, then ever larger cytoplasm
        blobs = ndimage.gaussian_filter(impulses, sigma) * (2 * np.pi * sigma**2)
        field[channel] = 0.08 + 0.8 * blobs / (1 + channel) + 0.02 * texture
    return np.clip(field, 0, None)


def vignetting(shape: tuple[int, int], strength: float = 0.35, ramp: float = 0.0) -> np.ndarray:
    """Illumination falling off towards the tile corners (1 at the centre), times a linear
    ramp of ``ramp`` (fraction) from the left edge to the right."""
    yy, xx = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    return ((1 - strength * (yy**2 + xx**2) / 2) * (1 + ramp * xx / 2)).astype(np.float32)


def cut_tile(field: np.ndarray, y: float, x: float, size: int) -> np.ndarray:
    """The (channels, size, size) window of ``field`` whose top-left corner is (y, x),
    bilinearly interpolated for the fractional part."""
    iy, ix = int(np.floor(y)), int(np.floor(x))
    fy, fx = y - iy, x - ix
    window = field[:, iy : iy + size + 1, ix : ix + size + 1]
    top = window[:, :-1] * (1 - fy) + window[:, 1:] * fy
    return top[:, :, :-1] * (1 - fx) + top[:, :, 1:] * fx


def synthetic_well(
    grid: TileGrid,
    channels: int,
    seed: int,
    scale: float = 30000.0,
    image: np.ndarray | None = None,
) -> tuple[dict[int, np.ndarray], pd.DataFrame]:
    """Tiles (site -> (channels, tile, tile) uint16) and their true positions, cut from the
    generated cell field or from ``image`` (2-D, any range; every channel the same). From an
    image, the well is a random window of it (each well its own field of view) and the
    positions are in the image's frame."""
    rng = np.random.default_rng(seed)
    positions = true_positions(grid, rng)
    margin = 2
    height = int(np.ceil(positions["y"].max())) + grid.tile + 2 * margin
    width = int(np.ceil(positions["x"].max())) + grid.tile + 2 * margin
    if image is None:
        field = cell_field((height, width), channels, rng)
    elif image.shape[0] < height or image.shape[1] < width:
        raise ValueError(f"image {image.shape} is smaller than the {height} x {width} well")
    else:
        top = int(rng.integers(0, image.shape[0] - height + 1))
        left = int(rng.integers(0, image.shape[1] - width + 1))
        pixels = image[top : top + height, left : left + width].astype(np.float32)
        unit = (pixels - pixels.min()) / max(float(np.ptp(pixels)), 1e-12)
        field = np.repeat(unit[None], channels, axis=0)
    light = vignetting((grid.tile, grid.tile), ramp=grid.ramp)
    tiles = {}
    for site, y, x in zip(positions["site"], positions["y"], positions["x"], strict=True):
        signal = cut_tile(field, y + margin, x + margin, grid.tile) * light * scale
        noisy = rng.poisson(signal).astype(np.float32) + rng.normal(0, 20, signal.shape)
        tiles[int(site)] = np.clip(np.rint(noisy), 0, SATURATION).astype(np.uint16)
    if image is not None:  # in the image's frame
        positions = positions.assign(
            y=positions["y"] + top + margin, x=positions["x"] + left + margin
        )
    return tiles, positions


TRUTH_SUFFIX = ".truth.csv"  # beside a plate folder: its true tile positions


def htd_text(description: str, grid_rows: int, grid_cols: int, wave_names: list[str]) -> str:
    """An ImageXpress ``.HTD`` plate file: a 96-well plate, the site grid and the channels'
    names (what the demo and nuclei plates carry)."""
    lines = [
        '"HTSInfoFile", Version 1.0',
        f'"Description", "{description}"',
        '"TimePoints", 1',
        '"XWells", 12',
        '"YWells", 8',
        f'"XSites", {grid_cols}',
        f'"YSites", {grid_rows}',
        '"Waves", TRUE',
        f'"NWavelengths", {len(wave_names)}',
        *[f'"WaveName{c}", "{wave}"' for c, wave in enumerate(wave_names, 1)],
        '"EndFile"',
    ]
    return "\n".join(lines) + "\n"
