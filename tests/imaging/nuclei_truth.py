"""Real nuclei with expert masks (DSB 2018, shipped in the ``stardist`` wheel: its files are
read, the package is never imported) and the scores of a segmentation against a truth."""

from importlib.resources import files

import numpy as np
import tifffile
from skimage.measure import regionprops


def stardist_image(name: str) -> np.ndarray:
    """``img2d.tif`` (512 x 512, 125 nuclei), ``mask2d.tif``, ``img3d.tif`` (31 x 61 x 57,
    51 nuclei), ``mask3d.tif``."""
    with (files("stardist") / "data" / "images" / name).open("rb") as handle:
        return tifffile.imread(handle)


def object_count(labels: np.ndarray) -> int:
    return int(np.count_nonzero(np.unique(labels)))


def iou_f1(truth: np.ndarray, found: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of objects matched one-to-one at IoU > ``threshold`` (at > 0.5 a match is unique)."""
    overlap = np.zeros((truth.max() + 1, found.max() + 1), np.int64)
    np.add.at(overlap, (truth.ravel(), found.ravel()), 1)
    union = overlap.sum(1, keepdims=True) + overlap.sum(0, keepdims=True) - overlap
    iou = overlap[1:, 1:] / np.maximum(union[1:, 1:], 1)
    matched = int((iou > threshold).sum())
    return 2 * matched / (object_count(truth) + object_count(found))


def detection_f1(truth: np.ndarray, found: np.ndarray) -> float:
    """F1 of detections: a found object's centroid inside a true nucleus detects it, each
    true nucleus at most once."""
    centres = [np.rint(region.centroid).astype(int) for region in regionprops(found)]
    detected = {int(truth[y, x]) for y, x in centres} - {0}
    return 2 * len(detected) / (object_count(truth) + len(centres))
