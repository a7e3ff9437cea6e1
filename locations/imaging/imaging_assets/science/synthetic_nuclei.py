"""Synthetic nuclei with the irregularities of real fluorescence images, and their truth.

The specimen (``nuclei_field``): elliptical nuclei of varied size, elongation and brightness
with wobbly outlines, chromatin texture and dark nucleoli; some touch or overlap (their
fluorescence adds up); a few are small, bright, condensed mitotic ones; out-of-focus haze
around them; channel 2 is a cytoplasm stain around each nucleus. ``microscope`` adds what the
instrument does: uneven illumination (vignetting and a ramp), shot noise, camera gain, offset
and read noise. ``nuclei_scene`` is one field of view; ``nuclei_well`` cuts a large specimen
into an overlapping tile grid (a nucleus in a tile overlap shows in two tiles, once in the
truth); ``write_nuclei_plate`` writes an ImageXpress plate of such wells and its truth.
All lengths are pixels; intensities of the specimen are arbitrary units (~0..1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage
from skimage.measure import regionprops_table
from skimage.segmentation import expand_labels

from imaging_assets.science.layouts import row_letters
from imaging_assets.science.synthetic import (
    SATURATION,
    TRUTH_SUFFIX,
    TileGrid,
    cut_tile,
    htd_text,
    true_positions,
)
from imaging_assets.science.synthetic import vignetting as vignetting_profile

WAVE_NAMES = ("DAPI", "FITC", "TRITC", "Cy5")  # channel 1 = nuclei, 2 = cytoplasm stain
NUCLEI_SUFFIX = ".nuclei.csv"
PLATE_COLUMNS = 12  # wells are numbered row by row on a 96-well plate
COVER = 0.22  # fraction of a well's area covered by nuclei
MITOTIC_FRACTION = 0.04


def _nucleus_shapes(count: int, radius_px: tuple[float, float], rng: np.random.Generator):
    """Radius (px, of the area-equivalent disk), elongation (major/minor), angle (rad),
    brightness and outline wobble of ``count`` nuclei; a few are small bright mitotic ones."""
    radius = rng.uniform(*radius_px, count)
    elongation = rng.uniform(1.0, 1.6, count)
    brightness = rng.lognormal(0.0, 0.35, count)
    mitotic = rng.random(count) < MITOTIC_FRACTION
    radius[mitotic] *= 0.6
    elongation[mitotic] = rng.uniform(1.8, 2.6, mitotic.sum())
    brightness[mitotic] *= 3.0
    angle = rng.uniform(0, np.pi, count)
    wobble = rng.normal(0, 0.04, (count, 3)), rng.uniform(0, 2 * np.pi, (count, 3))
    return radius, elongation, angle, brightness, wobble


def _centres(shape: tuple[int, int], radius: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(count, 2) y, x: about half of the nuclei laid against an earlier one (touching or up
    to ~15 % overlapping), the others free but not overlapping any earlier nucleus. A nucleus
    with no room left after 50 tries is left out (NaN)."""
    centres = np.full((radius.size, 2), np.nan)
    for i, r in enumerate(radius):
        for _ in range(50):  # rejection sampling
            placed = np.flatnonzero(np.isfinite(centres[:i, 0]))
            if placed.size and rng.random() < 0.5:
                j = rng.choice(placed)
                turn = rng.uniform(0, 2 * np.pi)
                gap = rng.uniform(0.85, 1.0) * (r + radius[j])
                candidate = centres[j] + gap * np.array([np.sin(turn), np.cos(turn)])
                floor = 0.85
            else:
                candidate = rng.uniform((0, 0), shape)
                floor = 1.05
            distance = np.hypot(*(centres[:i] - candidate).T)
            if not np.any(distance < floor * (r + radius[:i])):  # NaN: left out
                centres[i] = candidate
                break
    return centres


def _outlines(
    shape: tuple[int, int], centres: np.ndarray, shapes: tuple
) -> list[tuple[int, tuple[slice, slice], np.ndarray]]:
    """(index, window, rho) of each placed nucleus in the field: rho is the distance to its
    centre relative to its wobbly elliptical outline (<= 1 inside)."""
    radius, elongation, angle, _, (amplitude, phase) = shapes
    found = []
    for i in np.flatnonzero(np.isfinite(centres[:, 0])):
        major, minor = radius[i] * np.sqrt(elongation[i]), radius[i] / np.sqrt(elongation[i])
        reach = int(np.ceil(major * 1.2)) + 1
        y0, x0 = np.floor(centres[i]).astype(int) - reach
        window = (
            slice(max(y0, 0), min(y0 + 2 * reach + 1, shape[0])),
            slice(max(x0, 0), min(x0 + 2 * reach + 1, shape[1])),
        )
        if window[0].start >= window[0].stop or window[1].start >= window[1].stop:
            continue
        yy, xx = np.mgrid[window]
        dy, dx = yy - centres[i, 0], xx - centres[i, 1]
        u = (dx * np.cos(angle[i]) + dy * np.sin(angle[i])) / major
        v = (dy * np.cos(angle[i]) - dx * np.sin(angle[i])) / minor
        theta = np.arctan2(v, u)
        outline = 1 + sum(amplitude[i, k] * np.cos((k + 2) * theta + phase[i, k]) for k in range(3))
        found.append((int(i), window, (np.hypot(u, v) / outline).astype(np.float32)))
    return found


