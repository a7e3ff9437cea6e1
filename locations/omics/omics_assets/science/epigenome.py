"""Bisulfite methylation: the epigenome domain's steps.

(simulate) -> coverage -> cpg_table -> differential -> dmrs -> annotate; report. Bismark
coverage files per sample (1-based CpG positions), a CpG x sample table with coverage QC,
DSS's beta-binomial test per CpG (:mod:`epigenome_dss`), CpGs merged into DMRs, the genes
they overlap or lie nearest to, and a report. Methylation is a fraction (0-1); differences
are treated - control (``contrast: [control, treated]``); positions are 1-based bp.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from omics_assets.science import epigenome_bismark as bismark
from omics_assets.science import epigenome_dss as dss
from omics_assets.science import epigenome_genes as genes
from omics_assets.science.epigenome_simulate import simulate_cohort
from omics_assets.science.specs import FilePath, NoConfig, Step, Strict
from omics_assets.science.steps import InputError, SkipStep, StepContext


class Inputs(Strict):
    """The epigenome domain's ``domain_specific`` keys."""

    samplesheet: FilePath  # TSV: sample, condition, coverage (relative to the samplesheet)
    contrast: list[str] = Field(min_length=2, max_length=2)  # [control, treated]
    annotation: FilePath  # GTF (may be gzipped) or null


class SimulateConfig(Strict):
    seed: int
    cpgs_per_chrom: int = Field(ge=2000)
    dmrs: int = Field(ge=2, description="planted DMRs, split over two chromosomes")
    samples_per_condition: int = Field(ge=1)
    coverage: float = Field(gt=0, description="mean reads per CpG")
    dispersion: float = Field(gt=0, lt=0.5, description="beta-binomial phi")
    delta: float = Field(gt=0, lt=0.9, description="methylation change of a planted DMR")


class CpgTableConfig(Strict):
    min_coverage: int = Field(ge=1, description="reads at a CpG for a sample to count")
    min_samples: int = Field(ge=1, description="samples per condition with min_coverage")


class DifferentialConfig(Strict):
    smoothing: bool
    smoothing_span: int = Field(ge=2, description="bp: the moving window of smoothing")


class DmrConfig(Strict):
    p_threshold: float = Field(gt=0, lt=1, description="a CpG is significant below it")
    delta: float = Field(ge=0, lt=1, description="minimum |mean difference| of a DMR")
    min_cpgs: int = Field(ge=1)
    min_length: int = Field(ge=1, description="bp, first to last CpG")
    max_gap: int = Field(ge=1, description="bp between significant CpGs merged")
    min_significant: float = Field(ge=0, le=1, description="share of a DMR's CpGs")


class AnnotateConfig(Strict):
    max_distance: int = Field(ge=0, description="bp: a nearest gene farther than this is none")


class ReportConfig(Strict):
    top: int = Field(ge=1, description="DMRs listed in the report")


def simulate(ctx: StepContext) -> dict[str, Any]:
    """A simulated 3 vs 3 cohort (Bismark coverage files) with planted DMRs and genes."""
    paths = simulate_cohort(ctx.out, **dict(ctx.config))
    truth = pd.read_csv(paths["truth"], sep="\t")
    return {
        "files": {"truth": "truth.tsv", "samplesheet": "samplesheet.tsv", "genes": "genes.gtf"},
        "metrics": {"planted_dmrs": len(truth), "samples": 2 * ctx.config["samples_per_condition"]},
    }


def _samplesheet(ctx: StepContext) -> Path:
    if ctx.has_input("simulate"):
        return ctx.input_file("simulate", "samplesheet")
    if not ctx.domain_specific.get("samplesheet"):
        raise InputError("domain_specific.samplesheet is required (sample, condition, coverage)")
    return Path(ctx.domain_specific["samplesheet"])


def _contrast(ctx: StepContext) -> list[str]:
    """``[control, treated]``, as text (condition labels are text, ``0`` and ``1`` too)."""
    return [str(c) for c in ctx.domain_specific["contrast"]]


def _samples(ctx: StepContext) -> pd.DataFrame:
    """The coverage step's ``samples.tsv``; sample and condition labels stay text."""
    return pd.read_csv(
        ctx.input_file("coverage", "samples"),
        sep="\t",
        dtype={"sample": str, "condition": str},
        keep_default_na=False,
    )


def coverage(ctx: StepContext) -> dict[str, Any]:
    """Bismark coverage files of the contrast's samples, read and checked (percent against
    the counts, 1-based positions, no file shifted by one base against the others)."""
    sheet = bismark.read_samplesheet(_samplesheet(ctx), _contrast(ctx))
    paths = [Path(p) for p in sheet["coverage"]]  # distinct: read_samplesheet refuses repeats
    tables = [bismark.read_coverage(p) for p in paths]
    bismark.check_shifts(dict(zip(paths, tables, strict=True)))
    long = pd.concat(
        [
            t.drop(columns="line").assign(sample=s)
            for s, t in zip(sheet["sample"], tables, strict=True)
        ],
        ignore_index=True,
    )
    long.to_parquet(ctx.out / "coverage.parquet", index=False)
    sheet = sheet.drop(columns="line").assign(
        cpgs=[len(t) for t in tables],
        median_coverage=[float(t["cov"].median()) for t in tables],
        mean_methylation=[float(t["meth"].sum() / t["cov"].sum()) for t in tables],
    )
    sheet.to_csv(ctx.out / "samples.tsv", sep="\t", index=False)
    return {
        "files": {"samples": "samples.tsv", "coverage": "coverage.parquet"},
        "metrics": {"samples": len(sheet), "cpg_calls": len(long)},
    }


