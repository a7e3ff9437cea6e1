"""Z-stack projection: the planes of one site and channel at several focus depths into one."""

from __future__ import annotations

from typing import Literal

import numpy as np

from imaging_assets.science.contract import step_contract


@step_contract(variable_components=("z",), reduces=("z",))
def project_z(stack: np.ndarray, method: Literal["max", "mean"] = "max") -> np.ndarray:
    """One plane ``(1, H, W)`` from the z planes ``(Z, H, W)``: ``max`` keeps each pixel's
    brightest plane (every object at its sharpest; same dtype), ``mean`` averages them
    (float32; less noise, but out-of-focus light too)."""
    stack = np.asarray(stack)
    if stack.ndim != 3 or not stack.shape[0]:
        raise ValueError(f"expected a stack of planes (Z, H, W), not an array of {stack.shape}")
    if method == "max":
        return stack.max(axis=0, keepdims=True)
    if method == "mean":
        return stack.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    raise ValueError(f"method must be 'max' or 'mean', not {method!r}")
