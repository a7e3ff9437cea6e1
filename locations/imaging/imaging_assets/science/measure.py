"""Per-object measurements: size, position, shape and intensity in every channel."""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage.measure import regionprops_table

from imaging_assets.science.contract import step_contract


def channel_name(number: int, names: dict[int, str] | None) -> str:
    """The plate's name of channel ``number``, or ``ch<number>`` when it has none."""
    return (names or {}).get(number) or f"ch{number}"


def measure_columns(names: list[str], with_um2: bool) -> list[str]:
    """The table's columns, in order, for channels called ``names``."""
    shape = ["object_id", "area_px", *(["area_um2"] if with_um2 else [])]
    shape += ["centroid_y", "centroid_x", "eccentricity", "solidity", "mean_intensity"]
    for name in names:
        shape += [f"mean_intensity_{name}", f"integrated_intensity_{name}"]
    return shape


def _checked(
    stack: np.ndarray, labels: np.ndarray, channels: list[int] | None, channel: int | None
) -> tuple[np.ndarray, np.ndarray, list[int], int]:
    """The stack (C, H, W), the 2-D labels, each plane's channel number and the segmented
    channel's plane index; ValueError naming what does not fit."""
    stack, labels = np.asarray(stack), np.asarray(labels)
    if stack.ndim != 3:
        raise ValueError(f"expected the channels of one site (C, H, W), not {stack.shape}")
    if labels.ndim == 3 and labels.shape[0] == 1:
        labels = labels[0]
    if labels.shape != stack.shape[1:]:
        raise ValueError(
            f"labels of shape {labels.shape} do not match the image planes of shape "
            f"{stack.shape[1:]} (stack {stack.shape})"
        )
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError(f"labels must be integers >= 0 (0 = background), not {labels.dtype}")
    numbers = list(range(1, stack.shape[0] + 1)) if channels is None else list(channels)
    if len(numbers) != stack.shape[0]:
        raise ValueError(f"{len(numbers)} channel numbers for {stack.shape[0]} planes")
    segmented = numbers[0] if channel is None else channel
    if segmented not in numbers:
        raise ValueError(f"segmented channel {segmented} is not among the channels {numbers}")
    return stack, labels, numbers, numbers.index(segmented)


@step_contract(output="table", variable_components=("channel",))
def measure_objects(
    stack: np.ndarray,
    labels: np.ndarray,
    channels: list[int] | None = None,
    channel_names: dict[int, str] | None = None,
    pixel_size_um: float | None = None,
    channel: int | None = None,
) -> pd.DataFrame:
    """One row per object of ``labels`` (H, W) or (1, H, W) (0 = background) measured in
    every plane of ``stack`` (C, H, W; one site's channels, numbered by ``channels``,
    default 1..C, named by ``channel_names``, default ``ch<N>``).

    Columns: ``object_id`` (the label), ``area_px``, ``area_um2`` (only with
    ``pixel_size_um``, the pixel's side in micrometres), ``centroid_y``/``centroid_x``
    (pixels), ``eccentricity`` (0 for a circle), ``solidity`` (area / convex hull area),
    ``mean_intensity`` in the segmented ``channel`` (default: the first), then per channel
    ``mean_intensity_<name>`` and ``integrated_intensity_<name>`` (sum over the object's
    pixels), in the images' intensity units."""
    stack, labels, numbers, segmented = _checked(stack, labels, channels, channel)
    names = [channel_name(number, channel_names) for number in numbers]
    if len(set(names)) < len(names):
        raise ValueError(f"channel names must differ: {names}")
    columns = measure_columns(names, pixel_size_um is not None)
    flat = labels.ravel().astype(np.int64)
    area = np.bincount(flat)
    ids = np.flatnonzero(area)
    ids = ids[ids > 0]
    if not ids.size:
        return pd.DataFrame({column: pd.Series(dtype=float) for column in columns}).astype(
            {"object_id": np.int64, "area_px": np.int64}
        )
    shape = regionprops_table(labels, properties=("label", "eccentricity", "solidity"))
    rows, cols = np.indices(labels.shape)
    table = pd.DataFrame({"object_id": ids, "area_px": area[ids]})
    if pixel_size_um is not None:
        table["area_um2"] = area[ids] * float(pixel_size_um) ** 2
    table["centroid_y"] = np.bincount(flat, rows.ravel())[ids] / area[ids]
    table["centroid_x"] = np.bincount(flat, cols.ravel())[ids] / area[ids]
    table["eccentricity"] = shape["eccentricity"]
    table["solidity"] = shape["solidity"]
    sums = [np.bincount(flat, plane.ravel().astype(np.float64))[ids] for plane in stack]
    table["mean_intensity"] = sums[segmented] / area[ids]
    for name, total in zip(names, sums, strict=True):
        table[f"mean_intensity_{name}"] = total / area[ids]
        table[f"integrated_intensity_{name}"] = total
    return table[columns]