def cpg_table(ctx: StepContext) -> dict[str, Any]:
    """CpGs x samples (methylated and total reads); a CpG is kept when, in each condition,
    at least ``min_samples`` samples have ``min_coverage`` reads there (counts are kept as
    they are: the model weighs low coverage itself). InputError when a condition has fewer
    samples than ``min_samples``: no CpG could pass."""
    sheet = _samples(ctx)
    min_samples = int(ctx.config["min_samples"])
    for condition in _contrast(ctx):
        count = int((sheet["condition"] == condition).sum())
        if count < min_samples:
            raise InputError(
                f"cpg_table: min_samples is {min_samples} but condition {condition!r} has "
                f"{count} sample(s): lower min_samples or add samples"
            )
    long = pd.read_parquet(ctx.input_file("coverage", "coverage"))
    wide = long.pivot_table(
        index=["chrom", "pos"], columns="sample", values=["meth", "cov"], fill_value=0
    ).sort_index()
    samples = list(sheet["sample"])
    covered = wide["cov"][samples].to_numpy() >= int(ctx.config["min_coverage"])
    keep = np.ones(len(wide), dtype=bool)
    for condition in _contrast(ctx):
        columns = (sheet["condition"] == condition).to_numpy()
        keep &= covered[:, columns].sum(axis=1) >= min_samples
    if not keep.any():
        raise SkipStep("no CpG passes coverage QC (min_coverage, min_samples)")
    kept = wide[keep]
    table = pd.DataFrame(
        {"chrom": kept.index.get_level_values(0), "pos": kept.index.get_level_values(1)}
    )
    for sample in samples:
        table[f"meth_{sample}"] = kept["meth"][sample].to_numpy(dtype=np.int64)
        table[f"cov_{sample}"] = kept["cov"][sample].to_numpy(dtype=np.int64)
    table.to_parquet(ctx.out / "cpg_table.parquet", index=False)
    counts = kept["cov"][samples].to_numpy()
    qc = sheet[["sample", "condition"]].assign(
        cpgs_covered=(counts > 0).sum(axis=0),
        median_coverage=[float(np.median(c[c > 0])) if (c > 0).any() else 0.0 for c in counts.T],
    )
    qc.to_csv(ctx.out / "qc.tsv", sep="\t", index=False)
    positive = counts[counts > 0]
    return {
        "files": {"qc": "qc.tsv", "cpg_table": "cpg_table.parquet"},
        "metrics": {
            "cpgs_total": len(wide),
            "cpgs_kept": int(keep.sum()),
            "median_coverage": float(np.median(positive)),
        },
    }


def _matrices(ctx: StepContext) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The CpG table and, per contrast condition, its (meth, cov) matrices."""
    sheet = _samples(ctx)
    table = pd.read_parquet(ctx.input_file("cpg_table", "cpg_table"))
    groups = {}
    for condition in _contrast(ctx):
        names = sheet.loc[sheet["condition"] == condition, "sample"]
        groups[condition] = (
            table[[f"meth_{s}" for s in names]].to_numpy(),
            table[[f"cov_{s}" for s in names]].to_numpy(),
        )
    return table, groups


def differential(ctx: StepContext) -> dict[str, Any]:
    """DSS's per-CpG beta-binomial Wald test with shrunk dispersions (optionally smoothed)."""
    table, groups = _matrices(ctx)
    control, treated = (groups[c] for c in _contrast(ctx))
    smoothing, span = bool(ctx.config["smoothing"]), int(ctx.config["smoothing_span"])
    result = dss.dml_test(
        table["chrom"], table["pos"].to_numpy(), control, treated, smoothing, span
    )
    result.to_parquet(ctx.out / "dml.parquet", index=False)
    return {
        "files": {"dml": "dml.parquet"},
        "metrics": {
            "cpgs_tested": len(result),
            "q_below_0.05": int((result["q"] < 0.05).sum()),
            "median_phi_control": float(result["phi_control"].median()),
            "median_phi_treated": float(result["phi_treated"].median()),
            "smoothing": smoothing,
            "smoothing_span_bp": span if smoothing else None,
        },
    }


DMR_PARAMETERS = ("p_threshold", "delta", "min_cpgs", "min_length", "max_gap", "min_significant")


