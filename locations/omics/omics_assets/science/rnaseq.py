"""RNA-seq: the rnaseq domain's steps.

reference -> samplesheet -> (simulate_reads) -> index -> quantify -> gene_counts ->
differential_expression -> report. Counts are read pairs (or reads, single-end); fold changes
are log2 (treatment over the reference condition); TPM as the quantifier reports it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omics_assets.science import reads
from omics_assets.science.steps import InputError, SkipStep, StepContext


def reference(ctx: StepContext) -> dict[str, Any]:
    """The transcripts (validated FASTA, written plain) and the transcript-to-gene map."""
    spec = ctx.domain_specific
    if not spec.get("transcripts"):
        raise InputError("domain_specific.transcripts is required (a transcript FASTA)")
    sequences = reads.read_fasta(Path(spec["transcripts"]))
    with (ctx.out / "transcripts.fa").open("w") as handle:
        for name, sequence in sequences.items():
            handle.write(f">{name}\n{sequence}\n")
    if spec.get("annotation"):
        genes = reads.read_gene_map(Path(spec["annotation"]))
        unknown = sorted(set(sequences) - set(genes["transcript"]))
        if unknown:
            raise InputError(
                f"annotation: {spec['annotation']} maps no gene for "
                f"{len(unknown)} transcripts (e.g. {unknown[0]})"
            )
        genes = genes[genes["transcript"].isin(set(sequences))]
    else:
        ctx.warnings.append("no annotation: each transcript counts as its own gene")
        genes = pd.DataFrame(
            {"transcript": list(sequences), "gene": list(sequences), "gene_name": list(sequences)}
        )
    genes.to_csv(ctx.out / "tx2gene.tsv", sep="\t", index=False)
    return {
        "files": {"transcripts": "transcripts.fa", "tx2gene": "tx2gene.tsv"},
        "metrics": {"transcripts": len(sequences), "genes": int(genes["gene"].nunique())},
    }


def samplesheet(ctx: StepContext) -> dict[str, Any]:
    """The validated samplesheet. FASTQ columns are required only when reads are quantified
    and not simulated; differential expression needs the reference condition present."""
    if not ctx.domain_specific.get("samplesheet"):
        raise InputError("domain_specific.samplesheet is required (sample, condition, ...)")
    path = Path(ctx.domain_specific["samplesheet"])
    need_reads = "quantify" in ctx.enabled_steps and "simulate_reads" not in ctx.enabled_steps
    table = reads.read_samplesheet(path, need_reads)
    level = ctx.domain_specific.get("reference_level")
    if "differential_expression" in ctx.enabled_steps and level not in set(table["condition"]):
        raise InputError(
            f"samplesheet: {path}: reference_level {level!r} is not a condition "
            f"(conditions: {', '.join(sorted(set(table['condition'])))})"
        )
    table.to_csv(ctx.out / "samplesheet.tsv", sep="\t", index=False)
    per_condition = table["condition"].value_counts().to_dict()
    return {
        "files": {"samplesheet": "samplesheet.tsv"},
        "metrics": {"samples": len(table), "per_condition": json.dumps(per_condition)},
    }


def _sheet(ctx: StepContext) -> tuple[pd.DataFrame, Path]:
    """The samplesheet to quantify (simulated reads when simulated) and its folder."""
    source = "simulate_reads" if ctx.has_input("simulate_reads") else "samplesheet"
    path = ctx.input_file(source, "samplesheet")
    return pd.read_csv(path, sep="\t", dtype=str), path.parent


def build_index(ctx: StepContext) -> dict[str, Any]:
    """The quantifier's index of the transcripts (k-mer length ``kmer``)."""
    tool = ctx.domain_specific.get("quantifier", "kallisto")
    program = ctx.program(tool)
    fasta = str(ctx.input_file("reference", "transcripts"))
    kmer = str(ctx.config["kmer"])
    if tool == "kallisto":
        ctx.run([program, "index", "-k", kmer, "-i", str(ctx.out / "index.kidx"), fasta])
        return {"files": {"index": "index.kidx"}, "metrics": {"quantifier": tool}}
    ctx.run(
        [
            program,
            "index",
            "-t",
            fasta,
            "-i",
            str(ctx.out / "salmon_index"),
            "-k",
            kmer,
            "-p",
            str(ctx.threads),
        ]
    )
    return {"files": {"index": "salmon_index"}, "metrics": {"quantifier": tool}}


