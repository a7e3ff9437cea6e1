"""Multi-view data with planted factors: the multiomics domain's truth and demo data.

``Y_m = Z W_m^T + offsets + noise`` per view ``m``: ``Z`` (samples x K) independent standard
normal factors (factor 1 shifted by +-``group_shift`` between two sample groups, ``A`` and
``B``), sparse weights ``W_m`` (in each active view-factor pair a fraction ``density`` of the
features loads, with standard deviation ``activity[m][k]``; the rest is exactly 0), Gaussian
noise whose standard deviation varies per feature around the view's level (a gamma spread,
shape 4: some features are much noisier than others), a random mean per feature, and a share
``missing[m]`` of the samples absent from the view. Run as a module, it writes the demo's views
(``python -m omics_assets.science.multiomics_simulate OUT_DIR``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# The demo's design: three views, four factors of decreasing weight, each active in a
# different set of views (weight standard deviations; 0 = inactive in that view).
DEMO_ACTIVITY: dict[str, tuple[float, ...]] = {
    "rna": (1.0, 0.8, 0.0, 0.5),
    "meth": (0.9, 0.0, 0.7, 0.0),
    "protein": (1.0, 0.8, 0.0, 0.0),
}
DEMO_FEATURES = {"rna": 120, "meth": 80, "protein": 30}
DEMO_NOISE = {"rna": 0.6, "meth": 0.4, "protein": 0.8}
DEMO_MISSING = {"rna": 0.0, "meth": 0.1, "protein": 0.15}
DEMO_SEED = 32


@dataclass(frozen=True)
class Planted:
    """Simulated views (samples in rows; absent samples left out) and their truth: the
    factors, the weights, the sample groups, and the variance each factor explains in each
    view (a fraction of the view's centred sum of squares, as MOFA computes it)."""

    views: dict[str, pd.DataFrame]
    factors: pd.DataFrame
    weights: dict[str, pd.DataFrame]
    groups: pd.Series
    variance_explained: pd.DataFrame  # views x factors


def simulate_views(
    samples: int,
    features: dict[str, int],
    activity: dict[str, tuple[float, ...]],
    noise: dict[str, float],
    missing: dict[str, float],
    seed: int,
    density: float = 0.3,
    group_shift: float = 1.0,
) -> Planted:
    """Views with planted factors (see the module's docstring); deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    k = len(next(iter(activity.values())))
    names = [f"S{i + 1:03d}" for i in range(samples)]
    groups = pd.Series(np.where(np.arange(samples) % 2 == 0, "A", "B"), index=names, name="group")
    z = rng.normal(size=(samples, k))
    z[:, 0] += np.where(groups == "A", group_shift, -group_shift)
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    factor_names = [f"factor_{i + 1}" for i in range(k)]
    views, weights, explained = {}, {}, {}
    for view, count in features.items():
        w = rng.normal(size=(count, k)) * np.asarray(activity[view])
        w *= rng.random((count, k)) < density
        sd = noise[view] * rng.gamma(4.0, 0.25, size=count)
        data = z @ w.T + rng.normal(size=(samples, count)) * sd + rng.normal(0, 3, size=count)
        present = np.sort(rng.permutation(samples)[round(missing[view] * samples) :])
        feature_names = [f"{view}_{j + 1}" for j in range(count)]
        views[view] = pd.DataFrame(
            data[present],
            index=pd.Index([names[i] for i in present], name="sample"),
            columns=feature_names,
        )
        weights[view] = pd.DataFrame(w, index=feature_names, columns=factor_names)
        observed = data[present] - data[present].mean(axis=0)
        total = np.square(observed).sum()
        explained[view] = [
            1 - np.square(observed - np.outer(z[present, j], w[:, j])).sum() / total
            for j in range(k)
        ]
    return Planted(
        views=views,
        factors=pd.DataFrame(z, index=names, columns=factor_names),
        weights=weights,
        groups=groups,
        variance_explained=pd.DataFrame(explained, index=factor_names).T,
    )


def demo() -> Planted:
    """The shipped demo's views: 60 samples, the design above, seed 32."""
    return simulate_views(60, DEMO_FEATURES, DEMO_ACTIVITY, DEMO_NOISE, DEMO_MISSING, DEMO_SEED)


def write_demo(folder: Path) -> None:
    """The demo's views as ``multiomics_<view>.tsv`` and the groups as
    ``multiomics_samples.tsv`` (values to 4 significant digits)."""
    planted = demo()
    for view, table in planted.views.items():
        table.to_csv(folder / f"multiomics_{view}.tsv", sep="\t", float_format="%.4g")
    planted.groups.rename_axis("sample").to_csv(folder / "multiomics_samples.tsv", sep="\t")


if __name__ == "__main__":
    write_demo(Path(sys.argv[1]))
