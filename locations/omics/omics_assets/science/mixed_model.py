"""GEMMA's univariate linear mixed model (``-lmm 1``, Wald test) for the association step:
one kinship matrix (``lmm``), or leave one chromosome out (``loco``).

Under ``loco`` the variants of each chromosome are tested with a kinship matrix built from
every other chromosome, so a tested variant (and its linkage neighbours) is not also a
random effect: with one matrix the LMM absorbs part of each variant's own signal and its
p-values are deflated ("proximal contamination").

The LOCO matrices are GEMMA's centred relatedness matrix (``-gk 1``), computed here rather
than by one GEMMA run per chromosome: ``K = X X^T / m``, X the allele-1 dosages of the m
variants that pass GEMMA's SNP filter, each centred on its mean over all samples (missing
dosages set to that mean). A variant's term does not depend on the others, so the matrix
leaving out chromosome c is ``(T - S_c) / (m - m_c)``, T the sum over all chromosomes and
S_c that of chromosome c: two passes over the genotypes (T, then each S_c again), one
chromosome's dosages in memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from omics_assets.science.genotypes import plink2
from omics_assets.science.steps import InputError, StepContext

# GEMMA's default SNP filter (-maf, -miss), over the samples with a phenotype
MAF_LEVEL = 0.01
MISS_LEVEL = 0.05
# PLINK 1 .bed 2-bit codes -> allele-1 dosage (GEMMA's genotype; -1 = missing)
_BED_CODES = np.array([2, -1, 1, 0], dtype=np.int8)
_BED_BYTE = _BED_CODES[(np.arange(256)[:, None] >> (2 * np.arange(4))) & 3]  # 256 x 4


def read_pvar_chromosomes(pvar: Path) -> pd.Series:
    """Number of variants per chromosome of a plink2 ``.pvar``, in file order."""
    with pvar.open() as handle:
        chroms = [
            line.split("\t", 1)[0] for line in handle if line.strip() and not line.startswith("#")
        ]
    return pd.Series(chroms, dtype=str).value_counts(sort=False)


def check_loco(pvar: Path, where: str) -> None:
    """InputError unless the variants lie on two or more chromosomes (LOCO needs one to test
    and at least one other to build its kinship matrix from)."""
    counts = read_pvar_chromosomes(pvar)
    if len(counts) < 2:
        only = f"all on chromosome {counts.index[0]}" if len(counts) else "none"
        raise InputError(
            f"model: loco needs variants on at least two chromosomes, but the {where} "
            f"genotypes ({pvar}) have {int(counts.sum())} variants, {only}: leaving that "
            "chromosome out of the kinship matrix would leave no variant to build it from. "
            "Use model: lmm (one kinship matrix) or model: linear"
        )


def write_gemma_input(ctx: StepContext, pfile: str, phenotype: Path) -> Path:
    """A PLINK 1 set of ``pfile`` with the trait in the ``.fam``'s column 6 (NA missing), as
    GEMMA reads it; returns its prefix."""
    bfile = ctx.out / "lmm_input"
    plink2(ctx, "--pfile", pfile, "--make-bed", "--out", str(bfile))
    pheno = pd.read_csv(phenotype, sep="\t", dtype=str, keep_default_na=False)
    pheno.columns = [c.lstrip("#") for c in pheno.columns]
    fam = pd.read_csv(f"{bfile}.fam", sep=r"\s+", header=None, dtype=str, keep_default_na=False)
    fam[5] = fam[1].map(dict(zip(pheno["IID"], pheno["trait"], strict=True))).fillna("NA")
    fam.to_csv(f"{bfile}.fam", sep=" ", header=False, index=False)
    return bfile


def read_bed(prefix: Path) -> tuple[np.memmap, pd.DataFrame, pd.DataFrame]:
    """A PLINK 1 set: its ``.bed`` bytes (variants x bytes, memory-mapped after the magic),
    ``.bim`` (chrom as str) and ``.fam`` (all columns str, "NA" kept)."""
    bim = pd.read_csv(f"{prefix}.bim", sep=r"\s+", header=None, dtype={0: str, 1: str})
    fam = pd.read_csv(f"{prefix}.fam", sep=r"\s+", header=None, dtype=str, keep_default_na=False)
    width = (len(fam) + 3) // 4
    bed = np.memmap(f"{prefix}.bed", dtype=np.uint8, mode="r", offset=3, shape=(len(bim), width))
    return bed, bim, fam


def dosages(bed: np.ndarray, rows: np.ndarray, samples: int) -> np.ndarray:
    """Allele-1 dosages (0/1/2, -1 missing; int8, len(rows) x samples) of some variants."""
    return _BED_BYTE[np.asarray(bed[rows])].reshape(len(rows), -1)[:, :samples]


def gemma_filter(dose: np.ndarray, analysed: np.ndarray) -> np.ndarray:
    """GEMMA's SNP filter (defaults, no covariates) over the analysed samples: missing rate
    at most MISS_LEVEL, allele-1 frequency in [MAF_LEVEL, 1 - MAF_LEVEL], two genotypes seen."""
    sub = dose[:, analysed]
    tested = int(analysed.sum())
    missing = (sub < 0).sum(axis=1)
    classes = np.stack([(sub == k).sum(axis=1) for k in (0, 1, 2)])
    with np.errstate(invalid="ignore", divide="ignore"):
        freq = np.where(sub < 0, 0, sub).sum(axis=1) / (2.0 * (tested - missing))
    monomorphic = (classes > 0).sum(axis=0) < 2
    return (
        (missing / tested <= MISS_LEVEL)
        & (freq >= MAF_LEVEL)
        & (freq <= 1 - MAF_LEVEL)
        & (~monomorphic)
    )


def centred_cross_product(dose: np.ndarray) -> np.ndarray:
    """``X^T X`` (samples x samples) of dosages (variants x samples), each variant centred
    on its mean over the samples that have it, missing set to that mean (GEMMA -gk 1)."""
    x = dose.astype(np.float64)
    x[dose < 0] = np.nan
    mean = np.nanmean(x, axis=1, keepdims=True)
    x = np.where(np.isnan(x), mean, x) - mean
    return x.T @ x


def analysed_samples(fam: pd.DataFrame) -> np.ndarray:
    """Samples GEMMA analyses: a phenotype in the ``.fam``'s column 6 (not NA, not -9)."""
    trait = fam[5].astype(str)
    return (
        ~trait.isin(["NA", "-9", "nan", ""]).to_numpy()
        & ~(pd.to_numeric(trait, errors="coerce") == -9).to_numpy()
    )


