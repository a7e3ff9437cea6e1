"""Variant calls from the BAMs: ``bcftools mpileup`` + ``call -m`` (all samples together,
the configured ploidy), then ``bcftools norm`` (left-aligned against the reference,
multiallelic records split), QUAL and depth filters, a bgzipped indexed VCF and its
``bcftools stats``. Each step's table has ``chrom, pos, ref, alt, qual, depth`` (INFO/DP,
reads) and the call's ``type`` (snv, indel or other)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omics_assets.science import dna_reference
from omics_assets.science.steps import StepContext
from platform_core.tools import map_parallel

TABLE_COLUMNS = ["chrom", "pos", "ref", "alt", "qual", "depth", "type"]


def variant_type(ref: pd.Series, alt: pd.Series) -> np.ndarray:
    """snv (one base for one), indel (lengths differ) or other (MNPs, symbolic alleles)."""
    ref_len, alt_len = ref.str.len().to_numpy(), alt.str.len().to_numpy()
    symbolic = alt.str.contains(r"[<*\[\]]", regex=True).to_numpy()
    kind = np.where(ref_len != alt_len, "indel", np.where(ref_len == 1, "snv", "other"))
    return np.where(symbolic, "other", kind)


def vcf_table(ctx: StepContext, vcf: Path) -> pd.DataFrame:
    """A VCF's records as the table of :data:`TABLE_COLUMNS` (one row per ALT allele)."""
    query = "%CHROM\t%POS\t%REF\t%ALT\t%QUAL\t%INFO/DP\n"
    result = ctx.run([ctx.program("bcftools"), "query", "-f", query, str(vcf)])
    table = pd.read_csv(
        io.StringIO(result.stdout),
        sep="\t",
        header=None,
        names=TABLE_COLUMNS[:-1],
        dtype={"chrom": str, "ref": str, "alt": str},
        na_values=["."],
    )
    table = table.assign(alt=table["alt"].str.split(",")).explode("alt", ignore_index=True)
    return table.assign(type=variant_type(table["ref"], table["alt"].astype(str)))