def nuclei_field(
    shape: tuple[int, int],
    count: int,
    radius_px: tuple[float, float],
    rng: np.random.Generator,
    channels: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """The specimen: ``(channels, H, W)`` float32 intensity (channel 1 nuclei, then a
    cytoplasm stain) and ``(H, W)`` int32 true labels (1..count; a pixel shared by two
    overlapping nuclei belongs to the one whose outline it lies deeper in). Where nuclei
    overlap, half of them lie on top of their neighbour (their fluorescence adds up), the
    others are pressed against it (each shows only in its own pixels). Nuclei may be cut by
    the field's edge; a nucleus hidden under others may own no pixel."""
    shapes = _nucleus_shapes(count, radius_px, rng)
    brightness = shapes[3]
    outlines = _outlines(shape, _centres(shape, shapes[0], rng), shapes)
    depth = np.full(shape, np.inf, np.float32)  # rho of the pixel's owner
    labels = np.zeros(shape, np.int32)
    for i, window, rho in outlines:
        mine = (rho <= 1) & (rho < depth[window])
        depth[window] = np.where(mine, rho, depth[window])
        labels[window] = np.where(mine, i + 1, labels[window])
    on_top = rng.random(count) < 0.5
    nuclei = np.zeros(shape, np.float32)
    for i, window, rho in outlines:
        shown = (rho <= 1) & ((labels[window] == i + 1) | on_top[i])
        nuclei[window] += np.where(shown, brightness[i] * (1 - 0.25 * rho**2), 0)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1.5)
    texture /= texture.std()
    nucleoli = ndimage.gaussian_filter((rng.random(shape) < 0.002).astype(np.float32), 1.5)
    nuclei *= np.clip(1 + 0.15 * texture, 0.5, None) * (1 - 0.5 * nucleoli / nucleoli.max())
    nuclei = ndimage.gaussian_filter(nuclei, 1.2)  # the optics' point spread
    haze = ndimage.gaussian_filter(nuclei, 1.5 * float(np.mean(radius_px)))
    field = np.empty((channels, *shape), np.float32)
    field[0] = 0.04 + 0.5 * nuclei + 0.1 * haze
    for channel in range(1, channels):
        cells = expand_labels(labels, float(np.mean(radius_px)))
        level = np.r_[0.0, rng.uniform(0.2, 0.5, count)].astype(np.float32)
        stain = level[cells] * np.where(labels > 0, 0.4, 1.0) * (1 + 0.2 * texture)
        field[channel] = 0.04 + ndimage.gaussian_filter(stain, 3.0) / channel
    return np.clip(field, 0, None), labels


def microscope(
    field: np.ndarray,
    rng: np.random.Generator,
    illumination: np.ndarray,
    photons: float = 250.0,
    gain: float = 2.0,
    offset: float = 100.0,
    read_noise: float = 3.0,
) -> np.ndarray:
    """uint16 camera image of ``field`` (..., H, W): lit by ``illumination`` (H, W, relative),
    ``photons`` expected photoelectrons per unit of intensity, Poisson shot noise, ``gain``
    ADU per electron, ``offset`` ADU and Gaussian ``read_noise`` (electrons)."""
    electrons = rng.poisson(field * illumination * photons).astype(np.float32)
    electrons += rng.normal(0, read_noise, field.shape).astype(np.float32)
    return np.clip(np.rint(electrons * gain + offset), 0, SATURATION).astype(np.uint16)


