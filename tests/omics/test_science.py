"""Ground truth for the omics steps, outside Dagster: real data from Debian packages (kallisto's
test reads and its own result, the LNCaP counts, HS1940 mice, 1000 Genomes EUR genotypes) and
simulations whose truth the test itself draws."""

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from omics_assets.demo import GEMMA_EXAMPLE, KALLISTO_TEST, LI_SUM
from omics_assets.science import gwas
from omics_assets.science.domains import STEPS, wiring
from tests.omics.conftest import StepRunner

pytestmark = pytest.mark.slow

KLK3, TMPRSS2, FKBP5 = "ENSG00000142515", "ENSG00000184012", "ENSG00000096060"


def test_kallisto_reproduces_the_result_shipped_with_its_test_reads(
    run_steps: StepRunner, tmp_path: Path
) -> None:
    """kallisto-examples ships real paired reads and kallisto's own abundance.tsv for them."""
    sheet = tmp_path / "sheet.tsv"
    reads = [KALLISTO_TEST / f"reads_{mate}.fastq.gz" for mate in (1, 2)]
    sheet.write_text(
        f"sample\tcondition\tfastq_1\tfastq_2\nreal\tcontrol\t{reads[0]}\t{reads[1]}\n"
    )
    spec = {
        "transcripts": str(KALLISTO_TEST / "transcripts.fasta.gz"),
        "annotation": None,
        "samplesheet": str(sheet),
        "quantifier": "kallisto",
        "reference_level": "control",
    }
    results = run_steps("rnaseq", ["reference", "samplesheet", "index", "quantify"], spec)
    ours = pd.read_csv(results["quantify"]["dir"] / "transcript_counts.tsv", sep="\t", index_col=0)[
        "real"
    ]
    shipped = pd.read_csv(KALLISTO_TEST / "quant_out" / "abundance.tsv", sep="\t", index_col=0)[
        "est_counts"
    ]
    assert len(shipped) == 14
    np.testing.assert_allclose(ours.loc[shipped.index], shipped, rtol=1e-3, atol=0.01)
    assert results["quantify"]["output"]["metrics"]["mean_mapping_rate"] == pytest.approx(94.1)


@pytest.mark.parametrize("quantifier", ["kallisto", "salmon"])
def test_quantification_recovers_simulated_counts(
    run_steps: StepRunner, tmp_path: Path, quantifier: str
) -> None:
    """art_illumina reads (HiSeq 2500 error profile, negative-binomial counts, isoforms that
    share exons) from kallisto-examples' 14 transcripts: estimates against the drawn truth."""
    sheet = tmp_path / "design.tsv"
    sheet.write_text("sample\tcondition\nc1\tcontrol\nc2\tcontrol\nt1\ttreated\nt2\ttreated\n")
    spec = {
        "transcripts": str(KALLISTO_TEST / "transcripts.fasta.gz"),
        "annotation": str(KALLISTO_TEST / "transcripts.gtf.gz"),
        "samplesheet": str(sheet),
        "quantifier": quantifier,
        "reference_level": "control",
    }
    steps = ["reference", "samplesheet", "simulate_reads", "index", "quantify"]
    results = run_steps(
        "rnaseq", steps, spec, simulate_reads={"pairs_per_sample": 20000, "seed": 11}
    )
    truth = pd.read_csv(results["simulate_reads"]["dir"] / "truth.tsv", sep="\t").pivot(
        index="transcript", columns="sample", values="pairs"
    )
    estimate = pd.read_csv(
        results["quantify"]["dir"] / "transcript_counts.tsv", sep="\t", index_col=0
    ).loc[truth.index, truth.columns]
    assert truth.to_numpy().sum() > 70_000
    rho = stats.spearmanr(truth.to_numpy().ravel(), estimate.to_numpy().ravel()).statistic
    present = truth.to_numpy() > 0
    relative = np.abs(estimate.to_numpy() - truth.to_numpy())[present] / truth.to_numpy()[present]
    assert rho >= 0.95
    assert relative.mean() <= 0.05


