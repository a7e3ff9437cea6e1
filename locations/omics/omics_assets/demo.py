"""Where the omics demo data lies (Debian packages, installed by ``deploy/apt-packages.txt``)
and how to unpack the one that ships as an archive. Nothing is downloaded."""

import tarfile
from pathlib import Path

KALLISTO_TEST = Path("/usr/share/doc/kallisto/test")  # kallisto-examples
GEMMA_EXAMPLE = Path("/usr/share/doc/gemma/example")  # gemma-doc (HS1940 mice)
BOLT_EXAMPLES = Path("/usr/share/doc/bolt-lmm/examples/examples.tar.xz")  # bolt-lmm-example
LI_SUM = Path(__file__).parent / "data" / "Li_sum.txt.gz"  # LNCaP counts (goseq)
EUR_SUBSET_FILES = ("EUR_subset.bed", "EUR_subset.bim", "EUR_subset.fam", "EUR_subset.pheno.covars")


def unpack_eur_subset(folder: Path) -> Path:
    """bolt-lmm-example's 1000 Genomes EUR subset (379 samples, 54,051 SNPs on chr17-22, a
    real phenotype in ``.pheno.covars``) unpacked into ``folder``; returns its PLINK prefix."""
    with tarfile.open(BOLT_EXAMPLES) as archive:
        for name in EUR_SUBSET_FILES:
            archive.extract(name, folder, filter="data")
    return folder / "EUR_subset"
