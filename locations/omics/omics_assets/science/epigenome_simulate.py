"""A simulated bisulfite cohort with planted DMRs, written as Bismark coverage files.

CpGs lie on two chromosomes (``chrS1``, ``chrS2``): sparse background CpGs (gaps: 1 + a
geometric draw, mean 120 bp; two CpGs' cytosines are at least 2 bp apart) and CpG islands
(every ~15 kb, 20-60 CpGs ~12 bp apart).
Methylation is high in the background (a smooth logit-scale random walk around 0.8) and low
in islands (~0.1). A planted DMR changes the treated condition's methylation by ``delta``
(towards 0.5): half are whole CpG islands gaining methylation, half 5-20 consecutive sparse
background CpGs (0.6-2.4 kb) losing it. Each sample's methylation at a CpG is drawn from a beta
distribution (over-dispersion: per-CpG phi log-normal around ``dispersion``), its coverage
negative-binomial (per-sample depth 0.5-1.5 x ``coverage``, a per-region depth factor and
size 3); CpGs with no reads are left out of that sample's file, as Bismark does.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd

CHROMS = ("chrS1", "chrS2")


def _positions(rng: np.random.Generator, cpgs: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted CpG positions (bp, 1-based) of one chromosome and whether each is in an island."""
    pos, island = [], []
    here = 1000
    while sum(map(len, pos)) < cpgs:
        stretch = 1 + rng.geometric(1 / 119, size=125)  # ~15 kb of background
        pos.append(here + np.cumsum(stretch))
        island.append(np.zeros(len(stretch), dtype=bool))
        here = int(pos[-1][-1]) + 200
        size = int(rng.integers(20, 61))
        pos.append(here + np.cumsum(rng.integers(4, 21, size=size)))
        island.append(np.ones(size, dtype=bool))
        here = int(pos[-1][-1]) + 200
    return np.concatenate(pos)[:cpgs], np.concatenate(island)[:cpgs]


def _baseline(rng: np.random.Generator, island: np.ndarray) -> np.ndarray:
    """Mean methylation per CpG: a logit random walk around 0.8, ~0.1 in islands."""
    walk = np.cumsum(rng.normal(0, 0.08, len(island)))
    walk -= pd.Series(walk).rolling(200, min_periods=1, center=True).mean().to_numpy()
    level = 1 / (1 + np.exp(-(1.4 + walk + rng.normal(0, 0.3, len(island)))))
    low = 1 / (1 + np.exp(-(-2.2 + rng.normal(0, 0.4, len(island)))))
    return np.where(island, low, level)


def _plant(
    rng: np.random.Generator, island: np.ndarray, count: int, delta: float
) -> list[tuple[int, int, float]]:
    """``count`` DMRs as (first CpG, CpGs, change), apart from each other: half whole CpG
    islands gaining methylation, half 5-20 background CpGs losing it."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], island.astype(int), [0]])))
    islands = list(zip(edges[::2], edges[1::2] - edges[::2], strict=True))
    taken = np.zeros(len(island), dtype=bool)
    planted: list[tuple[int, int, float]] = []
    while len(planted) < count:
        if len(planted) % 2 == 0:
            first, size = islands[int(rng.integers(0, len(islands)))]
        else:
            size = int(rng.integers(5, 21))
            first = int(rng.integers(0, len(island) - size))
        block = slice(max(0, first - 30), first + size + 30)
        if taken[block].any() or (len(planted) % 2 and island[first : first + size].any()):
            continue
        taken[block] = True
        planted.append((int(first), int(size), delta if len(planted) % 2 == 0 else -delta))
    return planted


def simulate_cohort(
    out: Path,
    seed: int,
    cpgs_per_chrom: int,
    dmrs: int,
    samples_per_condition: int,
    coverage: float,
    dispersion: float,
    delta: float,
) -> dict[str, Path]:
    """Write ``samples_per_condition`` control and treated coverage files (``<sample>.cov.gz``),
    ``samplesheet.tsv``, ``truth.tsv`` (the planted DMRs: ``chrom, start, end, n_cpgs, delta``,
    1-based inclusive) and ``genes.gtf`` (a gene every ~40 kb) into ``out``."""
    rng = np.random.default_rng(seed)
    sites, truth = [], []
    for chrom in CHROMS:
        pos, island = _positions(rng, cpgs_per_chrom)
        level = _baseline(rng, island)
        treated = level.copy()
        for first, size, change in _plant(rng, island, dmrs // len(CHROMS), delta):
            block = slice(first, first + size)
            treated[block] = np.clip(level[block] + change, 0.02, 0.98)
            truth.append((chrom, int(pos[first]), int(pos[first + size - 1]), size, change))
        depth = np.exp(np.convolve(rng.normal(0, 0.5, len(pos)), np.ones(25) / 5, "same"))
        sites.append(
            pd.DataFrame(
                {"chrom": chrom, "pos": pos, "control": level, "treated": treated, "depth": depth}
            )
        )
    table = pd.concat(sites, ignore_index=True)
    rows = []
    for condition in ("control", "treated"):
        for rep in range(1, samples_per_condition + 1):
            sample = f"{condition}_{rep}"
            _write_sample(rng, out / f"{sample}.cov.gz", table, condition, coverage, dispersion)
            rows.append((sample, condition, f"{sample}.cov.gz"))
    pd.DataFrame(rows, columns=["sample", "condition", "coverage"]).to_csv(
        out / "samplesheet.tsv", sep="\t", index=False
    )
    pd.DataFrame(truth, columns=["chrom", "start", "end", "n_cpgs", "delta"]).to_csv(
        out / "truth.tsv", sep="\t", index=False
    )
    _write_genes(rng, out / "genes.gtf", table)
    return {
        "samplesheet": out / "samplesheet.tsv",
        "truth": out / "truth.tsv",
        "genes": out / "genes.gtf",
    }


def _write_sample(
    rng: np.random.Generator,
    path: Path,
    table: pd.DataFrame,
    condition: str,
    coverage: float,
    dispersion: float,
) -> None:
    mean = table[condition].to_numpy()
    phi = np.clip(dispersion * np.exp(rng.normal(0, 0.5, len(mean))), 1e-4, 0.5)
    size = 1 / phi - 1
    level = rng.beta(mean * size, (1 - mean) * size)
    depth = coverage * rng.uniform(0.5, 1.5) * table["depth"].to_numpy()
    cov = rng.negative_binomial(3, 3 / (3 + depth))
    meth = rng.binomial(cov, level)
    seen = cov > 0
    with gzip.open(path, "wt", compresslevel=1) as handle:
        for chrom, pos, m, n in zip(
            table["chrom"][seen], table["pos"][seen], meth[seen], cov[seen], strict=True
        ):
            handle.write(f"{chrom}\t{pos}\t{pos}\t{100 * m / n:.15g}\t{m}\t{n - m}\n")


def _write_genes(rng: np.random.Generator, path: Path, table: pd.DataFrame) -> None:
    lines = []
    for chrom, sites in table.groupby("chrom"):
        end = int(sites["pos"].max())
        for number, start in enumerate(range(5000, end, 40000), 1):
            length = int(rng.integers(3000, 30000))
            strand = "+" if rng.random() < 0.5 else "-"
            name = f"{chrom}_g{number}"
            attributes = f'gene_id "{name}"; gene_name "GENE{chrom[-1]}{number}";'
            lines.append(
                f"{chrom}\tsim\tgene\t{start}\t{start + length}\t.\t{strand}\t.\t{attributes}\n"
            )
    path.write_text("".join(lines))