def test_deseq2_finds_the_androgen_response_in_real_lncap_counts(
    run_steps: StepRunner, tmp_path: Path
) -> None:
    """LNCaP cells, 4 mock vs 3 DHT lanes (goseq's Li_sum.txt). A gene subset for speed: 1,500
    expressed genes drawn at random, plus the three known androgen-induced genes."""
    counts = pd.read_csv(LI_SUM, sep="\t", index_col=0)
    expressed = counts[counts.sum(axis=1) >= 10]
    rng = np.random.default_rng(5)
    subset = expressed.loc[
        sorted({*rng.choice(expressed.index, 1500, replace=False), KLK3, TMPRSS2, FKBP5})
    ]
    subset.to_csv(tmp_path / "subset.tsv", sep="\t")
    sheet = tmp_path / "lanes.tsv"
    sheet.write_text(
        "sample\tcondition\n"
        + "".join(f"lane{i}\t{'mock' if i <= 4 else 'dht'}\n" for i in (1, 2, 3, 4, 5, 6, 8))
    )
    spec = {
        "counts": str(tmp_path / "subset.tsv"),
        "samplesheet": str(sheet),
        "reference_level": "mock",
        "quantifier": "kallisto",
    }
    results = run_steps("rnaseq", ["samplesheet", "differential_expression"], spec)
    table = pd.read_csv(
        results["differential_expression"]["dir"] / "de_results.tsv", sep="\t", index_col=0
    )
    for gene in (KLK3, TMPRSS2, FKBP5):
        assert table.loc[gene, "padj"] < 0.05, gene
        assert table.loc[gene, "log2FoldChange"] > 1, gene
    metrics = results["differential_expression"]["output"]["metrics"]
    assert metrics["contrast"] == "dht vs mock"
    assert 0 < metrics["significant"] < len(table)  # a response, not everything


