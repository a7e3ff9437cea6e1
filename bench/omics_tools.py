"""Benchmark: the omics location's tools, side by side in one run (the machine is shared:
compare ratios). The workflows end to end: ``bench/omics.py``.

    .venv/bin/python bench/omics_tools.py [--repeats 3] [--pairs 200000]

1. kallisto vs salmon: index + quantification of the same simulated reads (6 samples of
   art_illumina pairs from kallisto-examples' transcripts), time and accuracy against the
   drawn counts (Spearman, mean relative error);
2. plink2 --glm vs plink 1.9 --linear: the same association (bolt-lmm-example's 1000 Genomes
   EUR subset, 54,051 SNPs x 379 samples, its real phenotype, 5 PCs as covariates), time and
   agreement of the p-values.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from omics_assets.config import Layer, resolve  # noqa: E402
from omics_assets.demo import KALLISTO_TEST, unpack_eur_subset  # noqa: E402
from omics_assets.science import gwas  # noqa: E402
from omics_assets.science.domains import step  # noqa: E402
from omics_assets.science.steps import StepContext, execute_step  # noqa: E402

QUANT = ("index", "quantify")


def steps(
    domain: str,
    names: list[str],
    spec: dict,
    work: Path,
    prior: dict | None = None,
    **overrides: dict,
) -> dict:
    """Run steps outside Dagster (the science and the tools only) after ``prior`` results."""
    config = resolve(domain, [Layer("bench", {"name": "bench", "domain": domain})]).config
    done: dict = dict(prior or {})
    for name in names:
        out = work / name
        out.mkdir(parents=True)
        ctx = StepContext(
            name,
            {**config["steps"][name]["config"], **overrides.get(name, {})},
            spec,
            2,
            out,
            {k: v["output"] for k, v in done.items()},
            {k: v["dir"] for k, v in done.items()},
            frozenset(names),
        )
        result = execute_step(step(domain, name).run, ctx)
        assert result["status"] == "completed", (name, result["errors"])
        done[name] = {**result, "dir": out}
    return done


def quantifiers(scratch: Path, pairs: int, repeats: int) -> list[dict]:
    scratch.mkdir()
    sheet = scratch / "design.tsv"
    sheet.write_text(
        "sample\tcondition\n"
        + "".join(f"s{i}\t{'control' if i < 3 else 'treated'}\n" for i in range(6))
    )
    spec = {
        "transcripts": str(KALLISTO_TEST / "transcripts.fasta.gz"),
        "annotation": str(KALLISTO_TEST / "transcripts.gtf.gz"),
        "samplesheet": str(sheet),
        "reference_level": "control",
        "quantifier": "kallisto",
    }
    reads = steps(
        "rnaseq",
        ["reference", "samplesheet", "simulate_reads"],
        spec,
        scratch / "reads",
        simulate_reads={"pairs_per_sample": pairs, "seed": 3},
    )
    truth = pd.read_csv(reads["simulate_reads"]["dir"] / "truth.tsv", sep="\t").pivot(
        index="transcript", columns="sample", values="pairs"
    )
    rows = []
    for repeat in range(repeats):
        for tool in ("kallisto", "salmon"):  # alternating, so load affects both alike
            work = scratch / f"{tool}-{repeat}"
            started = time.perf_counter()
            done = steps(
                "rnaseq", ["index", "quantify"], {**spec, "quantifier": tool}, work, prior=reads
            )
            wall = time.perf_counter() - started
            estimate = pd.read_csv(
                done["quantify"]["dir"] / "transcript_counts.tsv", sep="\t", index_col=0
            ).loc[truth.index, truth.columns]
            present = truth.to_numpy() > 0
            error = (
                np.abs(estimate.to_numpy() - truth.to_numpy())[present] / truth.to_numpy()[present]
            )
            rows.append(
                {
                    "tool": tool,
                    "wall_s": wall,
                    "tool_s": sum(
                        done[s]["metadata"]["tool_seconds"] for s in ("index", "quantify")
                    ),
                    "spearman": stats.spearmanr(
                        truth.to_numpy().ravel(), estimate.to_numpy().ravel()
                    ).statistic,
                    "mean_relative_error": float(error.mean()),
                }
            )
    return rows


def association_tools(eur: Path, scratch: Path, repeats: int) -> list[dict]:
    pheno = pd.read_csv(f"{eur}.pheno.covars", sep=r"\s+")
    pheno[["FID", "IID", "PHENO"]].to_csv(scratch / "pheno.tsv", sep="\t", index=False)
    spec = {"genotypes": str(eur), "phenotype": str(scratch / "pheno.tsv"), "trait": "PHENO"}
    done = steps("gwas", ["genotypes", "qc", "pca"], spec, scratch / "prep")
    qc = str(done["qc"]["dir"] / "qc")
    bfile = scratch / "qc_bed"
    subprocess.run(
        ["plink2", "--pfile", qc, "--make-bed", "--out", str(bfile)],
        check=True,
        capture_output=True,
    )
    pheno_file = str(done["genotypes"]["dir"] / "phenotype.tsv")
    eigenvec = str(done["pca"]["dir"] / "pca.eigenvec")
    covar1 = scratch / "pcs.txt"  # plink 1.9 wants FID IID PC1..
    pcs = pd.read_csv(eigenvec, sep="\t").rename(columns={"#FID": "FID"})
    pcs.to_csv(covar1, sep="\t", index=False)
    pheno1 = scratch / "pheno1.txt"
    pd.read_csv(pheno_file, sep="\t").rename(columns={"#FID": "FID"}).to_csv(
        pheno1, sep="\t", index=False, na_rep="-9"
    )
    commands = {
        "plink2": [
            "plink2",
            "--threads",
            "2",
            "--pfile",
            qc,
            "--pheno",
            pheno_file,
            "--pheno-name",
            "trait",
            "--glm",
            "hide-covar",
            "--covar",
            eigenvec,
            "--covar-variance-standardize",
            "--out",
            str(scratch / "p2"),
        ],
        "plink1.9": [
            "plink1.9",
            "--threads",
            "2",
            "--bfile",
            str(bfile),
            "--pheno",
            str(pheno1),
            "--pheno-name",
            "trait",
            "--linear",
            "hide-covar",
            "--covar",
            str(covar1),
            "--allow-no-sex",
            "--out",
            str(scratch / "p1"),
        ],
    }
    rows = []
    for _ in range(repeats):
        for tool, argv in commands.items():
            started = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            rows.append({"tool": tool, "wall_s": time.perf_counter() - started})
    two = gwas.read_glm(next(scratch.glob("p2.trait.glm.linear")))
    one = pd.read_csv(scratch / "p1.assoc.linear", sep=r"\s+").dropna(subset=["P"])
    merged = two.merge(one, left_on="snp", right_on="SNP")
    agreement = float(np.corrcoef(-np.log10(merged["p"]), -np.log10(merged["P"]))[0, 1])
    for row in rows:
        row["log10p_correlation"] = agreement
        row["variants"] = len(two)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        scratch = Path(temp)
        eur = unpack_eur_subset(scratch)
        quant = pd.DataFrame(quantifiers(scratch / "quant", args.pairs, args.repeats))
        print("## kallisto vs salmon (index + quantify, 6 samples)\n")
        print(quant.groupby("tool").median().to_markdown(floatfmt=".3f"))
        (scratch / "assoc").mkdir()
        assoc = pd.DataFrame(association_tools(eur, scratch / "assoc", args.repeats))
        print("\n## plink2 vs plink 1.9 (association, 54k SNPs x 379 samples, 5 PCs)\n")
        print(assoc.groupby("tool").median().to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
