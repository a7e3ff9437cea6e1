"""Reads to analysis-ready BAMs: alignment with read groups (``bwa mem`` or ``bowtie2``),
then ``samtools`` fixmate, sort, markdup, index, flagstat, and depth in windows along the
genome. Rates are percent; depths are reads per base (duplicates, secondary and unmapped
reads not counted, as ``samtools bedcov`` counts by default)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from omics_assets.science import dna_reference
from omics_assets.science.steps import StepContext

INDEX_PREFIX = "reference"
STATS_COLUMNS = ["sample", "read_pairs", "mapping_rate", "duplicate_rate", "mean_depth"]


def _align_sample(ctx: StepContext, aligner: str, row: pd.Series) -> Path:
    """One sample's pairs aligned (SAM), then mate fields filled by ``samtools fixmate -m``
    (name-grouped BAM, as both aligners write mates together). The SAM is a temporary file,
    deleted as soon as fixmate has read it (one sample's at a time): ``ctx.run`` runs one
    tool, without a pipe between two (on lambda's demo reads: SAM 6.6 MB, BAM 3.2 MB)."""
    sample = row["sample"]
    sam = ctx.out / f"{sample}.sam"
    prefix = str(ctx.input_dirs["index"] / ctx.inputs["index"]["files"]["index"] / INDEX_PREFIX)
    threads = str(ctx.threads)
    if aligner == "bwa":
        group = f"@RG\\tID:{sample}\\tSM:{sample}\\tLB:{sample}\\tPL:ILLUMINA"
        argv = [ctx.program("bwa"), "mem", "-t", threads, "-R", group, "-o", str(sam), prefix]
        ctx.run([*argv, row["fastq_1"], row["fastq_2"]])
    else:
        ctx.run(
            [
                ctx.program("bowtie2"),
                "-p",
                threads,
                "--seed",
                "1",
                "--rg-id",
                sample,
                "--rg",
                f"SM:{sample}",
                "--rg",
                f"LB:{sample}",
                "--rg",
                "PL:ILLUMINA",
                "-x",
                prefix,
                "-1",
                row["fastq_1"],
                "-2",
                row["fastq_2"],
                "-S",
                str(sam),
            ]
        )
    bam = ctx.out / f"{sample}.bam"
    samtools = ctx.program("samtools")
    ctx.run([samtools, "fixmate", "-m", "-@", threads, "-O", "bam,level=1", str(sam), str(bam)])
    sam.unlink()
    return bam


def align(ctx: StepContext) -> dict[str, Any]:
    """Each sample's read pairs aligned to the reference with its read group (ID, SM, LB =
    the sample), mate information filled in for duplicate marking (``alignments.tsv``:
    sample, bam)."""
    aligner = ctx.inputs["index"]["metrics"]["aligner"]
    sheet = pd.read_csv(ctx.input_file("reads", "reads"), sep="\t", dtype={"sample": str})
    rows = [(r["sample"], _align_sample(ctx, aligner, r).name) for _, r in sheet.iterrows()]
    pd.DataFrame(rows, columns=["sample", "bam"]).to_csv(
        ctx.out / "alignments.tsv", sep="\t", index=False
    )
    return {
        "files": {"alignments": "alignments.tsv", **{f"{s}.bam": bam for s, bam in rows}},
        "metrics": {"aligner": aligner, "samples": len(rows)},
    }


def _flagstat(ctx: StepContext, bam: Path) -> dict[str, float]:
    """Primary reads, their mapping rate and the duplicate rate of the mapped ones (%)."""
    result = ctx.run([ctx.program("samtools"), "flagstat", "-O", "json", str(bam)])
    passed = json.loads(result.stdout)["QC-passed reads"]
    primary, mapped = passed["primary"], passed["primary mapped"]
    return {
        "reads": primary,
        "mapping_rate": 100.0 * mapped / primary if primary else 0.0,
        "duplicate_rate": 100.0 * passed["primary duplicates"] / mapped if mapped else 0.0,
    }


def _windows(fai: Path, count: int) -> pd.DataFrame:
    """About ``count`` equal windows over the genome (at least 100 bp, one per short
    sequence): chrom, start (0-based), end."""
    lengths = pd.read_csv(fai, sep="\t", header=None, usecols=[1])
    return dna_reference.genome_windows(fai, max(100, math.ceil(int(lengths[1].sum()) / count)))


def _finish_sample(ctx: StepContext, sample: str, bam: Path) -> Path:
    """Coordinate-sorted, duplicates marked (flagged, not removed) and indexed:
    ``<sample>.bam``."""
    samtools, threads = ctx.program("samtools"), str(ctx.threads)
    ordered, final = ctx.out / f"{sample}.sorted.bam", ctx.out / f"{sample}.bam"
    temp = str(ctx.out / f"{sample}.tmp")
    ctx.run([samtools, "sort", "-@", threads, "-T", temp, "-o", str(ordered), str(bam)])
    ctx.run([samtools, "markdup", "-@", threads, "-T", temp, str(ordered), str(final)])
    ordered.unlink()
    ctx.run([samtools, "index", str(final)])
    return final


def bam(ctx: StepContext) -> dict[str, Any]:
    """Sorted, duplicate-marked, indexed BAMs; per sample the mapping rate (% of primary
    reads), duplicate rate (% of mapped) and mean depth (``bam_stats.tsv``), and the depth in
    windows along the genome (``depth_windows.tsv``: chrom, start, end, one column of mean
    depth per sample). Reads that do not match the reference are not an error: the
    ``mapping_rate`` check warns."""
    aligned = pd.read_csv(ctx.input_file("align", "alignments"), sep="\t", dtype=str)
    samples, bams, stats = [], [], []
    for sample, name in aligned.itertuples(index=False):
        final = _finish_sample(ctx, sample, ctx.input_dirs["align"] / name)
        samples.append(sample)
        bams.append(final)
        stats.append({"sample": sample, **_flagstat(ctx, final)})
    windows = _windows(ctx.input_file("reference", "fai"), int(ctx.config["depth_windows"]))
    windows.to_csv(ctx.out / "windows.bed", sep="\t", index=False, header=False)
    result = ctx.run(
        [ctx.program("samtools"), "bedcov", "-j", str(ctx.out / "windows.bed"), *map(str, bams)]
    )
    (ctx.out / "windows.bed").unlink()
    sums = pd.read_csv(io.StringIO(result.stdout), sep="\t", header=None).iloc[:, 3:]
    width = (windows["end"] - windows["start"]).to_numpy()
    depth = windows.assign(**{s: sums.iloc[:, i] / width for i, s in enumerate(samples)})
    depth.to_csv(ctx.out / "depth_windows.tsv", sep="\t", index=False, float_format="%.3f")
    table = pd.DataFrame(stats).rename(columns={"reads": "read_pairs"})
    table["read_pairs"] //= 2
    table["mean_depth"] = [sums.iloc[:, i].sum() / width.sum() for i in range(len(samples))]
    table[STATS_COLUMNS].to_csv(
        ctx.out / "bam_stats.tsv", sep="\t", index=False, float_format="%.4g"
    )
    floor = float(ctx.config["min_mapping_rate"])
    low = table[table["mapping_rate"] < floor]
    for row in low.itertuples():
        ctx.warnings.append(
            f"sample {row.sample}: only {row.mapping_rate:.1f} % of reads map to the reference "
            "(reads of another organism, contamination, or the wrong reference?)"
        )
    verdict = (
        f"{len(low)} of {len(table)} samples map under {floor:g} %: "
        + ", ".join(f"{r.sample} {r.mapping_rate:.1f} %" for r in low.itertuples())
        if len(low)
        else f"every sample maps >= {floor:g} % (lowest {table['mapping_rate'].min():.1f} %)"
    )
    per_sample = {
        f"{row.sample}.{column}": round(float(getattr(row, column)), 3)
        for row in table.itertuples()
        for column in ("mapping_rate", "duplicate_rate", "mean_depth")
    }
    return {
        "files": {
            "stats": "bam_stats.tsv",
            "depth": "depth_windows.tsv",
            **{f"{s}.bam": b.name for s, b in zip(samples, bams, strict=True)},
            **{f"{s}.bam.bai": f"{b.name}.bai" for s, b in zip(samples, bams, strict=True)},
        },
        "metrics": {
            "samples": len(table),
            "lowest_mapping_rate": round(float(table["mapping_rate"].min()), 3),
            "mapping_rate_floor": floor,
            "max_duplicate_rate": round(float(table["duplicate_rate"].max()), 3),
            "mean_depth": round(float(table["mean_depth"].mean()), 3),
            **per_sample,
        },
        "checks": {"mapping_rate": {"passed": low.empty, "description": verdict}},
    }
