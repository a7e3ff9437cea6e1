"""DNA: reads to variants, the dna domain's steps.

reference (FASTA staged plain, ``samtools faidx``, statistics) -> reads (samplesheet of FASTQ
pairs, read counts) -> index (``bwa`` or ``bowtie2``) -> align (read groups per sample,
``samtools fixmate -m``) -> bam (sort, ``markdup``, index, flagstat, depth) -> call
(``bcftools mpileup`` + ``call -m``, all samples together) -> variants (``bcftools norm``,
QUAL and depth filters, bgzipped and indexed VCF, ``bcftools stats``) -> report.

Positions are 1-based as in VCF; depths are reads per base; rates are percent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from omics_assets.science import dna_align, dna_reference, dna_report, dna_variants, reads
from omics_assets.science.specs import FilePath, NoConfig, Step, Strict
from omics_assets.science.steps import InputError, StepContext

SAMPLESHEET_COLUMNS = ("sample", "fastq_1", "fastq_2")


class Inputs(Strict):
    """The dna domain's ``domain_specific`` keys."""

    reference: FilePath = Field(description="genome FASTA, plain or gzipped (not an accession)")
    samplesheet: FilePath = Field(description="TSV: sample, fastq_1, fastq_2")


class IndexConfig(Strict):
    aligner: Literal["bwa", "bowtie2"] = Field(description="bwa mem, or bowtie2 end-to-end")


class BamConfig(Strict):
    min_mapping_rate: float = Field(ge=0, le=100, description="percent; below it: a warning")
    depth_windows: int = Field(ge=1, le=100_000, description="windows of the depth profile")


class CallConfig(Strict):
    ploidy: Literal[1, 2] = Field(description="1 for haploid genomes (phage, bacteria)")
    min_base_quality: int = Field(ge=0, description="mpileup -Q, phred")
    min_mapping_quality: int = Field(ge=0, description="mpileup -q, phred")
    max_depth: int = Field(ge=1, description="mpileup -d: reads per position and file")


class VariantsConfig(Strict):
    min_qual: float = Field(ge=0, description="keep calls with QUAL >= this (phred)")
    min_depth: int = Field(ge=0, description="keep calls with INFO/DP >= this (reads)")


def reference(ctx: StepContext) -> dict[str, Any]:
    """The genome FASTA written plain (``reference.fa``), its ``samtools faidx`` index and its
    statistics (sequence count, total length and N50 in bp, GC fraction; per sequence in
    ``fasta_stats.tsv``). An accession instead of a file is refused: fetching needs the
    internet."""
    value = ctx.domain_specific.get("reference")
    if not value:
        raise InputError("domain_specific.reference is required (a FASTA, plain or gzipped)")
    source = Path(value)
    stats: list[dna_reference.SequenceStats] = []

    def counted() -> Iterator[tuple[str, str]]:
        for name, sequence in dna_reference.records(source):
            stats.append(dna_reference.SequenceStats.of(name, sequence))
            yield name, sequence

    fasta = dna_reference.write_fasta(counted(), ctx.out / "reference.fa")
    ctx.run([ctx.program("samtools"), "faidx", str(fasta)])
    table = pd.DataFrame(
        [(s.name, s.length, round(s.gc / s.acgt, 6) if s.acgt else 0.0, s.n) for s in stats],
        columns=["sequence", "length", "gc_fraction", "n_bases"],
    )
    table.to_csv(ctx.out / "fasta_stats.tsv", sep="\t", index=False)
    return {
        "files": {"stats": "fasta_stats.tsv", "fasta": "reference.fa", "fai": "reference.fa.fai"},
        "metrics": dna_reference.summary(stats),
    }


def read_pairs(ctx: StepContext) -> dict[str, Any]:
    """The validated samplesheet (:func:`reads.checked_samplesheet`: FASTQ paths relative to
    the sheet, resolved as the core confines them) with each sample's read pairs counted
    (``reads.tsv``: sample, fastq_1, fastq_2, read_pairs); mates whose counts differ are
    refused."""
    if not ctx.domain_specific.get("samplesheet"):
        raise InputError("domain_specific.samplesheet is required (sample, fastq_1, fastq_2)")
    path = Path(ctx.domain_specific["samplesheet"])
    table = reads.checked_samplesheet(path, SAMPLESHEET_COLUMNS, SAMPLESHEET_COLUMNS[1:])
    counts = []
    for _, row in table.iterrows():
        first, second = (reads.check_fastq(Path(row[c])) for c in SAMPLESHEET_COLUMNS[1:])
        if first != second:
            raise InputError(
                f"samplesheet: {path} line {row['line']}: sample {row['sample']}: fastq_1 has "
                f"{first} reads, fastq_2 {second}: the mates of a pair must match"
            )
        counts.append(first)
    table = table[list(SAMPLESHEET_COLUMNS)].assign(read_pairs=counts)
    table.to_csv(ctx.out / "reads.tsv", sep="\t", index=False)
    return {
        "files": {"reads": "reads.tsv"},
        "metrics": {"samples": len(table), "read_pairs": int(sum(counts))},
    }


def index(ctx: StepContext) -> dict[str, Any]:
    """The aligner's index of the reference (``bwa index`` or ``bowtie2-build``)."""
    aligner = ctx.config["aligner"]
    fasta = str(ctx.input_file("reference", "fasta"))
    (ctx.out / "index").mkdir()
    prefix = str(ctx.out / "index" / dna_align.INDEX_PREFIX)
    if aligner == "bwa":
        ctx.run([ctx.program("bwa"), "index", "-p", prefix, fasta])
    else:
        build = ctx.program("bowtie2-build")
        ctx.run([build, "--threads", str(ctx.threads), "--seed", "1", "-q", fasta, prefix])
    return {"files": {"index": "index"}, "metrics": {"aligner": aligner}}


STEPS: tuple[Step, ...] = (
    Step("reference", reference, (), NoConfig, ("samtools",), required=True),
    Step("reads", read_pairs, (), NoConfig, required=True),
    Step("index", index, ("reference",), IndexConfig, ("bwa", "bowtie2")),
    Step("align", dna_align.align, ("index", "reads"), NoConfig, ("bwa", "bowtie2", "samtools")),
    Step(
        "bam",
        dna_align.bam,
        ("align", "reference"),
        BamConfig,
        ("samtools",),
        checks=(("mapping_rate", "every sample maps at least min_mapping_rate %"),),
    ),
    Step("call", dna_variants.call, ("bam", "reference"), CallConfig, ("bcftools",)),
    Step(
        "variants",
        dna_variants.variants,
        ("call", "reference"),
        VariantsConfig,
        ("bcftools",),
        export=("chrom", "pos", "ref", "alt", "qual", "depth"),
    ),
    Step("report", dna_report.report, ("bam", "call", "variants"), NoConfig),
)
