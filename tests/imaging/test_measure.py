"""measure_objects on labels and intensities whose every measurement is known."""

import numpy as np
import pandas as pd
import pytest

from imaging_assets.science.contract import contract_of
from imaging_assets.science.measure import measure_objects


def _site() -> tuple[np.ndarray, np.ndarray]:
    """Labels 3 (a 4 x 6 rectangle) and 7 (a 5 x 5 square); two channels: channel 1 is 10
    on object 3 and 20 on object 7, channel 2 rises by 1 per column (its value is x)."""
    labels = np.zeros((20, 30), np.int32)
    labels[2:6, 4:10] = 3
    labels[10:15, 20:25] = 7
    first = np.where(labels == 3, 10.0, np.where(labels == 7, 20.0, 1.0))
    second = np.tile(np.arange(30, dtype=np.float64), (20, 1))
    return np.stack([first, second]).astype(np.uint16), labels


def test_areas_centroids_shape_and_intensities_are_exact() -> None:
    stack, labels = _site()
    table = measure_objects(stack, labels, channels=[1, 2], channel_names={1: "DAPI"})
    assert list(table.columns) == [
        "object_id", "area_px", "centroid_y", "centroid_x", "eccentricity", "solidity",
        "mean_intensity", "mean_intensity_DAPI", "integrated_intensity_DAPI",
        "mean_intensity_ch2", "integrated_intensity_ch2",
    ]  # fmt: skip
    assert table["object_id"].tolist() == [3, 7]
    assert table["area_px"].tolist() == [24, 25]
    assert table["centroid_y"].tolist() == [3.5, 12.0]
    assert table["centroid_x"].tolist() == [6.5, 22.0]
    assert table["eccentricity"].iloc[1] == pytest.approx(0.0)  # a square's moments: a circle
    assert table["eccentricity"].iloc[0] > 0.5
    assert table["solidity"].tolist() == [1.0, 1.0]
    assert table["mean_intensity_DAPI"].tolist() == [10.0, 20.0]
    assert table["integrated_intensity_DAPI"].tolist() == [240.0, 500.0]
    assert table["mean_intensity_ch2"].tolist() == [6.5, 22.0]  # the mean column
    assert table["integrated_intensity_ch2"].tolist() == [6.5 * 24, 22.0 * 25]
    assert table["mean_intensity"].tolist() == [10.0, 20.0]  # the first channel by default


def test_the_segmented_channel_and_the_pixel_size() -> None:
    stack, labels = _site()
    table = measure_objects(stack, labels[None], channels=[4, 2], pixel_size_um=0.5, channel=2)
    assert table.columns[:3].tolist() == ["object_id", "area_px", "area_um2"]
    assert table["area_um2"].tolist() == [6.0, 6.25]
    assert table["mean_intensity"].tolist() == [6.5, 22.0]  # channel 2 is the second plane
    assert "mean_intensity_ch4" in table.columns


def test_a_concave_object_is_less_solid() -> None:
    stack, labels = _site()
    labels[10:13, 21:24] = 0  # a U: the square less a 3 x 3 notch from its top edge
    solidity = measure_objects(stack, labels)["solidity"].iloc[1]
    assert solidity < 0.8


def test_no_object_gives_an_empty_table_with_the_columns() -> None:
    stack, labels = _site()
    table = measure_objects(stack, np.zeros_like(labels), pixel_size_um=0.65)
    assert table.empty
    assert "area_um2" in table.columns and "integrated_intensity_ch2" in table.columns
    assert isinstance(table, pd.DataFrame)


def test_labels_of_another_shape_are_refused_naming_both_shapes() -> None:
    stack, labels = _site()
    with pytest.raises(ValueError, match=r"\(20, 29\).*\(20, 30\)"):
        measure_objects(stack, labels[:, :29])


def test_a_segmented_channel_that_is_not_there_is_refused() -> None:
    stack, labels = _site()
    with pytest.raises(ValueError, match="channel 5"):
        measure_objects(stack, labels, channels=[1, 2], channel=5)


def test_contract() -> None:
    contract = contract_of(measure_objects)
    assert (contract.output, contract.variable_components) == ("table", ("channel",))
