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


def coverage(ctx: StepContext) -> dict[str, Any]:
    """Bismark coverage files of the contrast's samples, read and checked (percent against
    the counts, 1-based positions, no file shifted by one base against the others)."""
    sheet = bismark.read_samplesheet(_samplesheet(ctx), list(ctx.domain_specific["contrast"]))
    tables = {Path(p): bismark.read_coverage(Path(p)) for p in sheet["coverage"]}
    bismark.check_shifts(tables)
    long = pd.concat(
        [
            t.drop(columns="line").assign(sample=s)
            for s, t in zip(sheet["sample"], tables.values(), strict=True)
        ],
        ignore_index=True,
    )
    long.to_parquet(ctx.out / "coverage.parquet", index=False)
    sheet["cpgs"] = [len(t) for t in tables.values()]
    sheet["median_coverage"] = [float(t["cov"].median()) for t in tables.values()]
    sheet["mean_methylation"] = [float(t["meth"].sum() / t["cov"].sum()) for t in tables.values()]
    sheet.to_csv(ctx.out / "samples.tsv", sep="\t", index=False)
    return {
        "files": {"samples": "samples.tsv", "coverage": "coverage.parquet"},
        "metrics": {"samples": len(sheet), "cpg_calls": len(long)},
    }


def cpg_table(ctx: StepContext) -> dict[str, Any]:
    """CpGs x samples (methylated and total reads); a CpG is kept when, in each condition,
    at least ``min_samples`` samples have ``min_coverage`` reads there (counts are kept as
    they are: the model weighs low coverage itself)."""
    sheet = pd.read_csv(ctx.input_file("coverage", "samples"), sep="\t", dtype={"sample": str})
    long = pd.read_parquet(ctx.input_file("coverage", "coverage"))
    wide = long.pivot_table(
        index=["chrom", "pos"], columns="sample", values=["meth", "cov"], fill_value=0
    ).sort_index()
    samples = list(sheet["sample"])
    covered = wide["cov"][samples].to_numpy() >= int(ctx.config["min_coverage"])
    keep = np.ones(len(wide), dtype=bool)
    for condition in ctx.domain_specific["contrast"]:
        columns = (sheet["condition"] == condition).to_numpy()
        keep &= covered[:, columns].sum(axis=1) >= int(ctx.config["min_samples"])
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
    sheet = pd.read_csv(ctx.input_file("coverage", "samples"), sep="\t", dtype={"sample": str})
    table = pd.read_parquet(ctx.input_file("cpg_table", "cpg_table"))
    groups = {}
    for condition in ctx.domain_specific["contrast"]:
        names = sheet.loc[sheet["condition"] == condition, "sample"]
        groups[condition] = (
            table[[f"meth_{s}" for s in names]].to_numpy(),
            table[[f"cov_{s}" for s in names]].to_numpy(),
        )
    return table, groups


def differential(ctx: StepContext) -> dict[str, Any]:
    """DSS's per-CpG beta-binomial Wald test with shrunk dispersions (optionally smoothed)."""
    table, groups = _matrices(ctx)
    control, treated = (groups[c] for c in ctx.domain_specific["contrast"])
    result = dss.dml_test(
        table["chrom"],
        table["pos"].to_numpy(),
        control,
        treated,
        bool(ctx.config["smoothing"]),
        int(ctx.config["smoothing_span"]),
    )
    result.to_parquet(ctx.out / "dml.parquet", index=False)
    return {
        "files": {"dml": "dml.parquet"},
        "metrics": {
            "cpgs_tested": len(result),
            "q_below_0.05": int((result["q"] < 0.05).sum()),
            "median_phi_control": float(result["phi_control"].median()),
            "median_phi_treated": float(result["phi_treated"].median()),
        },
    }


def dmrs(ctx: StepContext) -> dict[str, Any]:
    """Significant CpGs merged into DMRs (``chrom, start, end, n_cpgs, mean_diff, p``)."""
    dml = pd.read_parquet(ctx.input_file("differential", "dml"))
    cfg = ctx.config
    regions = dss.call_dmrs(
        dml,
        float(cfg["p_threshold"]),
        float(cfg["delta"]),
        int(cfg["min_cpgs"]),
        int(cfg["min_length"]),
        int(cfg["max_gap"]),
        float(cfg["min_significant"]),
    )
    regions.to_csv(ctx.out / "dmrs.tsv", sep="\t", index=False, float_format="%.6g")
    return {
        "files": {"dmrs": "dmrs.tsv"},
        "metrics": {
            "dmrs": len(regions),
            "hypermethylated": int((regions["mean_diff"] > 0).sum()),
            "hypomethylated": int((regions["mean_diff"] < 0).sum()),
            "dmr_bp": int(regions["length"].sum()),
        },
    }


