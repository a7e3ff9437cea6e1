"""Genome-wide association with plink2 or GEMMA's LMM (``mixed_model``): the gwas domain's steps.

genotypes -> qc -> pca -> association -> hits -> report. Every step reads its upstream
step's files and writes its own; p-values are two-sided, effects (``beta``) are per copy of
the alternate allele (A1), positions in base pairs.
"""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from omics_assets.science import genotypes as geno
from omics_assets.science import mixed_model
from omics_assets.science.steps import InputError, SkipStep, StepContext
from platform_core.tools import ToolError

GENOME_WIDE = 5e-8
MIN_LAMBDA, MAX_LAMBDA = 0.9, 1.1  # lambda GC outside these is flagged (a WARN check)
ASSOCIATION_COLUMNS = ["snp", "chrom", "pos", "beta", "se", "p", "n"]


def _pfile(ctx: StepContext, step: str) -> str:
    return str(ctx.input_dirs[step] / ctx.inputs[step]["files"]["pgen"]).removesuffix(".pgen")


def _count(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line and not line.startswith("#"))


def stage_genotypes(ctx: StepContext) -> dict[str, Any]:
    """Validate the genotypes (PLINK set or VCF) and the trait, convert to a plink2 set.

    From a simulation workflow (``input:``) it reads that workflow's VCF and phenotype."""
    spec = ctx.domain_specific
    if ctx.has_input("vcf"):
        source = ctx.input_file("vcf", "vcf")
        pheno_path: Path | None = ctx.input_file("phenotype", "phenotype")
        trait = "trait"
    else:
        if not spec.get("genotypes"):
            raise InputError("domain_specific.genotypes is required (a PLINK prefix or a VCF)")
        source = Path(spec["genotypes"])
        pheno_path = Path(spec["phenotype"]) if spec.get("phenotype") else None
        trait = spec.get("trait") or "trait"
    out = ctx.out
    if geno.is_vcf(source):
        if not source.is_file():
            raise InputError(f"genotypes: {source} does not exist")
        geno.plink2(
            ctx,
            "--vcf",
            str(source),
            "--max-alleles",
            "2",
            "--set-missing-var-ids",
            "@:#",
            "--make-pgen",
            "--sort-vars",
            "--out",
            str(out / "genotypes"),
        )
        if pheno_path is None:
            raise InputError("domain_specific.phenotype is required with VCF genotypes")
    else:
        plink = geno.stage_plink(source, out)
        geno.plink2(
            ctx,
            "--bfile",
            str(plink.prefix),
            "--make-pgen",
            "--sort-vars",
            "--out",
            str(out / "genotypes"),
        )
        for ext in ("bed", "bim", "fam"):
            Path(f"{plink.prefix}.{ext}").unlink()
        loaded = _count(out / "genotypes.pvar")
        if loaded < plink.variants:
            ctx.warnings.append(
                f"plink2 left out {plink.variants - loaded} of {plink.variants} variants "
                f"(e.g. identical alleles; see {out / 'genotypes.log'})"
            )
    samples = geno.read_sample_ids(out / "genotypes.psam")
    if pheno_path is None:
        table = geno.fam_phenotype(geno.plink_member(source, "fam"))
        where = f"{source}.fam column 6"
    else:
        table = geno.read_phenotype(pheno_path, trait)
        where = str(pheno_path)
    merged, warnings = geno.match_phenotype(samples, table, str(source), where, geno.is_vcf(source))
    ctx.warnings.extend(warnings)
    ids = [c for c in ("FID", "IID") if c in merged.columns]
    pheno = merged[[*ids, "trait"]].rename(columns={ids[0]: f"#{ids[0]}"})
    pheno.to_csv(out / "phenotype.tsv", sep="\t", index=False, na_rep="NA")
    return {
        "files": {
            "pgen": "genotypes.pgen",
            "pvar": "genotypes.pvar",
            "psam": "genotypes.psam",
            "phenotype": "phenotype.tsv",
        },
        "metrics": {
            "samples": len(samples),
            "variants": _count(out / "genotypes.pvar"),
            "samples_with_phenotype": int(merged["trait"].notna().sum()),
        },
    }


