"""The association step's three models on gemma-doc's HS1940 mice (1,940 related
heterogeneous-stock mice, the .fam's first phenotype): LOCO against GEMMA run by hand with a
kinship matrix from the other chromosomes, the LOCO kinship against GEMMA's own ``-gk 1``,
lambda GC and the ``genomic_inflation`` verdict per model, one table for every model, and
LOCO refused on a single chromosome. One staging and one run per model, shared by the module.
"""

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from omics_assets.config import Layer, resolve
from omics_assets.demo import GEMMA_EXAMPLE
from omics_assets.science import gwas, mixed_model
from omics_assets.science.domains import step
from omics_assets.science.steps import StepContext, execute_step

pytestmark = pytest.mark.slow

HS1940 = {"genotypes": str(GEMMA_EXAMPLE / "mouse_hs1940"), "phenotype": None, "trait": None}
LEFT_OUT = "17"  # the chromosome checked by hand: it holds the trait's strongest locus
MODELS = ("linear", "lmm", "loco")
Results = dict[str, dict[str, Any]]


def run_step(
    name: str, out: Path, upstream: Results, config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One gwas step on HS1940 outside Dagster: the domain's default config with ``config``
    over it, reading the ``upstream`` results; its result record with ``dir``."""
    defaults = resolve("gwas", [Layer("test", {"name": "test", "domain": "gwas"})]).config
    out.mkdir(parents=True)
    ctx = StepContext(
        step=name,
        config={**defaults["steps"][name]["config"], **(config or {})},
        domain_specific=HS1940,
        threads=2,
        out=out,
        inputs={k: v["output"] for k, v in upstream.items()},
        input_dirs={k: v["dir"] for k, v in upstream.items()},
        enabled_steps=frozenset(["genotypes", "qc", "pca", "association", "hits", "report"]),
    )
    return {**execute_step(step("gwas", name).run, ctx), "dir": out}


def completed(result: dict[str, Any]) -> dict[str, Any]:
    assert result["status"] == "completed", (result["errors"], result.get("reason"))
    return result


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Results:
    """genotypes, qc and pca of HS1940."""
    root = tmp_path_factory.mktemp("hs1940")
    results: Results = {}
    for name in ("genotypes", "qc", "pca"):
        results[name] = completed(run_step(name, root / name, results))
    return results


@pytest.fixture(scope="module")
def models(staged: Results, tmp_path_factory: pytest.TempPathFactory) -> Results:
    """The association step under each model: its result and its table."""
    root = tmp_path_factory.mktemp("models")
    runs: Results = {}
    for model in MODELS:
        result = completed(run_step("association", root / model, staged, {"model": model}))
        table = pd.read_csv(result["dir"] / "association.tsv", sep="\t", dtype={"chrom": str})
        runs[model] = {**result, "table": table}
    return runs


def tool(*argv: str, cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def by_hand(staged: Results, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GEMMA run by hand, apart from the code under test: plink2 writes the QC'd set with the
    trait; GEMMA -gk 1 on all chromosomes but LEFT_OUT; GEMMA -lmm 1 on LEFT_OUT's variants
    with that matrix. Returns the folder (``all.*``, ``output/{kin,lmm}.*``)."""
    work = tmp_path_factory.mktemp("by_hand")
    qc = staged["qc"]["dir"] / "qc"
    phenotype = staged["genotypes"]["dir"] / "phenotype.tsv"
    tool("plink2", "--pfile", str(qc), "--pheno", str(phenotype), "--pheno-name", "trait",
         "--make-bed", "--out", "all", cwd=work)  # fmt: skip
    tool("plink2", "--bfile", "all", "--not-chr", LEFT_OUT, "--make-bed", "--out", "rest", cwd=work)
    tool("plink2", "--bfile", "all", "--chr", LEFT_OUT, "--make-bed", "--out", "one", cwd=work)
    tool("gemma", "-bfile", "rest", "-gk", "1", "-o", "kin", cwd=work)
    tool("gemma", "-bfile", "one", "-k", "output/kin.cXX.txt", "-lmm", "1", "-o", "lmm", cwd=work)
    return work


def test_loco_p_values_equal_gemma_run_by_hand_on_one_chromosome(
    models: Results, by_hand: Path
) -> None:
    ours = models["loco"]["table"].query("chrom == @LEFT_OUT").reset_index(drop=True)
    gemma = pd.read_csv(by_hand / "output" / "lmm.assoc.txt", sep="\t", dtype={"rs": str})
    assert len(ours) == len(gemma) > 300
    assert ours["snp"].tolist() == gemma["rs"].tolist()
    # plink2 --pheno writes the trait with 6 significant digits, the step with all of them
    np.testing.assert_allclose(-np.log10(ours["p"]), -np.log10(gemma["p_wald"]), atol=1e-3)
    np.testing.assert_allclose(ours["beta"], gemma["beta"], atol=1e-4)
    assert (ours["n"] == 1410 - gemma["n_miss"]).all()
    # LOCO differs from the LMM with one matrix on the same variants
    lmm = models["lmm"]["table"].set_index("snp").loc[ours["snp"], "p"].to_numpy()
    assert np.abs(np.log10(lmm) - np.log10(ours["p"].to_numpy())).max() > 0.1


def test_the_loco_kinship_equals_gemmas_own_without_that_chromosome(by_hand: Path) -> None:
    """Our one-pass matrix (written as the step hands it to GEMMA) against GEMMA -gk 1 run on
    the set without LEFT_OUT, over all 1,940 mice."""
    gemma = np.loadtxt(by_hand / "output" / "kin.cXX.txt")
    kinships = mixed_model.loco_kinships(by_hand / "all")
    matrix, variants = next((k, m) for chrom, k, m in kinships if chrom == LEFT_OUT)
    mixed_model.write_kinship(by_hand / "ours.txt", matrix)
    ours = np.loadtxt(by_hand / "ours.txt")
    assert ours.shape == gemma.shape == (1940, 1940)
    assert np.abs(ours - gemma).max() < 1e-6
    log = (by_hand / "output" / "kin.log.txt").read_text()
    assert f"number of analyzed SNPs/var = {variants}" in log


def test_lambda_gc_and_the_inflation_verdict_per_model(models: Results) -> None:
    """Related mice: the linear model (5 PCs) is inflated; one kinship matrix that holds the
    tested variant deflates; LOCO removes that deflation (its lambda lies above the LMM's and
    below the linear model's). Each verdict is for its own model and passes only in 0.9-1.1."""
    lam = {m: models[m]["output"]["metrics"]["lambda_gc"] for m in MODELS}
    assert lam["linear"] > gwas.MAX_LAMBDA
    assert lam["lmm"] < gwas.MIN_LAMBDA
    assert lam["lmm"] < lam["loco"] < lam["linear"]
    for model in MODELS:
        verdict = models[model]["checks"]["genomic_inflation"]
        assert models[model]["output"]["metrics"]["model"] == model
        assert verdict["passed"] == (gwas.MIN_LAMBDA <= lam[model] <= gwas.MAX_LAMBDA)
        assert verdict["description"].startswith(
            f"lambda GC {lam[model]:.3f} ({gwas.MODEL_NAMES[model]})"
        )
    linear = models["linear"]["checks"]["genomic_inflation"]["description"]
    assert "> 1.1: inflated" in linear and "model: loco" in linear
    lmm = models["lmm"]["checks"]["genomic_inflation"]["description"]
    assert "< 0.9: deflated" in lmm and "model: loco" in lmm


def test_every_model_writes_the_same_table_and_hits_and_report_read_it(
    staged: Results, models: Results, tmp_path: Path
) -> None:
    for model in MODELS:
        table = models[model]["table"]
        assert list(table.columns) == gwas.ASSOCIATION_COLUMNS, model
        assert len(table) > 8000 and table["p"].between(0, 1).all() and table["n"].max() == 1410
        top = table.loc[table["p"].idxmin()]
        assert top["chrom"] == "17" and 30e6 <= top["pos"] <= 40e6, model
    # the mixed models test the same variants, chromosome by chromosome in file order
    assert models["lmm"]["table"]["snp"].tolist() == models["loco"]["table"]["snp"].tolist()
    upstream = {**staged, "association": models["loco"]}
    upstream["hits"] = completed(run_step("hits", tmp_path / "hits", upstream))
    assert upstream["hits"]["output"]["metrics"]["top_chrom"] == "17"
    report = completed(run_step("report", tmp_path / "report", upstream))
    assert "(LOCO LMM)" in (report["dir"] / "report.md").read_text().splitlines()[0]


def test_loco_refuses_a_single_chromosome(staged: Results, tmp_path: Path) -> None:
    """One chromosome leaves nothing to build its kinship from: an InputError that says so,
    before GEMMA runs."""
    qc = staged["qc"]
    subprocess.run(
        ["plink2", "--pfile", str(qc["dir"] / "qc"), "--chr", "19", "--make-pgen",
         "--out", str(tmp_path / "qc")],
        check=True, capture_output=True,
    )  # fmt: skip
    one = {**qc, "dir": tmp_path}
    result = run_step("association", tmp_path / "out", {**staged, "qc": one}, {"model": "loco"})
    assert result["status"] == "failed" and not result["retryable"]
    error = result["errors"][0]
    assert "model: loco needs variants on at least two chromosomes" in error
    assert "all on chromosome 19" in error and "Use model: lmm" in error
    assert "gemma" not in result["metadata"]["tool_versions"]


def test_write_kinship_round_trips(tmp_path: Path) -> None:
    matrix = np.array([[0.3348, -1e-12, -0.0], [12.25, -3.123456789012, 7e-11]])
    mixed_model.write_kinship(tmp_path / "k.txt", matrix)
    lines = (tmp_path / "k.txt").read_text().splitlines()
    assert lines[0].split("\t") == ["+00.3348000000", "-00.0000000000", "-00.0000000000"]
    np.testing.assert_allclose(np.loadtxt(tmp_path / "k.txt"), matrix, atol=5e-11)