def read_genes(path: Path) -> pd.DataFrame:
    """Genes of a GTF (``gene`` lines, else the span of each gene_id's lines): ``chrom,
    start, end, strand, gene_id, gene_name`` (1-based inclusive)."""
    try:
        gtf = pd.read_csv(
            path, sep="\t", comment="#", header=None, dtype={0: str}, usecols=range(9)
        )
    except (ValueError, pd.errors.ParserError) as error:
        raise InputError(
            f"annotation {path}: not a GTF (9 tab-separated columns): {error}"
        ) from None
    gtf.columns = ["chrom", "source", "feature", "start", "end", "score", "strand", "frame", "attr"]
    gtf["gene_id"] = gtf["attr"].str.extract(r'gene_id "([^"]+)"', expand=False)
    if gtf["gene_id"].isna().all():
        raise InputError(f"annotation {path}: no gene_id attribute: not a GTF")
    names = gtf["attr"].str.extract(r'gene_name "([^"]+)"', expand=False)
    gtf["gene_name"] = names.fillna(gtf["gene_id"])
    if (gtf["feature"] == "gene").any():
        gtf = gtf[gtf["feature"] == "gene"]
    genes = (
        gtf.dropna(subset=["gene_id"])
        .groupby("gene_id", as_index=False)
        .agg(
            chrom=("chrom", "first"),
            start=("start", "min"),
            end=("end", "max"),
            strand=("strand", "first"),
            gene_name=("gene_name", "first"),
        )
    )
    return genes[["chrom", "start", "end", "strand", "gene_id", "gene_name"]]


def annotate(ctx: StepContext) -> dict[str, Any]:
    """The genes each DMR overlaps, and its nearest gene within ``max_distance`` bp."""
    path = ctx.domain_specific.get("annotation")
    if not path and ctx.has_input("simulate"):
        path = ctx.input_file("simulate", "genes")
    if not path:
        raise SkipStep("no annotation (domain_specific.annotation is null)")
    genes = read_genes(Path(path))
    regions = pd.read_csv(ctx.input_file("dmrs", "dmrs"), sep="\t", dtype={"chrom": str})
    overlapping, nearest, distance = [], [], []
    for row in regions.itertuples():
        on = genes[genes["chrom"] == row.chrom]
        gap = np.maximum(0, np.maximum(on["start"] - row.end, row.start - on["end"]))
        overlapping.append(",".join(on.loc[gap.to_numpy() == 0, "gene_name"]))
        best = int(np.argmin(gap)) if len(on) else -1
        close = best >= 0 and gap.iloc[best] <= int(ctx.config["max_distance"])
        nearest.append(on["gene_name"].iloc[best] if close else "")
        distance.append(int(gap.iloc[best]) if close else None)
    annotated = regions.assign(
        overlapping_genes=overlapping, nearest_gene=nearest, distance=distance
    )
    annotated.to_csv(ctx.out / "dmr_genes.tsv", sep="\t", index=False, float_format="%.6g")
    return {
        "files": {"dmr_genes": "dmr_genes.tsv"},
        "metrics": {
            "genes": len(genes),
            "dmrs_in_genes": int(sum(bool(o) for o in overlapping)),
            "dmrs_near_a_gene": int(sum(bool(n) for n in nearest)),
        },
    }


def report(ctx: StepContext) -> dict[str, Any]:
    """Methylation distributions per sample, a volcano plot and the top DMRs."""
    from omics_assets.science.epigenome_report import distributions_png, volcano_png

    table = pd.read_parquet(ctx.input_file("cpg_table", "cpg_table"))
    qc = pd.read_csv(ctx.input_file("cpg_table", "qc"), sep="\t")
    dml = pd.read_parquet(ctx.input_file("differential", "dml"))
    regions = pd.read_csv(ctx.input_file("dmrs", "dmrs"), sep="\t")
    (ctx.out / "methylation.png").write_bytes(distributions_png(table, list(qc["sample"])))
    (ctx.out / "volcano.png").write_bytes(volcano_png(dml, regions))
    top = regions.reindex(regions["p"].sort_values().index).head(int(ctx.config["top"]))
    lines = [
        "# Methylation report",
        f"{len(dml)} CpGs tested, {len(regions)} DMRs "
        f"({int((regions['mean_diff'] > 0).sum())} gaining methylation in the treated).",
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