def loco_kinships(prefix: Path) -> Iterator[tuple[str, np.ndarray, int]]:
    """For each chromosome with variants that pass GEMMA's filter: the chromosome, GEMMA's
    centred kinship matrix from all the other chromosomes' variants (samples x samples, all
    samples of the ``.fam``) and the number of variants it is built from. InputError when
    fewer than two chromosomes keep variants."""
    bed, bim, fam = read_bed(prefix)
    analysed = analysed_samples(fam)
    samples = len(fam)
    rows: dict[str, np.ndarray] = {}
    for chrom, index in bim.groupby(0, sort=False).indices.items():
        kept = index[gemma_filter(dosages(bed, index, samples), analysed)]
        if len(kept):
            rows[str(chrom)] = kept
    if len(rows) < 2:
        raise InputError(
            f"model: loco: variants of {prefix}.bim pass GEMMA's filter (MAF >= {MAF_LEVEL}, "
            f"missing <= {MISS_LEVEL}) on {len(rows)} chromosome(s) only; it needs two. "
            "Use model: lmm"
        )
    total = np.zeros((samples, samples))
    for kept in rows.values():
        total += centred_cross_product(dosages(bed, kept, samples))
    count = sum(len(kept) for kept in rows.values())
    for chrom, kept in rows.items():
        own = centred_cross_product(dosages(bed, kept, samples))
        yield chrom, (total - own) / (count - len(kept)), count - len(kept)


