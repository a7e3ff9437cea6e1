"""Population-genetic simulation: the simulation domain's steps.

tree_sequence (msprime, or a stdpopsim species model) -> vcf -> phenotype with known causal
variants. Positions are base pairs on contig ``1``; individuals are diploid and named
``ind<i>``; a causal variant's ``variance_explained`` is its share of the trait's variance.
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from omics_assets.science.steps import InputError, StepContext

if TYPE_CHECKING:  # msprime and tskit load when a simulation step runs, not with the location
    import tskit

CONTIG = "1"


def _simulate(cfg: dict[str, Any]) -> tskit.TreeSequence:
    seed = int(cfg["seed"])
    import msprime

    model = cfg.get("stdpopsim")
    if model:
        import stdpopsim  # imported on demand: its catalogue takes a second to load

        try:
            species = stdpopsim.get_species(model["species"])
            demography = species.get_demographic_model(model["model"])
            contig = species.get_contig(  # the model's mutation rate: its expected diversity
                model["contig"],
                left=float(model["left"]),
                right=float(model["right"]),
                mutation_rate=demography.mutation_rate,
            )  # no genetic_map=: a map is a download; the contig's mean rate is used
        except (ValueError, KeyError) as error:
            raise InputError(f"stdpopsim: {error}") from error
        engine = stdpopsim.get_engine("msprime")
        return engine.simulate(
            demography, contig, {model["population"]: int(cfg["samples"])}, seed=seed
        )
    ancestry = msprime.sim_ancestry(
        samples=int(cfg["samples"]),
        population_size=float(cfg["population_size"]),
        sequence_length=float(cfg["sequence_length"]),
        recombination_rate=float(cfg["recombination_rate"]),
        random_seed=seed,
    )
    return msprime.sim_mutations(ancestry, rate=float(cfg["mutation_rate"]), random_seed=seed)


def tree_sequence(ctx: StepContext) -> dict[str, Any]:
    """Simulate genealogies and mutations of ``samples`` diploid individuals."""
    ts = _simulate(dict(ctx.config))
    ts.dump(ctx.out / "simulation.trees")
    return {
        "files": {"trees": "simulation.trees"},
        "metrics": {
            "individuals": ts.num_individuals,
            "sites": ts.num_sites,
            "trees": ts.num_trees,
            "sequence_length": int(ts.sequence_length),
        },
    }


def _load(ctx: StepContext) -> tskit.TreeSequence:
    import tskit

    return tskit.load(ctx.input_file("tree_sequence", "trees"))


def _names(ts: tskit.TreeSequence) -> list[str]:
    return [f"ind{i}" for i in range(ts.num_individuals)]


def vcf(ctx: StepContext) -> dict[str, Any]:
    """The simulated genotypes as a gzipped VCF (biallelic and multiallelic sites as tskit
    writes them; the association step keeps biallelic ones)."""
    ts = _load(ctx)
    with gzip.open(ctx.out / "genotypes.vcf.gz", "wt", compresslevel=1) as handle:
        ts.write_vcf(
            handle,
            individual_names=_names(ts),
            contig_id=CONTIG,
            position_transform=lambda x: np.fmax(1, np.round(x)).astype(int),
        )
    return {
        "files": {"vcf": "genotypes.vcf.gz"},
        "metrics": {"samples": ts.num_individuals, "sites": ts.num_sites},
    }


def dosages(ts: tskit.TreeSequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Alternate-allele dosages (individuals x biallelic sites, 0-2), their positions and
    their site ids (the VCF's ID column)."""
    rows, positions, ids = [], [], []
    nodes = np.array([ind.nodes for ind in ts.individuals()])
    for variant in ts.variants():
        if len(variant.alleles) != 2:
            continue
        haplotypes = variant.genotypes
        rows.append(haplotypes[nodes[:, 0]] + haplotypes[nodes[:, 1]])
        positions.append(max(1, round(variant.site.position)))
        ids.append(variant.site.id)
    return np.array(rows, dtype=float).T, np.array(positions), np.array(ids)


def phenotype(ctx: StepContext) -> dict[str, Any]:
    """A trait with ``causal_snps`` causal variants (minor allele frequency >= ``min_maf``,
    spread along the contig), each explaining ``variance_explained`` of the trait's variance;
    the rest is Gaussian noise. Writes the trait and the causal variants (the truth)."""
    cfg = ctx.config
    rng = np.random.default_rng(int(cfg["seed"]))
    ts = _load(ctx)
    genotypes, positions, ids = dosages(ts)
    frequency = genotypes.mean(axis=0) / 2
    maf = np.minimum(frequency, 1 - frequency)
    count, share = int(cfg["causal_snps"]), float(cfg["variance_explained"])
    if count * share >= 1.0:
        raise InputError(
            f"phenotype: {count} causal variants x {share} variance explained "
            "leave no room for noise (the product must be < 1)"
        )
    segments = np.array_split(np.flatnonzero(maf >= float(cfg["min_maf"])), count)
    if any(len(segment) == 0 for segment in segments):
        raise InputError(f"phenotype: fewer than {count} variants have MAF >= {cfg['min_maf']}")
    causal = np.array(
        [rng.choice(segment[len(segment) // 4 : 3 * len(segment) // 4 + 1]) for segment in segments]
    )
    standardized = (genotypes[:, causal] - genotypes[:, causal].mean(axis=0)) / genotypes[
        :, causal
    ].std(axis=0)
    signal = standardized @ np.full(count, np.sqrt(share))
    trait = signal + rng.normal(0.0, np.sqrt(1.0 - count * share), len(signal))
    pd.DataFrame({"IID": _names(ts), "trait": trait}).to_csv(
        ctx.out / "phenotype.tsv", sep="\t", index=False, float_format="%.6f"
    )
    truth = pd.DataFrame(
        {
            "snp": ids[causal].astype(str),
            "chrom": CONTIG,
            "pos": positions[causal],
            "maf": maf[causal],
            "variance_explained": share,
        }
    )
    truth.to_csv(ctx.out / "causal.tsv", sep="\t", index=False)
    return {
        "files": {"phenotype": "phenotype.tsv", "causal": "causal.tsv"},
        "metrics": {"causal_snps": count, "heritability": round(count * share, 3)},
    }