def _raw_dosages(prefix: Path, snps: list[str], out: Path) -> pd.DataFrame:
    """Allele dosages of ``snps`` exported by plink2 (not by the code under test)."""
    subprocess.run(
        [
            "plink2",
            "--bfile",
            str(prefix),
            "--snps",
            ",".join(snps),
            "--export",
            "A",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    raw = pd.read_csv(f"{out}.raw", sep="\t")
    columns = {c: c.rsplit("_", 1)[0] for c in raw.columns[6:]}  # rs123_A -> rs123
    return raw[["FID", "IID", *columns]].rename(columns=columns).copy()


def test_causal_snps_of_a_simulated_trait_on_real_genotypes_reach_genome_wide_significance(
    run_steps: StepRunner, eur_subset: Path, tmp_path: Path
) -> None:
    """Three common SNPs of the real EUR genotypes, each explaining 12 % of a simulated trait."""
    bim = pd.read_csv(
        f"{eur_subset}.bim", sep="\t", header=None, names=["chrom", "snp", "cm", "pos", "a1", "a2"]
    )
    rng = np.random.default_rng(17)
    candidates = [
        rng.choice(bim.loc[bim["chrom"] == c, "snp"].to_numpy(), 40) for c in (17, 19, 21)
    ]
    dosages = _raw_dosages(eur_subset, [s for group in candidates for s in group], tmp_path / "d")
    causal = []
    for group in candidates:  # the first SNP of each chromosome with MAF >= 0.2
        frequency = dosages[list(group)].mean() / 2
        causal.append(next(s for s in group if min(frequency[s], 1 - frequency[s]) >= 0.2))
    g = dosages[causal].to_numpy(float)
    standardized = (g - g.mean(axis=0)) / g.std(axis=0)
    trait = standardized @ np.full(3, np.sqrt(0.12)) + rng.normal(0, np.sqrt(0.64), len(g))
    dosages.assign(trait=trait)[["FID", "IID", "trait"]].to_csv(
        tmp_path / "trait.tsv", sep="\t", index=False
    )
    spec = {
        "genotypes": str(eur_subset),
        "phenotype": str(tmp_path / "trait.tsv"),
        "trait": "trait",
    }
    results = run_steps("gwas", ["genotypes", "qc", "pca", "association"], spec)
    table = pd.read_csv(
        results["association"]["dir"] / "association.tsv", sep="\t", index_col="snp"
    )
    assert len(table) > 50_000
    assert (table.loc[causal, "p"] < 5e-8).all(), table.loc[causal, "p"]


def test_a_permuted_phenotype_shows_no_inflation(
    run_steps: StepRunner, eur_subset: Path, tmp_path: Path
) -> None:
    """The EUR subset's real phenotype, permuted across samples: lambda GC 0.9-1.1."""
    pheno = pd.read_csv(f"{eur_subset}.pheno.covars", sep=r"\s+")
    pheno["PHENO"] = np.random.default_rng(3).permutation(pheno["PHENO"].to_numpy())
    pheno[["FID", "IID", "PHENO"]].to_csv(tmp_path / "permuted.tsv", sep="\t", index=False)
    spec = {
        "genotypes": str(eur_subset),
        "phenotype": str(tmp_path / "permuted.tsv"),
        "trait": "PHENO",
    }
    results = run_steps("gwas", ["genotypes", "qc", "pca", "association"], spec)
    assert 0.9 <= results["association"]["output"]["metrics"]["lambda_gc"] <= 1.1


def test_hs1940_first_phenotype_peaks_on_chromosome_17(run_steps: StepRunner) -> None:
    """gemma-doc's heterogeneous-stock mice: the strongest association of the .fam's first
    phenotype lies on chromosome 17 between 30 and 40 Mb."""
    spec = {"genotypes": str(GEMMA_EXAMPLE / "mouse_hs1940"), "phenotype": None, "trait": None}
    results = run_steps("gwas", ["genotypes", "qc", "pca", "association", "hits"], spec)
    top = results["hits"]["output"]["metrics"]
    assert top["top_chrom"] == "17"
    assert 30e6 <= top["top_pos"] <= 40e6
    assert top["top_p"] < 1e-30
    genotyped = results["genotypes"]["output"]["metrics"]
    assert genotyped["samples"] == 1940 and genotyped["samples_with_phenotype"] == 1410


def test_lambda_gc_and_distance_clumping() -> None:
    uniform = np.random.default_rng(0).uniform(size=200_000)
    assert gwas.lambda_gc(uniform) == pytest.approx(1.0, abs=0.02)
    assert gwas.lambda_gc(uniform**2) > 1.3  # inflated p-values
    table = pd.DataFrame(
        {
            "snp": list("abcd"),
            "chrom": ["1", "1", "1", "2"],
            "pos": [1000, 50_000, 900_000, 1000],
            "p": [1e-9, 1e-12, 1e-8, 1e-3],
        }
    )
    loci = gwas.clump_by_distance(table, 5e-8, 100_000)
    assert loci["snp"].tolist() == ["b", "c"]  # a is within 100 kb of the stronger b


def test_disabled_steps_are_wired_around() -> None:
    enabled = {
        "reference": False,
        "samplesheet": True,
        "simulate_reads": False,
        "index": False,
        "quantify": False,
        "gene_counts": False,
        "differential_expression": True,
        "report": True,
    }
    assert wiring(STEPS["rnaseq"], enabled) == {
        "samplesheet": (),
        "differential_expression": ("samplesheet",),
        "report": ("samplesheet", "differential_expression"),
    }
    assert wiring(
        STEPS["gwas"],
        {
            "genotypes": True,
            "qc": True,
            "pca": False,
            "association": True,
            "hits": False,
            "report": True,
        },
    )["report"] == ("association",)


def test_a_stdpopsim_model_simulates_the_chosen_stretch(run_steps: StepRunner) -> None:
    """Out-of-Africa (Gutenkunst 2009), CEU, 1 Mb of chr22 at its mean recombination rate
    (no genetic map: that would be a download)."""
    model = {
        "species": "HomSap",
        "model": "OutOfAfrica_3G09",
        "population": "CEU",
        "contig": "chr22",
        "left": 20e6,
        "right": 21e6,
    }
    results = run_steps(
        "simulation",
        ["tree_sequence", "vcf", "phenotype"],
        {},
        tree_sequence={"samples": 60, "stdpopsim": model},
        phenotype={"causal_snps": 2, "variance_explained": 0.2},
    )
    metrics = results["tree_sequence"]["output"]["metrics"]
    assert metrics["individuals"] == 60 and metrics["sites"] > 100
    causal = pd.read_csv(results["phenotype"]["dir"] / "causal.tsv", sep="\t")
    assert causal["pos"].between(20e6, 21e6).all() and (causal["maf"] >= 0.05).all()
    trait = pd.read_csv(results["phenotype"]["dir"] / "phenotype.tsv", sep="\t")
    assert len(trait) == 60 and trait["trait"].std() > 0.5