def _quantify_sample(
    ctx: StepContext, tool: str, index: Path, base: Path, row: pd.Series
) -> pd.DataFrame:
    """One sample's transcript counts, TPM and mapping rate (percent of fragments); FASTQ
    paths are relative to ``base`` (the samplesheet's folder) unless absolute."""
    fastqs = [base / row[c] for c in reads.READ_COLUMNS if isinstance(row.get(c), str)]
    for fastq in fastqs:
        reads.check_fastq(fastq)
    out = ctx.out / "samples" / row["sample"]
    out.mkdir(parents=True)
    program = ctx.program(tool)
    threads = str(ctx.threads)
    if tool == "kallisto":
        single = (
            [
                "--single",
                "-l",
                str(ctx.config["fragment_mean"]),
                "-s",
                str(ctx.config["fragment_sd"]),
            ]
            if len(fastqs) == 1
            else []
        )
        ctx.run(
            [
                program,
                "quant",
                "-i",
                str(index),
                "-o",
                str(out),
                "-t",
                threads,
                *single,
                *map(str, fastqs),
            ]
        )
        table = pd.read_csv(out / "abundance.tsv", sep="\t")
        rate = json.loads((out / "run_info.json").read_text())["p_pseudoaligned"]
        counts = table.set_index("target_id")[["est_counts", "tpm"]]
    else:
        libraries = (
            ["-1", str(fastqs[0]), "-2", str(fastqs[1])]
            if len(fastqs) == 2
            else ["-r", str(fastqs[0])]
        )
        ctx.run(
            [
                program,
                "quant",
                "-i",
                str(index),
                "-l",
                "A",
                *libraries,
                "-o",
                str(out),
                "-p",
                threads,
                "--validateMappings",
            ]
        )
        table = pd.read_csv(out / "quant.sf", sep="\t")
        rate = json.loads((out / "aux_info" / "meta_info.json").read_text())["percent_mapped"]
        counts = table.set_index("Name")[["NumReads", "TPM"]]
    counts.columns = ["count", "tpm"]
    return counts.assign(sample=row["sample"], mapping_rate=float(rate))


def quantify(ctx: StepContext) -> dict[str, Any]:
    """Transcript abundances of every sample (kallisto or salmon, as indexed)."""
    tool = ctx.inputs["index"]["metrics"]["quantifier"]
    ctx.program(tool)  # installed, and its version recorded, before any sample is read
    index = ctx.input_file("index", "index")
    sheet, base = _sheet(ctx)
    per_sample = [_quantify_sample(ctx, tool, index, base, row) for _, row in sheet.iterrows()]
    long = pd.concat(per_sample).rename_axis("transcript").reset_index()
    counts = long.pivot(index="transcript", columns="sample", values="count")
    tpm = long.pivot(index="transcript", columns="sample", values="tpm")
    rates = long.groupby("sample", sort=False)["mapping_rate"].first()
    counts.to_csv(ctx.out / "transcript_counts.tsv", sep="\t")
    tpm.to_csv(ctx.out / "transcript_tpm.tsv", sep="\t")
    rates.rename("mapping_rate_percent").to_csv(ctx.out / "mapping_rates.tsv", sep="\t")
    shutil.rmtree(ctx.out / "samples")
    floor = float(ctx.config["min_mapping_rate"])
    low = rates[rates < floor]
    for sample, rate in low.items():
        ctx.warnings.append(f"sample {sample}: only {rate:.1f} % of fragments mapped")
    verdict = (
        (
            f"{len(low)} of {len(rates)} samples map under {floor:g} %: "
            + ", ".join(f"{s} {r:.1f} %" for s, r in low.items())
        )
        if len(low)
        else (f"every sample maps >= {floor:g} % (lowest {rates.min():.1f} %)")
    )
    return {
        "files": {
            "counts": "transcript_counts.tsv",
            "tpm": "transcript_tpm.tsv",
            "mapping_rates": "mapping_rates.tsv",
        },
        "metrics": {
            "samples": len(rates),
            "transcripts": len(counts),
            "mean_mapping_rate": round(float(rates.mean()), 2),
        },
        "checks": {"mapping_rate": {"passed": low.empty, "description": verdict}},
    }


def gene_counts(ctx: StepContext) -> dict[str, Any]:
    """Transcript counts summed per gene and rounded (DESeq2 takes integers)."""
    counts = pd.read_csv(ctx.input_file("quantify", "counts"), sep="\t", index_col=0)
    genes = pd.read_csv(ctx.input_file("reference", "tx2gene"), sep="\t", index_col=0)
    table = counts.groupby(genes["gene"].reindex(counts.index)).sum().round().astype(np.int64)
    table.index.name = "gene"
    table.to_csv(ctx.out / "gene_counts.tsv", sep="\t")
    return {
        "files": {"counts": "gene_counts.tsv"},
        "metrics": {"genes": len(table), "total_count": int(table.to_numpy().sum())},
    }