def quality_control(ctx: StepContext) -> dict[str, Any]:
    """plink2 filters: minor allele frequency, per-variant and per-sample missingness, HWE.
    Allele frequencies are taken over all samples (``--nonfounders``): pedigrees in a
    ``.fam`` must not leave no founder to count."""
    cfg = ctx.config
    pfile = _pfile(ctx, "genotypes")
    try:
        geno.plink2(
            ctx,
            "--pfile",
            pfile,
            "--nonfounders",
            "--maf",
            str(cfg["maf"]),
            "--geno",
            str(cfg["geno"]),
            "--hwe",
            str(cfg["hwe"]),
            "--mind",
            str(cfg["mind"]),
            "--make-pgen",
            "--out",
            str(ctx.out / "qc"),
        )
    except ToolError as error:
        if "No samples remaining" in error.stderr_tail or "No variants remaining" in (
            error.stderr_tail
        ):
            raise SkipStep(f"nothing passes QC: {error.stderr_tail.splitlines()[-1]}") from error
        raise
    samples, variants = _count(ctx.out / "qc.psam"), _count(ctx.out / "qc.pvar")
    before = ctx.inputs["genotypes"]["metrics"]
    return {
        "files": {"pgen": "qc.pgen", "pvar": "qc.pvar", "psam": "qc.psam", "log": "qc.log"},
        "metrics": {
            "samples": samples,
            "variants": variants,
            "samples_removed": before["samples"] - samples,
            "variants_removed": before["variants"] - variants,
        },
    }


def principal_components(ctx: StepContext) -> dict[str, Any]:
    """Top principal components of the QC'd genotypes (plink2 ``--pca``; randomized above
    5,000 samples), for use as covariates against population structure."""
    count = int(ctx.config["components"])
    samples = ctx.inputs["qc"]["metrics"]["samples"]
    if samples <= count + 1:
        raise SkipStep(f"{samples} samples are too few for {count} principal components")
    approx = ["approx"] if samples > 5000 else []
    geno.plink2(
        ctx,
        "--pfile",
        _pfile(ctx, "qc"),
        "--nonfounders",
        "--pca",
        str(count),
        *approx,
        "--out",
        str(ctx.out / "pca"),
    )
    eigenval = np.loadtxt(ctx.out / "pca.eigenval", ndmin=1)
    return {
        "files": {"eigenvec": "pca.eigenvec", "eigenval": "pca.eigenval"},
        "metrics": {"components": count, "top_eigenvalue": round(float(eigenval[0]), 3)},
    }


def read_glm(path: Path) -> pd.DataFrame:
    """plink2 ``--glm`` output as the association table (snp, chrom, pos, beta, se, p, n)."""
    table = pd.read_csv(path, sep="\t", na_values=["NA", "."])
    table = table[table["TEST"] == "ADD"] if "TEST" in table.columns else table
    beta = table["BETA"] if "BETA" in table.columns else np.log(table["OR"])
    return pd.DataFrame(
        {
            "snp": table["ID"].astype(str),
            "chrom": table["#CHROM"].astype(str),
            "pos": table["POS"].astype(np.int64),
            "beta": beta.astype(float),
            "se": table["SE" if "SE" in table.columns else "LOG(OR)_SE"].astype(float),
            "p": table["P"].astype(float),
            "n": table["OBS_CT"].astype(np.int64),
        }
    ).dropna(subset=["p"])


def chi2_1df(p: float) -> float:
    """The 1-df chi-square whose upper tail is ``p`` (the square of a two-sided z)."""
    return NormalDist().inv_cdf(1.0 - min(max(p, 1e-300), 1.0) / 2.0) ** 2


