"""Simulated RNA-seq reads with known truth: ``art_illumina`` reads from each transcript, as
many read pairs as a negative-binomial draw around its abundance in the sample's condition."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omics_assets.science import reads
from omics_assets.science.steps import StepContext
from platform_core.tools import map_parallel


def true_pairs(
    lengths: pd.Series, sheet: pd.DataFrame, reference_level: str, cfg: dict[str, Any]
) -> tuple[pd.DataFrame, pd.Series]:
    """Expected read pairs per transcript (rows) and sample (columns), and each transcript's
    true log2 fold change (treatment over reference). Abundances are log-normal; ``de_transcripts``
    of them change by +-``log2_fold_change`` outside the reference condition; each count is a
    gamma-Poisson (negative binomial) draw with ``dispersion``."""
    rng = np.random.default_rng(int(cfg["seed"]))
    usable = lengths >= int(cfg["fragment_mean"]) + 3 * int(cfg["fragment_sd"])
    share = pd.Series(rng.lognormal(0.0, 1.0, len(lengths)), index=lengths.index) * usable
    share /= share.sum()
    log2fc = pd.Series(0.0, index=lengths.index)
    chosen = rng.choice(np.flatnonzero(usable), int(cfg["de_transcripts"]), replace=False)
    log2fc.iloc[chosen] = float(cfg["log2_fold_change"]) * np.where(
        np.arange(len(chosen)) % 2 == 0, 1.0, -1.0
    )
    columns = {}
    for _, row in sheet.iterrows():
        fold = 2.0**log2fc if row["condition"] != reference_level else 1.0
        mean = share * fold * int(cfg["pairs_per_sample"])
        shape = 1.0 / float(cfg["dispersion"])
        columns[row["sample"]] = rng.poisson(rng.gamma(shape, mean / shape))
    return pd.DataFrame(columns, index=lengths.index), log2fc


def art_pairs(ctx: StepContext, job: tuple[str, str, int, Path, int]) -> Path:
    """Reads of one transcript for one sample: ``pairs`` pairs (art's fold coverage is
    pairs x 2 x read length / transcript length)."""
    name, sequence, pairs, folder, seed = job
    cfg = ctx.config
    fasta = folder / f"{name}.fa"
    fasta.write_text(f">{name}\n{sequence}\n")
    coverage = pairs * 2 * int(cfg["read_length"]) / len(sequence)
    ctx.run(
        [
            ctx.program("art_illumina"),
            "-ss",
            "HS25",
            "-i",
            str(fasta),
            "-p",
            "-l",
            str(cfg["read_length"]),
            "-f",
            f"{coverage:.6f}",
            "-m",
            str(cfg["fragment_mean"]),
            "-s",
            str(cfg["fragment_sd"]),
            "-rs",
            str(seed),
            "-na",
            "-q",
            "-o",
            str(folder / f"{name}_"),
        ]
    )
    return folder / f"{name}_"


def simulate_reads(ctx: StepContext) -> dict[str, Any]:
    """Paired reads per sample of the samplesheet, the counts that were drawn (``truth.tsv``:
    sample, transcript, pairs) and a samplesheet pointing at the reads."""
    ctx.program("art_illumina")  # installed, and its version recorded, before any work
    sequences = reads.read_fasta(ctx.input_file("reference", "transcripts"))
    sheet = pd.read_csv(ctx.input_file("samplesheet", "samplesheet"), sep="\t", dtype=str)
    lengths = pd.Series({name: len(seq) for name, seq in sequences.items()})
    expected, log2fc = true_pairs(
        lengths, sheet, ctx.domain_specific.get("reference_level", ""), dict(ctx.config)
    )
    (ctx.out / "reads").mkdir()
    work = ctx.out / "art"
    work.mkdir()
    jobs = []
    for s, sample in enumerate(expected.columns):
        folder = work / sample
        folder.mkdir()
        for t, name in enumerate(expected.index):
            if expected.loc[name, sample] > 0:
                seed = int(ctx.config["seed"]) * 100_003 + s * 1009 + t
                jobs.append((name, sequences[name], int(expected.loc[name, sample]), folder, seed))
    prefixes = map_parallel(lambda job: art_pairs(ctx, job), jobs, workers=ctx.threads)
    truth, rows = [], []
    for sample in expected.columns:
        counts: Counter[str] = Counter()
        for mate in (1, 2):
            target = ctx.out / "reads" / f"{sample}_{mate}.fastq.gz"
            with gzip.open(target, "wt", compresslevel=1) as handle:
                for prefix in (p for p in prefixes if p.parent.name == sample):
                    text = Path(f"{prefix}{mate}.fq").read_text()
                    handle.write(text)
                    if mate == 1:
                        counts[prefix.name[:-1]] += text.count("\n") // 4
        truth += [(sample, name, counts[name]) for name in expected.index]
        rows.append(
            (
                sample,
                sheet.set_index("sample").loc[sample, "condition"],
                f"reads/{sample}_1.fastq.gz",
                f"reads/{sample}_2.fastq.gz",
            )
        )
    for folder in work.iterdir():
        for file in folder.iterdir():
            file.unlink()
        folder.rmdir()
    work.rmdir()
    pd.DataFrame(truth, columns=["sample", "transcript", "pairs"]).merge(
        log2fc.rename("true_log2fc"), left_on="transcript", right_index=True
    ).to_csv(ctx.out / "truth.tsv", sep="\t", index=False)
    pd.DataFrame(rows, columns=["sample", "condition", "fastq_1", "fastq_2"]).to_csv(
        ctx.out / "samplesheet.tsv", sep="\t", index=False
    )
    return {
        "files": {"truth": "truth.tsv", "samplesheet": "samplesheet.tsv"},
        "metrics": {
            "samples": len(rows),
            "read_pairs": sum(t[2] for t in truth),
            "de_transcripts": int((log2fc != 0).sum()),
        },
    }
