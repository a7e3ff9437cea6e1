"""segment_nuclei against expert masks of real nuclei (DSB 2018) and synthetic scenes."""

import numpy as np
import pytest

from imaging_assets.science.contract import contract_of
from imaging_assets.science.segmentation import segment_nuclei
from imaging_assets.science.synthetic_nuclei import nuclei_scene
from imaging_assets.science.zstack import project_z
from tests.imaging.nuclei_truth import detection_f1, iou_f1, object_count, stardist_image


def test_real_nuclei_at_the_default_parameters() -> None:
    """img2d: 125 nuclei, dim ones beside bright mitotic ones, touching pairs. A plain Otsu
    threshold + distance watershed gets IoU-F1 0.76, detection F1 0.92 and 114 nuclei."""
    image, truth = stardist_image("img2d.tif"), stardist_image("mask2d.tif")
    found = segment_nuclei(image[None])[0]
    iou, detection, count = iou_f1(truth, found), detection_f1(truth, found), object_count(found)
    print(f"img2d: IoU-F1 {iou:.3f}, detection F1 {detection:.3f}, {count} of 125 nuclei")
    assert object_count(truth) == 125
    assert iou >= 0.80
    assert detection >= 0.92
    assert abs(count - 125) <= 0.08 * 125


def test_a_max_projection_of_a_dense_volume_shows_its_front_nuclei() -> None:
    """img3d holds 51 nuclei in about four layers (each ~7 of 31 planes deep): a projection
    cannot show them all. What it can show lies between the nuclei that own at least half of
    their own footprint in the projection and those that own at least a quarter of it."""
    volume, truth = stardist_image("img3d.tif"), stardist_image("mask3d.tif")
    front = np.take_along_axis(truth, volume.argmax(axis=0)[None], axis=0)[0]
    ids = np.unique(truth)[1:]
    footprint = np.array([(truth == i).any(axis=0).sum() for i in ids])
    shown = np.array([(front == i).sum() for i in ids]) / footprint
    found = object_count(segment_nuclei(project_z(volume, "max"))[0])
    print(f"img3d max projection: {found} nuclei of 51 in the volume")
    assert len(ids) == 51
    assert (shown >= 0.5).sum() <= found <= (shown >= 0.25).sum()


@pytest.mark.parametrize(
    ("radius_px", "count", "photons"),
    [((7.0, 13.0), 140, 250.0), ((5.0, 10.0), 220, 250.0), ((9.0, 16.0), 90, 40.0)],
    ids=["default", "small-crowded", "large-dim"],
)
def test_synthetic_scenes_are_counted_within_12_percent(
    radius_px: tuple[float, float], count: int, photons: float
) -> None:
    image, truth = nuclei_scene(count=count, radius_px=radius_px, seed=101, photons=photons)
    found = segment_nuclei(image, diameter_px=sum(radius_px))[0]
    print(f"{radius_px}: {object_count(found)} of {object_count(truth)} nuclei")
    assert abs(object_count(found) - object_count(truth)) <= 0.12 * object_count(truth)
    assert detection_f1(truth, found) >= 0.9


def _disks(shape: tuple[int, int], centres: list[tuple[int, int]], radius: float) -> np.ndarray:
    yy, xx = np.indices(shape)
    inside = [(yy - y) ** 2 + (xx - x) ** 2 <= radius**2 for y, x in centres]
    rng = np.random.default_rng(0)
    return 100 + 400 * np.any(inside, axis=0) + rng.normal(0, 5, shape)


def test_labels_are_per_plane_and_nuclei_cut_by_the_edge_are_kept() -> None:
    first = _disks((96, 96), [(30, 30), (60, 70), (48, 0)], 9)  # the last one cut in half
    second = _disks((96, 96), [(50, 50)], 9)
    labels = segment_nuclei(np.stack([first, second]))
    assert labels.dtype == np.int32 and labels.shape == (2, 96, 96)
    assert sorted(np.unique(labels[0])) == [0, 1, 2, 3]
    assert sorted(np.unique(labels[1])) == [0, 1]
    assert labels[0][48, 2] > 0
    assert np.array_equal(labels[1], segment_nuclei(second[None])[0])


def test_noise_alone_and_a_blank_plane_give_no_nucleus() -> None:
    noise = np.random.default_rng(1).poisson(100, (2, 256, 256)).astype(np.uint16)
    noise[1] = 100
    assert not segment_nuclei(noise).any()


def test_touching_nuclei_are_split() -> None:
    image = _disks((80, 120), [(40, 45), (40, 72)], 14)  # 27 px apart: overlapping
    assert object_count(segment_nuclei(image[None], diameter_px=28)[0]) == 2


def test_contract_and_a_stack_is_required() -> None:
    contract = contract_of(segment_nuclei)
    assert (contract.output, contract.variable_components) == ("labels", ("site",))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        segment_nuclei(np.zeros((32, 32)))
