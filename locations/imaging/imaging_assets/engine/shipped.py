"""The step functions a pipeline names without a module: pure functions of ``science/``."""

from collections.abc import Callable
from typing import Any

from imaging_assets.science.illumination import flat_field, subtract_background
from imaging_assets.science.measure import measure_objects
from imaging_assets.science.mosaic import stitch_sites
from imaging_assets.science.segmentation import segment_nuclei
from imaging_assets.science.zstack import project_z

SHIPPED_STEPS: dict[str, Callable[..., Any]] = {
    "flat_field": flat_field,
    "subtract_background": subtract_background,
    "project_z": project_z,
    "segment_nuclei": segment_nuclei,
    "measure_objects": measure_objects,
    "stitch": stitch_sites,
}