def read_count_matrix(path: Path) -> pd.DataFrame:
    """A gene x sample count matrix (TSV, first column the gene id; may be gzipped)."""
    if not path.is_file():
        raise InputError(f"counts: {path} does not exist")
    try:
        table = pd.read_csv(path, sep="\t", index_col=0)
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as error:
        raise InputError(f"counts: {path} is not a TSV count matrix: {error}") from error
    bad = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if bad or table.empty or (table.to_numpy() < 0).any():
        raise InputError(
            f"counts: {path}: every sample column must hold counts >= 0 "
            f"(not: {', '.join(map(str, bad)) or 'negative or empty'})"
        )
    return table


def differential_expression(ctx: StepContext) -> dict[str, Any]:
    """DESeq2 (pydeseq2) on gene counts: treatment vs the reference condition, Wald test,
    Benjamini-Hochberg ``padj``. Genes with fewer than ``min_count`` reads in all are left
    out. Skipped when a condition has fewer than two samples (no dispersion estimate)."""
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    if ctx.has_input("gene_counts"):
        counts = pd.read_csv(ctx.input_file("gene_counts", "counts"), sep="\t", index_col=0)
    elif ctx.domain_specific.get("counts"):
        counts = read_count_matrix(Path(ctx.domain_specific["counts"]))
    else:
        raise InputError("differential_expression needs gene_counts or domain_specific.counts")
    sheet = pd.read_csv(ctx.input_file("samplesheet", "samplesheet"), sep="\t", dtype=str)
    missing = sorted(set(sheet["sample"]) - set(counts.columns))
    if missing:
        raise InputError(
            f"counts have no column for samples {', '.join(missing)} "
            f"(columns: {', '.join(map(str, counts.columns))})"
        )
    level = ctx.domain_specific["reference_level"]
    groups = sheet.groupby("condition")["sample"].count()
    if (groups < 2).any() or len(groups) < 2:
        raise SkipStep(f"DESeq2 needs two conditions with >= 2 samples each: {groups.to_dict()}")
    treatment = ctx.config.get("treatment") or next(c for c in groups.index if c != level)
    counts = counts[sheet["sample"]]
    counts = counts[counts.sum(axis=1) >= int(ctx.config["min_count"])]
    metadata = pd.DataFrame({"condition": sheet["condition"].to_numpy()}, index=sheet["sample"])
    inference = DefaultInference(n_cpus=ctx.threads)
    dds = DeseqDataSet(
        counts=counts.T, metadata=metadata, design="~condition", inference=inference, quiet=True
    )
    dds.deseq2()
    test = DeseqStats(
        dds,
        contrast=["condition", treatment, level],
        inference=inference,
        alpha=float(ctx.config["alpha"]),
        quiet=True,
    )
    test.summary()
    results = test.results_df.rename_axis("gene").reset_index()
    results.to_csv(ctx.out / "de_results.tsv", sep="\t", index=False)
    significant = results["padj"] < float(ctx.config["alpha"])
    return {
        "files": {"results": "de_results.tsv"},
        "metrics": {
            "genes_tested": len(results),
            "significant": int(significant.sum()),
            "up": int((significant & (results["log2FoldChange"] > 0)).sum()),
            "down": int((significant & (results["log2FoldChange"] < 0)).sum()),
            "contrast": f"{treatment} vs {level}",
        },
    }


def report(ctx: StepContext) -> dict[str, Any]:
    """MA and volcano plots, mapping rates and the top genes, as markdown and PNG."""
    from omics_assets.science.plots import ma_volcano_png

    files: dict[str, str] = {}
    lines = ["# RNA-seq report"]
    if ctx.has_input("quantify"):
        rates = pd.read_csv(ctx.input_file("quantify", "mapping_rates"), sep="\t")
        lines += ["## Mapping rates (%)", rates.to_markdown(index=False, floatfmt=".1f")]
    if ctx.has_input("differential_expression"):
        results = pd.read_csv(ctx.input_file("differential_expression", "results"), sep="\t")
        alpha = float(ctx.config["alpha"])
        (ctx.out / "ma_volcano.png").write_bytes(ma_volcano_png(results.dropna(), alpha))
        files["plot"] = "ma_volcano.png"
        top = results.dropna(subset=["padj"]).sort_values("padj").head(15)
        lines += ["## Top genes", top.to_markdown(index=False, floatfmt=".3g")]
    if len(lines) == 1:
        raise SkipStep("nothing to report: neither quantify nor differential_expression ran")
    (ctx.out / "report.md").write_text("\n\n".join(lines) + "\n")
    files["report"] = "report.md"
    return {"files": files, "metrics": {"sections": len(lines) // 2}}
