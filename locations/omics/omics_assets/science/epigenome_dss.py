"""DSS's per-CpG test (``DMLtest``, Feng, Conneely and Wu 2014; Wu et al. 2015), in numpy.

Counts at a CpG in each replicate are beta-binomial: ``meth ~ BetaBin(cov, mu, phi)``, the
mean ``mu`` shared by a condition's replicates, ``phi`` the dispersion of the condition at
that CpG. As DSS 2.46 computes it (the R and C code of ``DMLtest``):

1. CpGs with too little coverage are dropped: within +-100 bp, a condition's summed coverage
   must exceed 2 per replicate (``hasCoverage``). One difference at chromosome edges: DSS's
   window (C ``windowFilter``) runs over positions alone, which restart at each chromosome,
   so the first CpGs of a chromosome also sum the previous chromosome's CpGs and its last
   CpG the next one's first CpGs; ours stops at the chromosome's edge. A sparsely covered
   CpG at a chromosome's edge may be kept by DSS and dropped here.
2. ``mu`` per condition: (sum meth + c) / (sum cov + 1), ``c`` the mean of meth / cov over the
   condition's entries; with ``smoothing``, both sums are first summed over the CpGs within
   +-span/2 bp (a moving window, ``smooth.chr``). One replicate: meth + 0.4 c, cov + 0.4.
3. ``phi`` shrunk to a log-normal prior: the prior's mean and sd are the median and IQR / 1.39
   of log naive dispersions (var / (mu (1 - mu))) at CpGs with coverage > 10 in every
   replicate (N(-3, 1) with one replicate or fewer than 50 such CpGs); then per CpG, the
   posterior mode of log phi in [-5, log 0.99] (DSS: R's ``optimize``; here a vectorised
   golden-section search).
4. Counts weighted by 1 / (1 + (cov - 1) phi) (normalised to mean 1), ``mu`` estimated again.
5. Wald test of mu_treated - mu_control: the variance is sum cov mu (1 - mu)(1 + (cov - 1) phi)
   / (sum cov)^2 per condition, or, smoothed, DSS's windowed variance (``compute_var_smooth``,
   neighbours correlated by 0.8 per 50 bp); p two-sided normal, q Benjamini-Hochberg.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from omics_assets.science.steps import InputError

COVERAGE_WINDOW = 200  # bp, DSS's hasCoverage window
RHO, LAG_BP = 0.8, 50  # DSS's correlation of neighbouring CpGs: RHO per LAG_BP bp
LOG_PHI_BOUNDS = (-5.0, float(np.log(0.99)))
GOLDEN_STEPS = 20  # bracket shrinks to 0.618^20 of 5: 3e-4 on log phi (DSS: tol 1e-3)


@dataclass(frozen=True)
class Windows:
    """Moving windows of +-span/2 bp over sites sorted by ``key`` (chromosome in the high
    bits: windows never cross chromosomes): ``first`` and ``last`` site of each window."""

    first: np.ndarray
    last: np.ndarray

    @classmethod
    def of(cls, key: np.ndarray, span: int) -> Windows:
        half = span // 2
        first = np.searchsorted(key, key - half, side="left")
        last = np.searchsorted(key, key + half, side="right") - 1
        return cls(first, last)

    def sum(self, x: np.ndarray) -> np.ndarray:
        """Windowed sums of ``x`` (sites in rows)."""
        total = np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0)])
        return total[self.last + 1] - total[self.first]


def site_keys(chrom: pd.Series, pos: np.ndarray) -> np.ndarray:
    """One int64 per site, sorted as the table is (chromosome codes in table order)."""
    codes = pd.factorize(chrom)[0].astype(np.int64)
    return (codes << 40) + np.asarray(pos, dtype=np.int64)


def _means(x: np.ndarray, n: np.ndarray, windows: Windows | None) -> np.ndarray:
    """DSS's estimate of a condition's methylation (``compute.mean.[no]Smooth``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        const = np.nanmean(np.where(n > 0, x / n, np.nan))
    if windows is None:
        return (x.sum(axis=1) + const) / (n.sum(axis=1) + 1)
    if x.shape[1] > 1:
        xs, ns = x.sum(axis=1) + const, n.sum(axis=1) + 1
    else:
        xs, ns = x[:, 0] + 0.4 * const, n[:, 0] + 0.4
    return windows.sum(xs) / windows.sum(ns)


def dispersion_prior(x: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Mean and sd of the log-normal prior of phi (``est.prior.BSseq.logN``)."""
    if x.shape[1] == 1:
        return -3.0, 1.0
    keep = (n > 10).all(axis=1)
    if keep.sum() < 50:
        return -3.0, 1.0
    p = x[keep] / n[keep]
    mean = np.clip(p.mean(axis=1), 1e-5, 1 - 1e-5)
    var = p.var(axis=1, ddof=1)
    phi = var / mean / (1 - mean)
    log_phi = np.log(phi[(var > 0) & (phi > 0)])
    q1, q3 = np.quantile(log_phi, [0.25, 0.75])
    return float(np.median(log_phi)), float((q3 - q1) / 1.39)


def _neg_log_posterior(
    log_phi: np.ndarray, x: np.ndarray, n: np.ndarray, mu: np.ndarray, prior: tuple[float, float]
) -> np.ndarray:
    """-(beta-binomial log likelihood + log-normal log prior) per site, up to constants."""
    from scipy.special import betaln

    size = 1.0 / np.exp(log_phi) - 1.0
    alpha = (mu * size)[:, None]
    beta = ((1 - mu) * size)[:, None]
    loglik = (betaln(n - x + beta, x + alpha) - betaln(beta, alpha)).sum(axis=1)
    return -(loglik - 0.5 * ((log_phi - prior[0]) / prior[1]) ** 2)


def shrunk_dispersion(x: np.ndarray, n: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Per-site phi: the posterior mode under the prior of :func:`dispersion_prior`
    (golden-section search on log phi, all sites at once); exp(prior mean) where no
    replicate has coverage."""
    prior = dispersion_prior(x, n)
    low = np.full(len(x), LOG_PHI_BOUNDS[0])
    high = np.full(len(x), LOG_PHI_BOUNDS[1])
    ratio = (np.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = (_neg_log_posterior(v, x, n, mu, prior) for v in (a, b))
    for _ in range(GOLDEN_STEPS):
        left = fa <= fb  # the minimum is in [low, b]
        high = np.where(left, b, high)
        low = np.where(left, low, a)
        new = np.where(left, high - ratio * (high - low), low + ratio * (high - low))
        fnew = _neg_log_posterior(new, x, n, mu, prior)
        a, b, fa, fb = (
            np.where(left, new, b),
            np.where(left, a, new),
            np.where(left, fnew, fb),
            np.where(left, fa, fnew),
        )
    phi = np.exp((low + high) / 2)
    return np.where((n > 0).any(axis=1), phi, np.exp(prior[0]))


def _smoothed_variance(
    mu: np.ndarray, n: np.ndarray, phi: np.ndarray, key: np.ndarray, windows: Windows
) -> np.ndarray:
    """Variance of a condition's smoothed mean, as DSS's ``compute.var.Smooth`` and its C
    ``compute_var_smooth`` compute it (their window bounds included: the diagonal counts
    the site's own variance once per other site of its window, pairs run over all but its
    last site)."""
    n = n + 1.0 / n.shape[1]
    first, last = windows.first, windows.last
    sites = np.arange(len(mu))
    total = np.zeros(len(mu))
    spread = mu * (1 - mu) * phi
    for rep in range(n.shape[1]):
        count = n[:, rep]
        own = count * mu * (1 - mu) * (1 + (count - 1) * phi)
        width = last - first  # sites in the window, minus one
        var = np.where(width == 0, own, width * own)
        weight = count * spread
        for lag in range(1, int(width.max(initial=0))):
            active = sites[width - 1 >= lag]  # pairs (j, j + lag) inside [first, last - 1]
            corr = RHO ** ((key[lag:] - key[:-lag]) // LAG_BP).astype(float)
            pair = np.concatenate([[0.0], np.cumsum(weight[:-lag] * weight[lag:] * corr)])
            lo, hi = first[active], last[active] - 1 - lag
            var[active] += 2 * (pair[hi + 1] - pair[lo])
        total += var
    return total / windows.sum(n).sum(axis=1) ** 2


def dml_test(
    chrom: pd.Series,
    pos: np.ndarray,
    control: tuple[np.ndarray, np.ndarray],
    treated: tuple[np.ndarray, np.ndarray],
    smoothing: bool,
    span: int,
) -> pd.DataFrame:
    """Per-CpG test of treated against control (``(meth, cov)`` matrices, sites x samples,
    sorted by chromosome and position): ``chrom, pos, mu_control, mu_treated, diff``
    (treated - control, a fraction), ``diff_se, stat, phi_control, phi_treated, p, q``."""
    from scipy.special import ndtr

    if not smoothing and min(control[0].shape[1], treated[0].shape[1]) == 1:
        raise InputError(
            "differential: a condition has one sample, so its dispersion cannot be estimated "
            "without smoothing: set smoothing: true"
        )
    key = site_keys(chrom, pos)
    near = Windows.of(key, COVERAGE_WINDOW)
    keep = np.ones(len(key), dtype=bool)
    for _, n in (control, treated):
        keep &= near.sum(n.sum(axis=1).astype(float)) > 2 * n.shape[1]
    key, pos = key[keep], np.asarray(pos)[keep]
    chrom = chrom[keep].reset_index(drop=True)
    windows = Windows.of(key, span) if smoothing else None
    fits = []
    for meth, cov in (control, treated):
        x, n = meth[keep].astype(float), cov[keep].astype(float)
        phi = shrunk_dispersion(x, n, _means(x, n, windows))
        weight = 1 / (1 + (n - 1) * phi[:, None])
        weight /= weight.mean()
        xw, nw = x * weight, n * weight
        mu = _means(xw, nw, windows)
        if windows is None:
            var = (nw * (mu * (1 - mu))[:, None] * (1 + (nw - 1) * phi[:, None])).sum(axis=1)
            var /= nw.sum(axis=1) ** 2
        else:
            var = _smoothed_variance(mu, nw, phi, key, windows)
        fits.append((mu, phi, var))
    (mu0, phi0, var0), (mu1, phi1, var1) = fits
    var = var0 + var1
    if smoothing:
        var = np.where(var < 1e-5, 1e-4, np.where(var > 1 - 1e-5, 1 - 1e-4, var))
    else:
        var = np.maximum(var, 1e-5)
    diff = mu1 - mu0
    stat = diff / np.sqrt(var)
    p = 2 * ndtr(-np.abs(stat))
    return pd.DataFrame(
        {
            "chrom": chrom,
            "pos": pos,
            "mu_control": mu0,
            "mu_treated": mu1,
            "diff": diff,
            "diff_se": np.sqrt(var),
            "stat": stat,
            "phi_control": phi0,
            "phi_treated": phi1,
            "p": p,
            "q": benjamini_hochberg(p),
        }
    )


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (R's ``p.adjust(p, "fdr")``)."""
    order = np.argsort(p)[::-1]
    ranked = p[order] * len(p) / np.arange(len(p), 0, -1)
    q = np.empty_like(p)
    q[order] = np.minimum(1.0, np.minimum.accumulate(ranked))
    return q


def simes(p: np.ndarray) -> float:
    """Simes' combined p of a region's CpG p-values (valid under the positive dependence of
    neighbouring CpGs)."""
    ranked = np.sort(p)
    return float(min(1.0, (len(p) * ranked / np.arange(1, len(p) + 1)).min()))


def call_dmrs(
    dml: pd.DataFrame,
    p_threshold: float,
    delta: float,
    min_cpgs: int,
    min_length: int,
    max_gap: int,
    min_significant: float,
) -> pd.DataFrame:
    """Merge significant CpGs (p < ``p_threshold``) into DMRs: consecutive significant CpGs of
    one chromosome and one direction at most ``max_gap`` bp apart form a region; it is kept
    with at least ``min_cpgs`` CpGs (significant or not) from first to last, a length (bp,
    first to last CpG, inclusive) of at least ``min_length``, a share of significant CpGs of at
    least ``min_significant`` and |mean diff| >= ``delta``. Columns: ``chrom, start, end``
    (1-based, inclusive), ``n_cpgs, mean_diff`` (treated - control), ``p`` (Simes over the
    region's CpGs), then ``length, n_significant, mean_control, mean_treated, area_stat``.

    DSS's ``callDMR`` differs: its thresholds are strict (length > minlen, CpGs > minCG,
    share > pct.sig: its minCG 3 asks for 4 CpGs, ours ``min_cpgs`` 3 for 3); it merges runs
    of significant CpGs whatever their direction within ``min(dis.merge, minlen)`` bp (50 at
    its defaults, not the documented 100) and splits regions at 5 kb gaps between CpGs; its
    ``delta`` replaces the p of each CpG by a posterior probability of |diff| > delta."""
    dml = dml.reset_index(drop=True)
    sig = np.flatnonzero(dml["p"].to_numpy() < p_threshold)
    columns = ["chrom", "start", "end", "n_cpgs", "mean_diff", "p", "length"]
    columns += ["n_significant", "mean_control", "mean_treated", "area_stat"]
    if len(sig) == 0:
        return pd.DataFrame(columns=columns)
    chrom = dml["chrom"].to_numpy()[sig]
    pos = dml["pos"].to_numpy()[sig]
    sign = np.sign(dml["diff"].to_numpy()[sig])
    breaks = (chrom[1:] != chrom[:-1]) | (np.diff(pos) > max_gap) | (sign[1:] != sign[:-1])
    group = np.concatenate([[0], np.cumsum(breaks)])
    rows = []
    for _, members in pd.Series(sig).groupby(group):
        first, last = int(members.iloc[0]), int(members.iloc[-1])
        region = dml.iloc[first : last + 1]
        start, end = int(region["pos"].iloc[0]), int(region["pos"].iloc[-1])
        rows.append(
            {
                "chrom": region["chrom"].iloc[0],
                "start": start,
                "end": end,
                "n_cpgs": len(region),
                "mean_diff": float(region["diff"].mean()),
                "p": simes(region["p"].to_numpy()),
                "length": end - start + 1,
                "n_significant": len(members),
                "mean_control": float(region["mu_control"].mean()),
                "mean_treated": float(region["mu_treated"].mean()),
                "area_stat": float(region["stat"].sum()),
            }
        )
    dmrs = pd.DataFrame(rows, columns=columns)
    keep = (
        (dmrs["n_cpgs"] >= min_cpgs)
        & (dmrs["length"] >= min_length)
        & (dmrs["n_significant"] >= min_significant * dmrs["n_cpgs"])
        & (dmrs["mean_diff"].abs() >= delta)
    )
    return dmrs[keep].sort_values(["chrom", "start"]).reset_index(drop=True)