def write_kinship(path: Path, matrix: np.ndarray, decimals: int = 10) -> None:
    """A matrix as GEMMA's ``-k`` reads it: one row a line, tab-separated, fixed-point with
    ``decimals`` places. Vectorised, digit by digit (``np.savetxt`` formats one number at a
    time: 5 x slower on 1,940 x 1,940)."""
    if not np.isfinite(matrix).all():
        raise ValueError("kinship matrix has non-finite values")
    scale = 10**decimals
    units = np.rint(np.abs(matrix) * scale).astype(np.int64).ravel()
    whole = max(1, len(str(int(units.max()) // scale)))
    width = whole + decimals + 3  # sign, whole digits, point, decimals, separator
    text = np.empty((width, units.size), dtype=np.uint8)  # one row per character position
    text[0] = np.where(np.signbit(matrix.ravel()), ord("-"), ord("+"))
    text[whole + 1] = ord(".")
    for position in [*range(width - 2, whole + 1, -1), *range(whole, 0, -1)]:
        quotient = units // 10
        text[position] = units - quotient * 10 + ord("0")
        units = quotient
    text[-1] = ord("\t")
    lines = text.T.reshape(matrix.shape[0], -1)
    lines[:, -1] = ord("\n")
    path.write_bytes(lines.tobytes())


def _read_assoc(path: Path, analysed: int) -> pd.DataFrame:
    """GEMMA's ``.assoc.txt`` as the association table (snp, chrom, pos, beta, se, p, n)."""
    table = pd.read_csv(path, sep="\t", dtype={"chr": str, "rs": str})
    return pd.DataFrame(
        {
            "snp": table["rs"],
            "chrom": table["chr"],
            "pos": table["ps"].astype(np.int64),
            "beta": table["beta"].astype(float),
            "se": table["se"].astype(float),
            "p": table["p_wald"].astype(float),
            "n": (analysed - table["n_miss"]).astype(np.int64),
        }
    )


def _gemma(ctx: StepContext, argv: list[str], name: str, analysed: int) -> pd.DataFrame:
    """Run GEMMA with ``-o name`` in ``ctx.out``; append its log to ``gemma.log``; return
    its association table (if it wrote one)."""
    ctx.run([*argv, "-o", name], cwd=ctx.out)
    output = ctx.out / "output"
    with (ctx.out / "gemma.log").open("a") as handle:
        handle.write((output / f"{name}.log.txt").read_text())
    (output / f"{name}.log.txt").unlink()
    assoc = output / f"{name}.assoc.txt"
    if not assoc.exists():
        return pd.DataFrame()
    table = _read_assoc(assoc, analysed)
    assoc.unlink()
    return table


def _lmm_loco(ctx: StepContext, program: str, bfile: Path, analysed: int) -> pd.DataFrame:
    """GEMMA's LMM per chromosome, each with the kinship of the other chromosomes. The next
    chromosome's matrix is computed and written while GEMMA tests the current one."""
    bim = pd.read_csv(f"{bfile}.bim", sep=r"\s+", header=None, dtype={0: str, 1: str})
    kinships = loco_kinships(bfile)

    def prepare(index: int) -> tuple[str, Path, Path] | None:
        """The next chromosome, its kinship file and its variants' IDs file (None: done)."""
        item = next(kinships, None)
        if item is None:
            return None
        chrom, matrix, _ = item
        kinship, snps = ctx.out / f"loco{index}.cXX.txt", ctx.out / f"loco{index}.snps.txt"
        write_kinship(kinship, matrix)
        snps.write_text("\n".join(bim.loc[bim[0] == chrom, 1]) + "\n")
        return chrom, kinship, snps

    parts: list[pd.DataFrame] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(prepare, 0)
        index = 0
        while (ready := upcoming.result()) is not None:
            chrom, kinship, snps = ready
            upcoming = pool.submit(prepare, index + 1)
            argv = [program, "-bfile", str(bfile), "-k", str(kinship), "-lmm", "1"]
            table = _gemma(ctx, [*argv, "-snps", str(snps)], f"loco{index}", analysed)
            parts.append(table[table["chrom"] == chrom])  # an ID shared with another chrom
            kinship.unlink()
            snps.unlink()
            index += 1
    return pd.concat(parts, ignore_index=True)


def gemma_lmm(ctx: StepContext, pfile: str, phenotype: Path, loco: bool) -> pd.DataFrame:
    """GEMMA's LMM (Wald test) of every variant of ``pfile``: with one centred kinship
    matrix (GEMMA ``-gk 1``), or per chromosome with the matrix of the other chromosomes
    (``loco``). Writes GEMMA's logs to ``gemma.log``; returns the association table."""
    program = ctx.program("gemma")
    bfile = write_gemma_input(ctx, pfile, phenotype)
    analysed = int(analysed_samples(read_bed(bfile)[2]).sum())
    if loco:
        table = _lmm_loco(ctx, program, bfile, analysed)
    else:
        _gemma(ctx, [program, "-bfile", str(bfile), "-gk", "1"], "kinship", analysed)
        kinship = ctx.out / "output" / "kinship.cXX.txt"
        table = _gemma(
            ctx, [program, "-bfile", str(bfile), "-k", str(kinship), "-lmm", "1"], "lmm", analysed
        )
        kinship.unlink()
    for ext in ("bed", "bim", "fam", "log"):
        Path(f"{bfile}.{ext}").unlink()
    (ctx.out / "output").rmdir()
    return table