def lambda_gc(p: np.ndarray) -> float:
    """Genomic inflation: median association chi-square (1 df) over its null median 0.4549.
    The chi-square falls as p rises, so its median is the chi-square of the median p."""
    return chi2_1df(float(np.median(p))) / chi2_1df(0.5)


MODEL_NAMES = {"linear": "linear model", "lmm": "LMM", "loco": "LOCO LMM"}
# what may explain a lambda GC outside [MIN_LAMBDA, MAX_LAMBDA], and what may help, by model
_INFLATED = {
    "linear": "population structure, relatedness or a polygenic trait; "
    "more PCs, model: lmm or model: loco may help",
    "lmm": "structure the kinship matrix misses, or a polygenic trait",
    "loco": "a polygenic trait (each chromosome keeps its own signal), or structure the "
    "kinship matrix misses",
}
_DEFLATED = {
    "linear": "conservative p-values: check the trait and the covariates",
    "lmm": "the tested variant is also in the kinship matrix (proximal contamination); "
    "model: loco may help",
    "loco": "conservative p-values: check the trait (e.g. its distribution)",
}


def inflation_verdict(value: float, model: str) -> dict[str, Any]:
    """The ``genomic_inflation`` check: passed when MIN_LAMBDA <= lambda GC <= MAX_LAMBDA;
    the description names the model and, when it fails, what may explain it and help."""
    label = f"lambda GC {value:.3f} ({MODEL_NAMES[model]})"
    if value > MAX_LAMBDA:
        return {
            "passed": False,
            "description": f"{label} > {MAX_LAMBDA}: inflated: {_INFLATED[model]}",
        }
    if value < MIN_LAMBDA:
        return {
            "passed": False,
            "description": f"{label} < {MIN_LAMBDA}: deflated: {_DEFLATED[model]}",
        }
    return {"passed": True, "description": f"{label} within {MIN_LAMBDA}-{MAX_LAMBDA}"}


def _glm(ctx: StepContext, pfile: str, phenotype: Path) -> tuple[pd.DataFrame, bool]:
    """plink2 ``--glm`` with the PCs as covariates when the pca step ran and the config says
    so; the table and whether PCs were used."""
    covariates: list[str] = []
    if ctx.has_input("pca") and ctx.config["pcs_as_covariates"]:
        covariates = [
            "--covar",
            str(ctx.input_file("pca", "eigenvec")),
            "--covar-variance-standardize",
        ]
    geno.plink2(
        ctx,
        "--pfile",
        pfile,
        "--pheno",
        str(phenotype),
        "--pheno-name",
        "trait",
        "--glm",
        "hide-covar",
        "allow-no-covars",
        *covariates,
        "--out",
        str(ctx.out / "glm"),
    )
    found = sorted(ctx.out.glob("glm.trait.glm.*"))
    if not found:
        raise InputError(f"plink2 --glm wrote no result for the trait (see {ctx.out}/glm.log)")
    table = read_glm(found[0])
    for path in found:
        path.unlink()
    return table, bool(covariates)


def association(ctx: StepContext) -> dict[str, Any]:
    """Per-variant association test of the trait, by ``model``:

    - ``linear``: plink2 ``--glm`` (logistic for a 1/2 trait), PCs as covariates when the pca
      step ran;
    - ``lmm``: GEMMA's LMM (Wald test) with one centred kinship matrix, no PCs;
    - ``loco``: GEMMA's LMM per chromosome, kinship from the other chromosomes, no PCs.

    Writes ``association.tsv`` (ASSOCIATION_COLUMNS, whatever the model); the
    ``genomic_inflation`` verdict is for that model's p-values."""
    model = str(ctx.config["model"])
    phenotype = ctx.input_file("genotypes", "phenotype")
    source = "qc" if ctx.has_input("qc") else "genotypes"
    pfile = _pfile(ctx, source)
    if model == "loco":
        mixed_model.check_loco(Path(f"{pfile}.pvar"), source)
    if model == "linear":
        table, with_pcs = _glm(ctx, pfile, phenotype)
        files = {"association": "association.tsv", "log": "glm.log"}
    else:
        table = mixed_model.gemma_lmm(ctx, pfile, phenotype, loco=model == "loco")
        table = table.dropna(subset=["p"])
        files, with_pcs = {"association": "association.tsv", "log": "gemma.log"}, False
    table[ASSOCIATION_COLUMNS].to_csv(ctx.out / "association.tsv", sep="\t", index=False)
    value = round(lambda_gc(table["p"].to_numpy()), 4)
    metrics: dict[str, Any] = {
        "model": model,
        "variants_tested": len(table),
        "lambda_gc": value,
        "min_p": float(table["p"].min()),
        "covariates": "PC1-PCn" if with_pcs else "none",
    }
    return {
        "files": files,
        "metrics": metrics,
        "checks": {"genomic_inflation": inflation_verdict(value, model)},
    }


