"""Planted truth for the dna workflow (tests and ``bench/omics.py``): a genome (a FASTA, or a
random one with uneven GC and microsatellites) mutated with known SNVs and small indels, the
truth VCF in reference coordinates (left-normalized as ``bcftools norm`` writes it), and
paired ``art_illumina`` reads of the mutated genome (HiSeq 2500 error profile). Positions are
1-based in tables and VCFs; lengths in bp; coverage in reads per base."""

from __future__ import annotations

import gzip
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from omics_assets.science import dna_reference, read_simulation
from omics_assets.science.dna_variants import variant_type
from omics_assets.science.steps import StepContext
from platform_core.tools import map_parallel

BASES = np.array(list("ACGT"))
ASCII = np.frombuffer(b"ACGT", dtype=np.uint8)
TRANSITION = {"A": "G", "G": "A", "C": "T", "T": "C"}
TRUTH_COLUMNS = ["chrom", "pos", "ref", "alt", "type"]


@dataclass(frozen=True)
class Truth:
    """What :func:`simulate_truth` wrote: the reference FASTA the reads are aligned to, the
    truth (VCF and ``variants``: chrom, pos, ref, alt, type) and a samplesheet of the reads
    (sample, fastq_1, fastq_2)."""

    reference: Path
    vcf: Path
    samplesheet: Path
    variants: pd.DataFrame