def dmrs(ctx: StepContext) -> dict[str, Any]:
    """Significant CpGs merged into DMRs (``chrom, start, end, n_cpgs, mean_diff, p``); its
    parameters are among its metrics (the report states them)."""
    dml = pd.read_parquet(ctx.input_file("differential", "dml"))
    parameters = {name: ctx.config[name] for name in DMR_PARAMETERS}
    regions = dss.call_dmrs(dml, **parameters)
    regions.to_csv(ctx.out / "dmrs.tsv", sep="\t", index=False, float_format="%.6g")
    return {
        "files": {"dmrs": "dmrs.tsv"},
        "metrics": {
            "dmrs": len(regions),
            "hypermethylated": int((regions["mean_diff"] > 0).sum()),
            "hypomethylated": int((regions["mean_diff"] < 0).sum()),
            "dmr_bp": int(regions["length"].sum()),
            **parameters,
        },
    }


def annotate(ctx: StepContext) -> dict[str, Any]:
    """The genes each DMR overlaps, and its nearest gene within ``max_distance`` bp."""
    path = ctx.domain_specific.get("annotation")
    if not path and ctx.has_input("simulate"):
        path = ctx.input_file("simulate", "genes")
    if not path:
        raise SkipStep("no annotation (domain_specific.annotation is null)")
    found = genes.read_genes(Path(path))
    regions = pd.read_csv(ctx.input_file("dmrs", "dmrs"), sep="\t", dtype={"chrom": str})
    annotated = genes.annotate_regions(regions, found, int(ctx.config["max_distance"]))
    annotated.to_csv(ctx.out / "dmr_genes.tsv", sep="\t", index=False, float_format="%.6g")
    return {
        "files": {"dmr_genes": "dmr_genes.tsv"},
        "metrics": {
            "genes": len(found),
            "dmrs_in_genes": int((annotated["overlapping_genes"] != "").sum()),
            "dmrs_near_a_gene": int((annotated["nearest_gene"] != "").sum()),
        },
    }


def _parameters(ctx: StepContext) -> str:
    """The test's and the DMR caller's parameters, as their steps recorded them."""
    test, called = ctx.inputs["differential"]["metrics"], ctx.inputs["dmrs"]["metrics"]
    smoothing = (
        f"smoothed over a {test['smoothing_span_bp']} bp moving window"
        if test["smoothing"]
        else "not smoothed"
    )
    return (
        f"Per-CpG test: DSS's beta-binomial Wald test, methylation {smoothing}. DMRs: "
        f"significant CpGs (p < {called['p_threshold']:g}) of one direction at most "
        f"{called['max_gap']} bp apart merged; kept with >= {called['min_cpgs']} CpGs, "
        f">= {called['min_length']} bp, >= {called['min_significant']:g} of their CpGs "
        f"significant and |mean_diff| >= {called['delta']:g}."
    )


def report(ctx: StepContext) -> dict[str, Any]:
    """Methylation distributions per sample, a volcano plot, the parameters and the top
    DMRs."""
    from omics_assets.science.epigenome_report import distributions_png, volcano_png

    table = pd.read_parquet(ctx.input_file("cpg_table", "cpg_table"))
    qc = pd.read_csv(
        ctx.input_file("cpg_table", "qc"),
        sep="\t",
        dtype={"sample": str, "condition": str},
        keep_default_na=False,
    )
    dml = pd.read_parquet(ctx.input_file("differential", "dml"))
    regions = pd.read_csv(ctx.input_file("dmrs", "dmrs"), sep="\t", dtype={"chrom": str})
    (ctx.out / "methylation.png").write_bytes(distributions_png(table, list(qc["sample"])))
    (ctx.out / "volcano.png").write_bytes(volcano_png(dml, regions))
    top = regions.reindex(regions["p"].sort_values().index).head(int(ctx.config["top"]))
    lines = [
        "# Methylation report",
        f"{len(dml)} CpGs tested, {len(regions)} DMRs "
        f"({int((regions['mean_diff'] > 0).sum())} gaining methylation in the treated).",
        _parameters(ctx),
        "## Samples (CpGs kept after coverage QC)",
        qc.to_markdown(index=False, floatfmt=".1f"),
        "## Top DMRs (mean_diff: treated - control methylation)",
        top.to_markdown(index=False, floatfmt=".3g") if len(top) else "No DMR.",
    ]
    (ctx.out / "report.md").write_text("\n\n".join(lines) + "\n")
    files = {"report": "report.md", "distributions": "methylation.png", "volcano": "volcano.png"}
    return {"files": files, "metrics": {"dmrs": len(regions)}}


STEPS: tuple[Step, ...] = (
    Step("simulate", simulate, (), SimulateConfig),
    Step("coverage", coverage, ("simulate",), NoConfig, required=True),
    Step("cpg_table", cpg_table, ("coverage",), CpgTableConfig),
    Step("differential", differential, ("coverage", "cpg_table"), DifferentialConfig),
    Step(
        "dmrs",
        dmrs,
        ("differential",),
        DmrConfig,
        export=("chrom", "start", "end", "n_cpgs", "mean_diff", "p"),
    ),
    Step("annotate", annotate, ("dmrs", "simulate"), AnnotateConfig),
    Step("report", report, ("cpg_table", "differential", "dmrs"), ReportConfig),
)
