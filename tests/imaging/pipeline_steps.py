"""Step functions a user might write, for the pipeline tests (tests.imaging.pipeline_steps)."""

import os

import numpy as np
import pandas as pd
from scipy import ndimage

from imaging_assets.science.contract import step_contract


def scale(stack: np.ndarray, factor: float = 2.0) -> np.ndarray:
    return stack.astype(np.float32) * factor


def offset(stack: np.ndarray, by: float = 1.0) -> np.ndarray:
    return stack.astype(np.float32) + by


def identity(stack: np.ndarray) -> np.ndarray:
    return stack


def fails_where_told(stack: np.ndarray, well: str) -> np.ndarray:
    """Raises in the wells named by $FAIL_WELLS (a comma list): a bug that data brings out."""
    if well in os.environ.get("FAIL_WELLS", "").split(","):
        raise ZeroDivisionError("this well's data upsets me")
    return stack


@step_contract(scope="plate")
def planes_seen(stack: np.ndarray) -> np.ndarray:
    """Every plane set to how many planes the call saw (a plate step sees every well)."""
    return np.full(stack.shape, len(stack), np.float32)


def one_channel_only(stack: np.ndarray, channels: list[int]) -> np.ndarray:
    if len(set(channels)) != 1:
        raise AssertionError(f"one call saw channels {channels}")
    return stack


@step_contract(output="labels")
def bright_blobs(stack: np.ndarray, quantile: float = 0.99) -> np.ndarray:
    """Connected regions above a quantile of each plane."""
    return np.stack([ndimage.label(p > np.quantile(p, quantile))[0] for p in stack]).astype(
        np.int32
    )


@step_contract(output="labels")
def cropped_labels(stack: np.ndarray) -> np.ndarray:
    """Labels one pixel smaller than their image: what the engine must refuse to store."""
    return np.ones((len(stack), stack.shape[1] - 1, stack.shape[2]), np.int32)


@step_contract(output="table", variable_components=("channel",))
def count_labels(stack: np.ndarray, labels: np.ndarray, channels: list[int]) -> pd.DataFrame:
    """One row per object: its id and the mean of each channel over it."""
    ids = np.unique(labels[labels > 0])
    rows = {"object_id": ids}
    for plane, channel in zip(stack, channels, strict=True):
        rows[f"mean_intensity_ch{channel}"] = ndimage.mean(plane, labels, ids)
    return pd.DataFrame(rows)
