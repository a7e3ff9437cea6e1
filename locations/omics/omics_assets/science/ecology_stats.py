"""Community statistics with vegan's definitions (checked against vegan 2.6 in the tests):
alpha diversity (``specnumber``, ``diversity``), rarefaction (``rarefy``), Bray-Curtis and
binary Jaccard dissimilarities (``vegdist``), PCoA (``cmdscale``) and one-factor PERMANOVA
(``adonis2``). Rows of ``x`` are samples, columns taxa, values non-negative counts or
abundances. numpy and scipy only: scikit-bio takes seconds to import and its definitions add
nothing here (its Shannon is natural-log and its Simpson 1 - sum p^2, as vegan's)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

# vegan's tolerance when counting permutations at least as extreme as the observed F
PERMUTATION_EPS = float(np.sqrt(np.finfo(float).eps))
# taxon pairs per block of rarefy's standard error: its memory, ~50 bytes a pair, is bounded
PAIR_BLOCK = 1 << 18


def alpha_diversity(x: np.ndarray) -> pd.DataFrame:
    """Per sample: ``richness`` (taxa present), ``shannon`` (-sum p ln p, nats), ``simpson``
    (1 - sum p^2, vegan's "simpson"), ``invsimpson`` (1 / sum p^2) and ``evenness`` (Pielou's
    J = shannon / ln richness; NaN for fewer than two taxa). p: a taxon's share of the sample."""
    p = x / x.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        shannon = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)
        dominance = (p**2).sum(axis=1)
        richness = (x > 0).sum(axis=1)
        evenness = np.where(richness > 1, shannon / np.log(richness), np.nan)
    return pd.DataFrame(
        {
            "richness": richness,
            "shannon": shannon,
            "simpson": 1.0 - dominance,
            "invsimpson": 1.0 / dominance,
            "evenness": evenness,
        }
    )


def _lchoose(n: np.ndarray, k: float) -> np.ndarray:
    """log of n choose k (n >= k)."""
    from scipy.special import gammaln

    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def _absent(counts: np.ndarray, total: float, depth: float) -> np.ndarray:
    """For each count: the probability that none of its individuals is among ``depth`` drawn
    without replacement from ``total`` (hypergeometric)."""
    rest = total - counts
    out = np.zeros_like(counts, dtype=float)
    drawable = rest >= depth
    out[drawable] = np.exp(_lchoose(rest[drawable], depth) - _lchoose(np.array(total), depth))
    return out


