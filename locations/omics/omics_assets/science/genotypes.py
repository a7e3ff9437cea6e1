"""Genotype and phenotype input for association studies: PLINK sets, VCFs and trait tables,
validated before any tool reads them.

PLINK 1 binary sets are ``<prefix>.bed/.bim/.fam`` (each may be gzipped, as Debian ships its
examples); a ``.bed`` holds 3 magic bytes then ``ceil(samples / 4)`` bytes per variant.
"""

from __future__ import annotations

import gzip
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from omics_assets.science.steps import InputError, StepContext

BED_MAGIC = b"\x6c\x1b\x01"  # SNP-major PLINK 1 .bed
VCF_SUFFIXES = (".vcf", ".vcf.gz", ".bcf")


@dataclass(frozen=True)
class PlinkSet:
    """A validated PLINK 1 binary set (``prefix`` without extension)."""

    prefix: Path
    samples: int
    variants: int


def plink_member(prefix: Path, ext: str) -> Path:
    """``<prefix>.<ext>`` or its gzipped copy; InputError naming both when neither exists."""
    for candidate in (Path(f"{prefix}.{ext}"), Path(f"{prefix}.{ext}.gz")):
        if candidate.is_file():
            return candidate
    raise InputError(f"genotypes: {prefix}.{ext} does not exist (nor {prefix}.{ext}.gz)")


def _lines(path: Path) -> int:
    with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _copy_plain(source: Path, target: Path) -> None:
    """Copy a file, decompressing it if it is gzipped."""
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def is_vcf(path: Path) -> bool:
    return path.name.endswith(VCF_SUFFIXES)


def stage_plink(prefix: Path, out: Path) -> PlinkSet:
    """Check a PLINK 1 set (all three files, magic bytes, ``.bed`` size against ``.bim`` and
    ``.fam`` line counts) and copy it, uncompressed, to ``out/genotypes.*``."""
    files = {ext: plink_member(prefix, ext) for ext in ("bed", "bim", "fam")}
    variants, samples = _lines(files["bim"]), _lines(files["fam"])
    if variants == 0 or samples == 0:
        raise InputError(f"genotypes: {files['bim' if variants == 0 else 'fam']} is empty")
    staged = PlinkSet(out / "genotypes", samples, variants)
    for ext, source in files.items():
        _copy_plain(source, Path(f"{staged.prefix}.{ext}"))
    bed = Path(f"{staged.prefix}.bed")
    with bed.open("rb") as handle:
        magic = handle.read(3)
    if magic != BED_MAGIC:
        raise InputError(f"genotypes: {files['bed']} is not a SNP-major PLINK .bed (bad magic)")
    expected = 3 + math.ceil(samples / 4) * variants
    if bed.stat().st_size != expected:
        raise InputError(
            f"genotypes: {files['bed']} has {bed.stat().st_size} bytes but {files['bim']} "
            f"({variants} variants) and {files['fam']} ({samples} samples) need {expected}: "
            "the three files are not one set"
        )
    return staged


def read_sample_ids(psam: Path) -> pd.DataFrame:
    """The ID columns of a plink2 ``.psam`` (``#FID IID`` or ``#IID``) as FID (may be absent)
    and IID strings."""
    header = psam.read_text().splitlines()[0].lstrip("#").split()
    table = pd.read_csv(psam, sep=r"\s+", dtype=str, comment=None, skiprows=1, names=header)
    return table[[c for c in ("FID", "IID") if c in table.columns]]


def read_phenotype(path: Path, trait: str) -> pd.DataFrame:
    """A trait table (tab or space separated, header with ``IID`` (``FID`` optional) and the
    trait column) as IID and a float ``trait`` (NA where missing)."""
    if not path.is_file():
        raise InputError(f"phenotype: {path} does not exist")
    try:
        table = pd.read_csv(path, sep=r"\s+", dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise InputError(f"phenotype: {path} is not a table: {error}") from error
    table.columns = [c.lstrip("#") for c in table.columns]
    missing = [c for c in ("IID", trait) if c not in table.columns]
    if missing:
        raise InputError(
            f"phenotype: {path} has no column {', '.join(map(repr, missing))} "
            f"(columns: {', '.join(table.columns)})"
        )
    values = pd.to_numeric(table[trait].replace({"NA": None, "-9": None}), errors="coerce")
    bad = table[trait].notna() & ~table[trait].isin(["NA", "-9"]) & values.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # 1-based, after the header
        raise InputError(
            f"phenotype: {path} line {row}: {trait} = {table[trait].iloc[row - 2]!r} "
            "is not a number"
        )
    if table["IID"].duplicated().any():
        dup = table.loc[table["IID"].duplicated(), "IID"].iloc[0]
        raise InputError(f"phenotype: {path}: sample {dup!r} appears more than once")
    return pd.DataFrame({"IID": table["IID"], "trait": values})


def fam_phenotype(fam: Path) -> pd.DataFrame:
    """The phenotype of a ``.fam`` (column 6; -9 and NA are missing) as IID and ``trait``."""
    table = pd.read_csv(fam, sep=r"\s+", header=None, dtype=str, usecols=[1, 5])
    values = pd.to_numeric(table[5].replace({"NA": None, "-9": None}), errors="coerce")
    return pd.DataFrame({"IID": table[1], "trait": values})


def match_phenotype(
    samples: pd.DataFrame, phenotype: pd.DataFrame, genotypes: str, source: str, vcf: bool
) -> tuple[pd.DataFrame, list[str]]:
    """The phenotype in the genotypes' sample order, with their ID columns (plink2 ``--pheno``
    form); and warnings. InputError when no IID matches or (a VCF) the counts disagree."""
    warnings: list[str] = []
    known = set(samples["IID"])
    matched = phenotype["IID"].isin(known)
    if not matched.any():
        raise InputError(
            f"phenotype: no IID of {source} is a sample of {genotypes} "
            f"(e.g. {phenotype['IID'].iloc[0]!r} vs {samples['IID'].iloc[0]!r})"
        )
    extra = phenotype.loc[~matched, "IID"].tolist()
    if vcf and (extra or len(phenotype) != len(samples)):
        raise InputError(
            f"phenotype: {source} has {len(phenotype)} samples but the VCF {genotypes} has "
            f"{len(samples)}" + (f"; not in the VCF: {', '.join(extra[:5])}" if extra else "")
        )
    if extra:
        warnings.append(f"{len(extra)} phenotype samples are not genotyped (e.g. {extra[0]})")
    merged = samples.merge(phenotype, on="IID", how="left")
    missing = int(merged["trait"].isna().sum())
    if missing:
        warnings.append(f"{missing} of {len(samples)} genotyped samples have no phenotype")
    return merged, warnings


def plink2(ctx: StepContext, *args: str) -> None:
    """Run plink2 with the step's threads (its time and version recorded with the step)."""
    ctx.run([ctx.program("plink2"), "--threads", str(ctx.threads), *args])