def clump_by_distance(table: pd.DataFrame, threshold: float, window_bp: int) -> pd.DataFrame:
    """Independent hits: variants with p < threshold, strongest first, each dropping weaker
    ones within ``window_bp`` on its chromosome (a distance clump; no LD needed)."""
    significant = table[table["p"] < threshold].sort_values("p")
    kept: list[int] = []
    taken: dict[str, list[int]] = {}
    for index, row in significant.iterrows():
        near = taken.setdefault(row["chrom"], [])
        if all(abs(row["pos"] - pos) > window_bp for pos in near):
            kept.append(index)
            near.append(int(row["pos"]))
    return significant.loc[kept].reset_index(drop=True)


def hits(ctx: StepContext) -> dict[str, Any]:
    """Genome-wide significant loci (distance-clumped); skipped when there are none."""
    table = pd.read_csv(
        ctx.input_file("association", "association"), sep="\t", dtype={"chrom": str}
    )
    threshold = float(ctx.config["p_threshold"])
    loci = clump_by_distance(table, threshold, int(ctx.config["window_kb"]) * 1000)
    loci.to_csv(ctx.out / "hits.tsv", sep="\t", index=False)
    if loci.empty:
        ctx.warnings.append(f"no variant reaches p < {threshold:g}")
    top = table.loc[table["p"].idxmin()]
    return {
        "files": {"hits": "hits.tsv"},
        "metrics": {
            "loci": len(loci),
            "top_snp": str(top["snp"]),
            "top_chrom": str(top["chrom"]),
            "top_pos": int(top["pos"]),
            "top_p": float(top["p"]),
        },
    }


def report(ctx: StepContext) -> dict[str, Any]:
    """Manhattan and QQ plots and a markdown summary of the loci."""
    from omics_assets.science.plots import manhattan_png, qq_png

    table = pd.read_csv(
        ctx.input_file("association", "association"), sep="\t", dtype={"chrom": str}
    )
    (ctx.out / "manhattan.png").write_bytes(manhattan_png(table))
    (ctx.out / "qq.png").write_bytes(qq_png(table["p"].to_numpy()))
    loci = (
        pd.read_csv(ctx.input_file("hits", "hits"), sep="\t", dtype={"chrom": str})
        if ctx.has_input("hits")
        else clump_by_distance(table, GENOME_WIDE, 500_000)
    )
    model = MODEL_NAMES.get(ctx.inputs["association"]["metrics"].get("model", ""), "")
    lines = [
        f"# GWAS report: {len(table)} variants, lambda GC {lambda_gc(table['p'].to_numpy()):.3f}"
        + (f" ({model})" if model else ""),
        f"{len(loci)} loci at p < {GENOME_WIDE:g}"
        if not ctx.has_input("hits")
        else f"{len(loci)} loci",
        loci.head(20).to_markdown(index=False) if len(loci) else "(none)",
    ]
    (ctx.out / "report.md").write_text("\n\n".join(lines) + "\n")
    return {
        "files": {"manhattan": "manhattan.png", "qq": "qq.png", "report": "report.md"},
        "metrics": {"loci": len(loci), "variants": len(table)},
    }
