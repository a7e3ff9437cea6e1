"""The ``stitch`` pipeline step: one well's sites registered and blended into a mosaic, the
registration and assembly of the shipped ``stitch`` pipeline in one call."""

from __future__ import annotations

import numpy as np
import pandas as pd

from imaging_assets.science.contract import step_contract
from imaging_assets.science.registration import RegistrationParams, register_tiles
from imaging_assets.science.stitch import nominal_shape, stitch


@step_contract(variable_components=("site", "channel"), reduces=("site",))
def stitch_sites(
    stack: np.ndarray,
    sites: list[int],
    channels: list[int],
    site_grid: pd.DataFrame,
    tile_step_px: tuple[float, float],
    registration_channel: int | None = None,
    max_shift_px: float = 30.0,
    min_quality: float = 0.3,
    highpass_sigma: float = 8.0,
) -> np.ndarray:
    """One mosaic per channel, shape (channels, H', W'), channels in ascending order.

    ``stack`` holds every site and channel of one well and z plane (``sites``/``channels``
    give each plane's); the tiles are registered on ``registration_channel`` (default: the
    first) around the stage step ``tile_step_px`` (y, x pixels, searched within
    ``max_shift_px``), positions solved by weighted least squares, then blended (feathered).
    The mosaic is the stage's nominal size, so wells of a plate line up."""
    order = sorted(set(channels))
    wanted = registration_channel if registration_channel is not None else order[0]
    if wanted not in order:
        raise ValueError(f"registration_channel {wanted} is not among the channels {order}")
    grid = site_grid.set_index("site").loc[sorted(set(sites))].reset_index()
    plane = {(s, c): i for i, (s, c) in enumerate(zip(sites, channels, strict=True))}
    images = [stack[plane[(s, wanted)]] for s in grid["site"]]
    params = RegistrationParams(max_shift_px, min_quality, highpass_sigma)
    positions, _ = register_tiles(images, grid, tile_step_px, params)
    tiles = [np.stack([stack[plane[(s, c)]] for c in order]) for s in grid["site"]]
    shape = nominal_shape(
        (int(grid["grid_row"].max()) + 1, int(grid["grid_col"].max()) + 1),
        tile_step_px,
        stack.shape[-2:],
    )
    return stitch(tiles, positions[["y", "x"]].to_numpy(), shape)