def nuclei_scene(
    shape: tuple[int, int] = (512, 512),
    count: int = 120,
    radius_px: tuple[float, float] = (7.0, 13.0),
    seed: int = 0,
    channels: int = 1,
    ramp: float = 0.3,
    vignetting: float = 0.3,
    photons: float = 250.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One field of view: ``(channels, H, W)`` uint16 image and ``(H, W)`` int32 true
    labels (1..n, consecutive). ``ramp``: illumination rising by this fraction from left to
    right; ``vignetting``: its fall-off towards the corners (fraction); ``photons``: the
    exposure (photoelectrons per unit of specimen intensity; fewer = noisier)."""
    rng = np.random.default_rng(seed)
    field, labels = nuclei_field(shape, count, radius_px, rng, channels)
    light = vignetting_profile(shape, vignetting, ramp)
    image = microscope(field, rng, light, photons)
    kept = np.unique(labels)
    relabel = np.zeros(count + 1, np.int32)
    relabel[kept] = np.arange(kept.size)
    return image, relabel[labels]


def nuclei_table(labels: np.ndarray) -> pd.DataFrame:
    """label, y, x (centroid, px) and area_px of each labelled nucleus."""
    table = pd.DataFrame(regionprops_table(labels, properties=("label", "centroid", "area")))
    return table.rename(columns={"centroid-0": "y", "centroid-1": "x", "area": "area_px"})


def nuclei_well(
    grid: TileGrid,
    seed: int,
    channels: int = 2,
    radius_px: tuple[float, float] = (7.0, 13.0),
    z_planes: int = 1,
) -> tuple[dict[int, np.ndarray], pd.DataFrame, pd.DataFrame]:
    """One well cut into ``grid``'s overlapping tiles: site -> ``(z_planes, channels, tile,
    tile)`` uint16 (vignetting and ``grid.ramp`` per tile; planes off focus are blurred by
    1.5 px per plane), the true tile positions (``true_positions``: y, x of each top-left
    corner, the smallest y and x being 0) and the true nuclei (label, y, x, area_px) whose
    centroid lies in the mosaic, in the same frame (mosaic pixels)."""
    rng = np.random.default_rng(seed)
    positions = true_positions(grid, rng)
    margin = 2
    height = int(np.ceil(positions["y"].max())) + grid.tile + 2 * margin
    width = int(np.ceil(positions["x"].max())) + grid.tile + 2 * margin
    count = round(COVER * height * width / (np.pi * np.mean(radius_px) ** 2))
    field, labels = nuclei_field((height, width), count, radius_px, rng, channels)
    light = vignetting_profile((grid.tile, grid.tile), ramp=grid.ramp)
    focus = (z_planes - 1) / 2
    planes = [
        ndimage.gaussian_filter(field, (0, 1.5 * abs(z - focus), 1.5 * abs(z - focus)))
        for z in range(z_planes)
    ]
    tiles = {}
    for site, y, x in zip(positions["site"], positions["y"], positions["x"], strict=True):
        cut = np.stack([cut_tile(plane, y + margin, x + margin, grid.tile) for plane in planes])
        tiles[int(site)] = microscope(cut, rng, light)
    nuclei = nuclei_table(labels)
    nuclei[["y", "x"]] -= margin
    inside = nuclei["y"].between(0, height - 2 * margin) & nuclei["x"].between(
        0, width - 2 * margin
    )
    return tiles, positions, nuclei[inside].reset_index(drop=True)


def write_nuclei_plate(
    out_dir: Path,
    name: str,
    wells: int = 4,
    grid_side: int = 3,
    tile_px: int = 256,
    overlap: float = 0.1,
    channels: int = 2,
    seed: int = 0,
    z_planes: int = 1,
) -> Path:
    """Write an ImageXpress plate ``out_dir/name`` of the first ``wells`` wells (row by row),
    each a ``grid_side`` x ``grid_side`` grid of ``tile_px`` tiles sharing ``overlap`` (a
    fraction) with each neighbour: ``TimePoint_1/A01_s1_w1.tif`` (``_z1``.. with several
    planes) and ``name.HTD`` (channels named DAPI, FITC, ...). Beside the folder,
    ``name.nuclei.csv`` holds the true nuclei (well, y, x in mosaic pixels, area_px) and
    ``name.truth.csv`` the true tile positions (well, site, x, y), as for the demo plates.
    Deterministic; returns the folder."""
    if not 1 <= channels <= len(WAVE_NAMES):
        raise ValueError(f"channels must be 1..{len(WAVE_NAMES)}, not {channels}")
    plate = out_dir / name
    grid = TileGrid(rows=grid_side, cols=grid_side, tile=tile_px, overlap=overlap)
    truth, placed = [], []
    for index in range(wells):
        well = f"{row_letters(1 + index // PLATE_COLUMNS)}{1 + index % PLATE_COLUMNS:02d}"
        tiles, positions, nuclei = nuclei_well(
            grid, seed * 1000 + index, channels, z_planes=z_planes
        )
        for site, stack in tiles.items():
            for z, channel in np.ndindex(stack.shape[:2]):
                plane = f"_z{z + 1}" if z_planes > 1 else ""
                path = plate / "TimePoint_1" / f"{well}_s{site}_w{channel + 1}{plane}.tif"
                path.parent.mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(path, stack[z, channel])
        truth.append(nuclei.assign(well=well)[["well", "y", "x", "area_px"]])
        placed.append(positions.assign(well=well)[["well", "site", "x", "y"]])
    (plate / f"{name}.HTD").write_text(
        htd_text(f"{name} (synthetic nuclei plate)", grid_side, grid_side, WAVE_NAMES[:channels])
    )
    pd.concat(truth).to_csv(out_dir / f"{name}{NUCLEI_SUFFIX}", index=False)
    pd.concat(placed).to_csv(out_dir / f"{name}{TRUTH_SUFFIX}", index=False)
    return plate