def rarefy(counts: np.ndarray, depth: int) -> tuple[float, float]:
    """Expected number of taxa among ``depth`` individuals drawn without replacement from one
    sample's integer ``counts``, and its standard error (Heck et al. 1975; vegan's ``rarefy``
    with ``se = TRUE``). NaN for a sample of fewer than ``depth`` individuals (vegan returns
    the observed richness there)."""
    counts = counts[counts > 0].astype(float)
    total = counts.sum()
    if depth > total:
        return float("nan"), float("nan")
    absent = _absent(counts, total, depth)
    variance = float((absent * (1 - absent)).sum())
    taxa = len(counts)
    block = max(1, PAIR_BLOCK // taxa)  # rows of taxon pairs (i, j < i) at a time
    for start in range(1, taxa, block):
        rows = np.arange(start, min(start + block, taxa))
        lower = np.arange(rows[-1])[None, :] < rows[:, None]  # j < i
        i, j = np.broadcast_to(rows[:, None], lower.shape)[lower], np.nonzero(lower)[1]
        both = _absent(counts[i] + counts[j], total, depth)
        variance += 2 * float((both - absent[i] * absent[j]).sum())
    return float((1 - absent).sum()), float(np.sqrt(max(variance, 0.0)))


def rarefaction_curves(table: pd.DataFrame, points: int) -> pd.DataFrame:
    """Each sample's rarefaction curve (``table``: integer counts, samples as index): the
    expected richness at about ``points`` integer depths from 1 to the sample's total."""
    curves = []
    for sample, row in table.iterrows():
        counts = row.to_numpy(dtype=float)
        counts = counts[counts > 0]
        total = counts.sum()
        depths = np.unique(np.linspace(1, total, points).round())
        expected = [(1 - _absent(counts, total, d)).sum() for d in depths]
        curves.append(
            pd.DataFrame({"sample": sample, "depth": depths.astype(int), "expected": expected})
        )
    return pd.concat(curves, ignore_index=True)


def bray_curtis(x: np.ndarray) -> np.ndarray:
    """sum |x_i - y_i| / sum (x_i + y_i) between every two samples (square matrix)."""
    from scipy.spatial.distance import pdist, squareform

    return squareform(pdist(x, "braycurtis"))


def jaccard(x: np.ndarray) -> np.ndarray:
    """Binary Jaccard, 1 - shared taxa / taxa in either sample, between every two samples."""
    from scipy.spatial.distance import pdist, squareform

    return squareform(pdist(x > 0, "jaccard"))


@dataclass(frozen=True)
class Ordination:
    """PCoA: all ``eigenvalues`` (descending; negative ones included, as ``cmdscale`` reports
    them) and sample ``coordinates`` on the axes of positive eigenvalues."""

    eigenvalues: np.ndarray
    coordinates: np.ndarray

    @property
    def explained(self) -> np.ndarray:
        """Each positive axis' share of the sum of the positive eigenvalues."""
        positive = self.eigenvalues[self.eigenvalues > 0]
        return positive / positive.sum()


def pcoa(distance: np.ndarray) -> Ordination:
    """Principal coordinates of a dissimilarity matrix (Gower's double centring of
    -d^2 / 2). Each axis' sign is fixed so that its largest coordinate is positive."""
    n = len(distance)
    centre = np.eye(n) - 1.0 / n
    gower = centre @ (-0.5 * distance**2) @ centre
    values, vectors = np.linalg.eigh((gower + gower.T) / 2)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    positive = values > values[0] * 1e-10
    vectors = vectors[:, positive]
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    return Ordination(values, vectors * signs * np.sqrt(values[positive]))


@dataclass(frozen=True)
class Permanova:
    """One-factor PERMANOVA (Anderson 2001): pseudo-F, R^2 (the factor's share of the total
    sum of squares), the permutation p and the degrees of freedom."""

    pseudo_f: float
    r2: float
    p: float
    df_factor: int
    df_residual: int
    permutations: int


def _within(square: np.ndarray, codes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Within-group sums of squares, sum_g sum_{i<j in g} d_ij^2 / n_g, for each row of
    ``codes`` (group of each sample)."""
    member = (codes[:, :, None] == np.arange(len(sizes))).astype(float)  # perms x samples x groups
    paired = ((square @ member) * member).sum(axis=1)
    return 0.5 * (paired / sizes).sum(axis=1)


def _chunks(orders: np.ndarray, size: int = 200) -> Iterator[np.ndarray]:
    for start in range(0, len(orders), size):
        yield orders[start : start + size]


def permanova(
    distance: np.ndarray, groups: np.ndarray, permutations: int | np.ndarray, seed: int
) -> Permanova:
    """PERMANOVA of ``distance`` by the labels ``groups``, as vegan's ``adonis2(d ~ factor)``:
    pseudo-F = (SS_A / (a - 1)) / (SS_W / (N - a)), R^2 = SS_A / SS_T, and p = (1 + number of
    permuted F >= F - 1.5e-8) / (1 + permutations). ``permutations``: how many to draw
    (seeded with ``seed``), or the orders themselves (one row each, 0-based; the distances of
    a permutation are ``distance[order][:, order]``, as vegan applies ``shuffleSet`` rows)."""
    levels, codes = np.unique(groups, return_inverse=True)
    n, a = len(codes), len(levels)
    sizes = np.bincount(codes, minlength=a).astype(float)
    square = distance**2
    total = 0.5 * square.sum() / n
    within = float(_within(square, codes[None, :], sizes)[0])

    def f_stat(within: np.ndarray | float) -> np.ndarray:
        return ((total - np.asarray(within)) / (a - 1)) / (np.asarray(within) / (n - a))

    observed = float(f_stat(within))  # python floats: the step's metrics are serialized
    if isinstance(permutations, int):
        rng = np.random.default_rng(seed)
        orders = np.array([rng.permutation(n) for _ in range(permutations)]).reshape(-1, n)
    else:
        orders = permutations
    inverse = np.argsort(orders, axis=1)
    extreme = sum(
        int((f_stat(_within(square, codes[chunk], sizes)) >= observed - PERMUTATION_EPS).sum())
        for chunk in _chunks(inverse)
    )
    return Permanova(
        pseudo_f=observed,
        r2=float((total - within) / total),
        p=(extreme + 1) / (len(orders) + 1),
        df_factor=a - 1,
        df_residual=n - a,
        permutations=len(orders),
    )