def regions(fai: Path, parts: int) -> list[list[tuple[str, int, int]]]:
    """The genome cut into at most ``parts`` stretches of about equal length (windows of
    :func:`dna_reference.genome_windows`, grouped by where they start along the genome),
    each a list of (chrom, begin, end), 1-based and inclusive; none empty."""
    lengths = pd.read_csv(fai, sep="\t", header=None, usecols=[1])
    size = max(1, -(-int(lengths[1].sum()) // parts))
    windows = dna_reference.genome_windows(fai, size)
    offset = np.concatenate([[0], np.cumsum(windows["end"] - windows["start"])[:-1]])
    group = np.minimum(offset // size, parts - 1)
    return [
        [(c, s + 1, e) for c, s, e in windows[group == g].itertuples(index=False)]
        for g in np.unique(group)
    ]


def _call_region(ctx: StepContext, index: int, region: list[tuple[str, int, int]]) -> Path:
    """Calls of one stretch (``bcftools mpileup -R`` then ``call``): ``part<index>.bcf``."""
    bcftools, cfg = ctx.program("bcftools"), ctx.config
    where = ctx.out / f"part{index}.regions.tsv"
    where.write_text("".join(f"{c}\t{b}\t{e}\n" for c, b, e in region))
    pileup, calls = ctx.out / f"part{index}.pileup.bcf", ctx.out / f"part{index}.bcf"
    ctx.run(
        [
            bcftools,
            "mpileup",
            "--fasta-ref",
            str(ctx.input_file("reference", "fasta")),
            "--annotate",
            "FORMAT/AD,FORMAT/DP",
            "--min-BQ",
            str(cfg["min_base_quality"]),
            "--min-MQ",
            str(cfg["min_mapping_quality"]),
            "--max-depth",
            str(cfg["max_depth"]),
            "--regions-file",
            str(where),
            "--bam-list",
            str(ctx.out / "bams.txt"),
            "-Ou",
            "-o",
            str(pileup),
        ]
    )
    ploidy = str(cfg["ploidy"])
    ctx.run(
        [bcftools, "call", "-m", "-v", "--ploidy", ploidy, "-Ob", "-o", str(calls), str(pileup)]
    )
    pileup.unlink()
    where.unlink()
    return calls


def call(ctx: StepContext) -> dict[str, Any]:
    """Raw variant calls of all samples together (``calls.vcf.gz``, indexed; ``calls.tsv``):
    ``bcftools mpileup`` (AD and DP per sample; base and mapping quality floors, a depth
    cap) then the multiallelic caller ``call -m -v`` at the configured ploidy; the genome is
    cut into one stretch per thread, called in parallel and concatenated in order."""
    bcftools = ctx.program("bcftools")
    samples = pd.read_csv(ctx.input_file("bam", "stats"), sep="\t", dtype={"sample": str})
    bam_list = ctx.out / "bams.txt"
    bam_list.write_text(
        "".join(f"{ctx.input_file('bam', f'{s}.bam')}\n" for s in samples["sample"])
    )
    cut = regions(ctx.input_file("reference", "fai"), ctx.threads)
    parts = map_parallel(lambda job: _call_region(ctx, *job), enumerate(cut), ctx.threads)
    vcf = ctx.out / "calls.vcf.gz"
    ctx.run([bcftools, "concat", "-Oz", "-o", str(vcf), *map(str, parts)])
    ctx.run([bcftools, "index", "-t", str(vcf)])
    for part in [*parts, bam_list]:
        part.unlink()
    table = vcf_table(ctx, vcf)
    table.to_csv(ctx.out / "calls.tsv", sep="\t", index=False)
    return {
        "files": {"calls": "calls.tsv", "vcf": vcf.name, "tbi": f"{vcf.name}.tbi"},
        "metrics": {
            "calls": len(table),
            "snvs": int((table["type"] == "snv").sum()),
            "indels": int((table["type"] == "indel").sum()),
            "ploidy": int(ctx.config["ploidy"]),
            "regions": len(cut),
        },
    }


def _summary_numbers(stats: str) -> dict[str, float]:
    """``bcftools stats``'s summary numbers (SN lines) and ts/tv (TSTV line)."""
    values: dict[str, float] = {}
    for line in stats.splitlines():
        fields = line.split("\t")
        if fields[0] == "SN":
            values[fields[2].removeprefix("number of ").rstrip(":")] = float(fields[3])
        elif fields[0] == "TSTV":
            values["ts/tv"] = float(fields[4])
    return values


def variants(ctx: StepContext) -> dict[str, Any]:
    """The final calls: normalized (``bcftools norm -f``: left-aligned, multiallelic records
    split), kept when QUAL >= ``min_qual`` and INFO/DP >= ``min_depth`` (``variants.vcf.gz``,
    bgzipped and indexed; ``variants.tsv``: chrom, pos, ref, alt, qual, depth, type) and
    their ``bcftools stats`` (``variants.stats.txt``)."""
    bcftools = ctx.program("bcftools")
    fasta = str(ctx.input_file("reference", "fasta"))
    normalized = ctx.out / "normalized.bcf"
    ctx.run(
        [
            bcftools,
            "norm",
            "--fasta-ref",
            fasta,
            "--multiallelics",
            "-any",
            "-Ou",
            "-o",
            str(normalized),
            str(ctx.input_file("call", "vcf")),
        ]
    )
    keep = f"QUAL>={float(ctx.config['min_qual']):g} && INFO/DP>={int(ctx.config['min_depth'])}"
    vcf = ctx.out / "variants.vcf.gz"
    ctx.run([bcftools, "view", "-i", keep, "-Oz", "-o", str(vcf), str(normalized)])
    normalized.unlink()
    ctx.run([bcftools, "index", "-t", str(vcf)])
    stats = ctx.run([bcftools, "stats", "--fasta-ref", fasta, str(vcf)]).stdout
    (ctx.out / "variants.stats.txt").write_text(stats)
    numbers = _summary_numbers(stats)
    table = vcf_table(ctx, vcf)
    table.to_csv(ctx.out / "variants.tsv", sep="\t", index=False)
    raw = int(ctx.inputs["call"]["metrics"]["calls"])
    return {
        "files": {
            "variants": "variants.tsv",
            "vcf": vcf.name,
            "tbi": f"{vcf.name}.tbi",
            "stats": "variants.stats.txt",
        },
        "metrics": {
            "variants": len(table),
            "snvs": int(numbers.get("SNPs", 0)),
            "indels": int(numbers.get("indels", 0)),
            "multiallelic_sites": int(numbers.get("multiallelic sites", 0)),
            "ts_tv": round(numbers.get("ts/tv", 0.0), 3),
            "filtered_out": raw - len(table),
            "filter": keep,
            "min_qual": float(ctx.config["min_qual"]),
            "min_depth": int(ctx.config["min_depth"]),
        },
    }