def random_genome(length: int, seed: int, gc: float = 0.42, contigs: int = 1) -> dict[str, str]:
    """A random genome of ``length`` bp in ``contigs`` sequences: GC drawn per 2 kb block
    around ``gc`` (sd ~0.04, as genomes vary along their length), and a microsatellite (a
    1-6 bp unit repeated to 8-40 bp) every ~3 kb, where aligners and callers err."""
    rng = np.random.default_rng(seed)
    block = 2000
    strength = gc * (1 - gc) / 0.04**2 - 1
    block_gc = rng.beta(gc * strength, (1 - gc) * strength, length // block + 1)
    p_gc = np.repeat(block_gc, block)[:length]
    strong = rng.random(length) < p_gc
    codes = np.where(strong, rng.integers(1, 3, length), rng.choice([0, 3], length))
    sequence = ASCII[codes]
    for start in rng.integers(0, max(1, length - 40), length // 3000):
        unit = ASCII[rng.integers(0, 4, rng.integers(1, 7))]
        repeat = np.resize(unit, int(rng.integers(8, 41)))
        sequence[start : start + len(repeat)] = repeat[: length - start]
    text = sequence.tobytes().decode()
    bounds = np.linspace(0, length, contigs + 1).astype(int)
    return {f"chr{i + 1}": text[bounds[i] : bounds[i + 1]] for i in range(contigs)}


def _normalized_indel(seq: str, p: int, deleted: int, inserted: str) -> tuple[int, int, str]:
    """An indel at 0-based ``p`` (``deleted`` bases from p, or ``inserted`` before p) shifted
    as far left as the sequence allows (p, inserted) and the rightmost base it may reach."""
    left, right, ins_left, ins_right = p, p, inserted, inserted
    if deleted:
        while left > 1 and seq[left - 1] == seq[left + deleted - 1]:
            left -= 1
        while right + deleted < len(seq) and seq[right] == seq[right + deleted]:
            right += 1
        return left, right + deleted, ""
    while left > 1 and seq[left - 1] == ins_left[-1]:
        ins_left, left = ins_left[-1] + ins_left[:-1], left - 1
    while right < len(seq) and seq[right] == ins_right[0]:
        ins_right, right = ins_right[1:] + ins_right[0], right + 1
    return left, right, ins_left


def plant_variants(
    genome: dict[str, str], snvs: int, indels: int, seed: int, margin: int = 300, spacing: int = 30
) -> tuple[dict[str, str], pd.DataFrame]:
    """The genome with ``snvs`` SNVs (transitions twice as likely as each transversion) and
    ``indels`` insertions and deletions (half each) of 1-10 bp (shorter ones likelier, P ~
    1/length), at least ``spacing`` bp apart (counting the stretch an indel may slide along in
    a repeat) and ``margin`` bp from sequence ends; and the truth table (chrom, pos, ref, alt,
    type; VCF style, indels left-aligned with their anchor base)."""
    rng = np.random.default_rng(seed)
    names = [n for n, s in genome.items() if len(s) > 2 * margin + 20]
    weights = np.array([len(genome[n]) for n in names], dtype=float)
    busy = {n: np.zeros(len(genome[n]) + 1, dtype=bool) for n in names}
    lengths = np.arange(1, 11)
    length_p = (1 / lengths) / (1 / lengths).sum()
    kinds = ["snv"] * snvs + ["insertion", "deletion"] * (indels // 2) + ["deletion"] * (indels % 2)
    events: list[tuple[str, int, int, str, int, str, str]] = []
    for kind in kinds:
        for _ in range(1000):  # draws until a free, unambiguous site is found
            chrom = names[int(rng.choice(len(names), p=weights / weights.sum()))]
            seq = genome[chrom]
            p = int(rng.integers(margin, len(seq) - margin - 10))
            size = int(rng.choice(lengths, p=length_p))
            if kind == "snv":
                if seq[p] not in TRANSITION:
                    continue
                others = [b for b in "ACGT" if b not in (seq[p], TRANSITION[seq[p]])]
                alt = str(rng.choice([TRANSITION[seq[p]], TRANSITION[seq[p]], *others]))
                start, end, pos, ref = p, p, p + 1, seq[p]
                edit = (p, 1, alt)
            else:
                deleted = size if kind == "deletion" else 0
                inserted = "" if deleted else "".join(rng.choice(BASES, size))
                start, end, inserted = _normalized_indel(seq, p, deleted, inserted)
                pos, ref = start, seq[start - 1 : start + deleted]
                alt = seq[start - 1] + inserted
                edit, start = (start, deleted, inserted), start - 1
            window = busy[chrom][max(0, start - spacing) : end + spacing + 1]
            if window.any() or any(b not in "ACGT" for b in ref):
                continue
            busy[chrom][max(0, start - spacing) : end + spacing + 1] = True
            events.append((chrom, *edit, pos, ref, alt))
            break
        else:
            raise ValueError(f"no room for {len(kinds)} variants {spacing} bp apart")
    mutated = dict(genome)
    for chrom in names:
        mine = sorted((e for e in events if e[0] == chrom), key=lambda e: e[1])
        seq, parts, cursor = genome[chrom], [], 0
        for _, at, removed, added, *_ in mine:
            parts += [seq[cursor:at], added]
            cursor = at + removed
        mutated[chrom] = "".join([*parts, seq[cursor:]])
    table = pd.DataFrame(
        [(c, pos, ref, alt) for c, *_, pos, ref, alt in events], columns=TRUTH_COLUMNS[:-1]
    )
    table["type"] = variant_type(table["ref"], table["alt"])
    table["order"] = table["chrom"].map({n: i for i, n in enumerate(genome)})
    table = table.sort_values(["order", "pos"]).drop(columns="order")
    return mutated, table.reset_index(drop=True)


def write_vcf(table: pd.DataFrame, genome: dict[str, str], path: Path, sample: str) -> Path:
    """The truth as a haploid VCF (GT 1) of ``sample``."""
    header = [
        "##fileformat=VCFv4.2",
        *(f"##contig=<ID={n},length={len(s)}>" for n, s in genome.items()),
    ]
    header += ['##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">']
    header.append(
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", sample])
    )
    rows = [
        f"{r.chrom}\t{r.pos}\t.\t{r.ref}\t{r.alt}\t.\tPASS\t.\tGT\t1" for r in table.itertuples()
    ]
    path.write_text("\n".join(header + rows) + "\n")
    return path


def _library(
    prefixes: list[Path], out: Path, sample: str, rng: np.random.Generator, bias: dict[str, float]
) -> tuple[Path, Path]:
    """art's pairs as a library: a pair is kept with probability exp(-gc_bias (gc - g)^2 /
    0.02), gc its bases' GC fraction and g the genome's (GC-extreme fragments amplify less,
    so coverage dips in GC-extreme stretches), and a kept pair is copied with probability
    ``duplicates`` (PCR duplicates). Written as ``<sample>_1.fq.gz`` and ``_2.fq.gz``."""
    targets = (out / f"{sample}_1.fq.gz", out / f"{sample}_2.fq.gz")
    with gzip.open(targets[0], "wb", 1) as one, gzip.open(targets[1], "wb", 1) as two:
        for prefix in prefixes:
            with Path(f"{prefix}1.fq").open("rb") as r1, Path(f"{prefix}2.fq").open("rb") as r2:
                while r1.peek(1):
                    first = [r1.readline() for _ in range(4)]
                    second = [r2.readline() for _ in range(4)]
                    bases = first[1].strip() + second[1].strip()
                    gc = (bases.count(b"G") + bases.count(b"C")) / max(1, len(bases))
                    keep = math.exp(-bias["gc_bias"] * (gc - bias["gc"]) ** 2 / 0.02)
                    if rng.random() >= keep:
                        continue
                    one.writelines(first)
                    two.writelines(second)
                    if rng.random() < bias["duplicates"]:  # the fragment again, renamed
                        one.writelines([first[0].replace(b"/1\n", b"_dup/1\n"), *first[1:]])
                        two.writelines([second[0].replace(b"/2\n", b"_dup/2\n"), *second[1:]])
    return targets


def _kept_share(genome: dict[str, str], rng: np.random.Generator, bias: dict[str, float]) -> float:
    """The share of 300 bp fragments that :func:`_library` keeps (2,000 drawn at random)."""
    names = [n for n, seq in genome.items() if len(seq) > 300]
    weights = np.array([len(genome[n]) for n in names], dtype=float)
    keep = []
    for chrom in rng.choice(names, 2000, p=weights / weights.sum()):
        start = int(rng.integers(0, len(genome[chrom]) - 300))
        fragment = genome[chrom][start : start + 300].upper()
        gc = (fragment.count("G") + fragment.count("C")) / 300
        keep.append(math.exp(-bias["gc_bias"] * (gc - bias["gc"]) ** 2 / 0.02))
    return float(np.mean(keep))


def simulate_reads(
    genome: dict[str, str],
    out: Path,
    sample: str,
    seed: int,
    coverage: float = 30.0,
    gc_bias: float = 1.0,
    duplicates: float = 0.03,
    threads: int = 1,
) -> tuple[Path, Path]:
    """Paired ``art_illumina`` reads of each sequence (HiSeq 2500 profile, 150 bp, fragments
    300 +- 30 bp, seeded) at ``coverage`` reads per base, then thinned by GC and duplicated
    as a library is (see :func:`_library`): ``<sample>_1.fq.gz``, ``<sample>_2.fq.gz``."""
    work = out / f"{sample}_art"
    work.mkdir()
    config = {"read_length": 150, "fragment_mean": 300, "fragment_sd": 30}
    ctx = StepContext("simulate_truth", config, {}, threads, work)
    stats = [dna_reference.SequenceStats.of(n, seq) for n, seq in genome.items()]
    bias = {"gc_bias": gc_bias, "duplicates": duplicates}
    bias["gc"] = float(dna_reference.summary(stats)["gc_fraction"])
    rng = np.random.default_rng(seed)
    scale = coverage / _kept_share(genome, rng, bias)  # art's coverage, before thinning
    jobs = [
        (f"contig{i}", seq, round(scale * len(seq) / 300), work, seed * 1009 + i)
        for i, seq in enumerate(genome.values())
        if len(seq) > 400  # art needs a sequence longer than its fragments
    ]
    prefixes = map_parallel(lambda job: read_simulation.art_pairs(ctx, job), jobs, threads)
    mates = _library(prefixes, out, sample, rng, bias)
    shutil.rmtree(work)
    return mates


def simulate_truth(
    out: Path,
    snvs: int,
    indels: int,
    seed: int,
    reference: Path | None = None,
    genome_length: int = 5_000_000,
    contigs: int = 1,
    coverage: float = 30.0,
    gc_bias: float = 1.0,
    duplicates: float = 0.03,
    sample: str = "sim",
    threads: int = 1,
) -> Truth:
    """Planted truth in ``out``: ``reference.fa`` (``reference``, or a random genome of
    ``genome_length`` bp in ``contigs`` sequences), ``truth.vcf``,
    ``truth.tsv`` and 150 bp paired reads (fragments 300 +- 30 bp) at ``coverage`` (GC
    bias and PCR duplicates: :func:`simulate_reads`) with a ``samplesheet.tsv``.
    Deterministic for a seed. ``bench/omics.py``: a 5 Mb genome at 30x is
    ``simulate_truth(out, snvs=5000, indels=500, seed=1, contigs=4, threads=2)``."""
    out.mkdir(parents=True, exist_ok=True)
    genome = (
        dict(dna_reference.records(reference))
        if reference
        else random_genome(genome_length, seed, contigs=contigs)
    )
    mutated, table = plant_variants(genome, snvs, indels, seed)
    fasta = dna_reference.write_fasta(genome.items(), out / "reference.fa")
    table.to_csv(out / "truth.tsv", sep="\t", index=False)
    vcf = write_vcf(table, genome, out / "truth.vcf", sample)
    fq1, fq2 = simulate_reads(mutated, out, sample, seed, coverage, gc_bias, duplicates, threads)
    sheet = out / "samplesheet.tsv"
    sheet.write_text(f"sample\tfastq_1\tfastq_2\n{sample}\t{fq1.name}\t{fq2.name}\n")
    return Truth(fasta, vcf, sheet, table)


def score_calls(truth: pd.DataFrame, calls: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Recall and precision of ``calls`` against ``truth`` (both with chrom, pos, ref, alt,
    normalized alike), matched exactly, for SNVs and indels apart (a call's type from its
    alleles)."""
    key = ["chrom", "pos", "ref", "alt"]
    truth = truth.assign(type=variant_type(truth["ref"], truth["alt"]))
    calls = calls.assign(type=variant_type(calls["ref"], calls["alt"].astype(str)))
    scores = {}
    for kind in ("snv", "indel"):
        expected = set(truth.loc[truth["type"] == kind, key].itertuples(index=False, name=None))
        found = set(calls.loc[calls["type"] == kind, key].itertuples(index=False, name=None))
        hits = len(expected & found)
        scores[kind] = {
            "truth": len(expected),
            "called": len(found),
            "true_positives": hits,
            "recall": hits / len(expected) if expected else float("nan"),
            "precision": hits / len(found) if found else float("nan"),
        }
    return scores
