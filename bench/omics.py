"""Benchmark: the omics workflows end to end through ``omics run``, each on a fresh instance
and data root (no reuse): what the platform adds to the steps' own compute.

    .venv/bin/python bench/omics.py [--repeats 3] [--only dna,epigenome] [--large]

Per workflow: the command's wall time; the summed compute of its steps (each step's
``execution_time``: its tools and its Python science); the tools' share of it; the command's
fixed start (``omics run`` again, every step reused: start-up, config, plan, run record);
and the platform's cost per step, ``(wall - fixed start - compute) / steps``. Target
(issue 32): at most 0.3 s per step.

The demo workflows run as shipped. ``--large`` adds inputs large enough to mean something:
the dna workflow on a simulated 5 Mb genome at 30x (``science.dna_truth``), the epigenome
workflow on bsseq's BS.chr22 (exported by R, ``tests/omics/r/epigenome_bschr22.R``),
the GWAS of bolt-lmm-example's 1000 Genomes EUR subset and RNA-seq with 200,000 read pairs
per sample (tool comparisons: ``bench/omics_tools.py``).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OMICS = ROOT / ".venv" / "bin" / "omics"

Prepare = Callable[[Path], list[str]]  # a scratch folder -> the `omics run` arguments


def omics(argv: list[str], env: dict[str, str]) -> float:
    """Seconds of one ``omics run`` (it must succeed)."""
    started = time.perf_counter()
    done = subprocess.run([str(OMICS), "run", "--quiet", *argv], env=env, capture_output=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"omics run {' '.join(argv)}: exit {done.returncode}\n{done.stderr!r}")
    return seconds


def measure(scratch: Path, label: str, argv: list[str], reruns: int) -> dict:
    """One workflow on a fresh instance and data root: wall, compute, fixed start."""
    home, data = scratch / f"{label}-home", scratch / f"{label}-data"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "PLATFORM_DATA_ROOT": str(data)}
    wall = omics(argv, env)
    results = [json.loads(p.read_text()) for p in data.rglob("result.json")]
    compute = sum(r["metadata"]["execution_time"] for r in results)
    tools = sum(r["metadata"]["tool_seconds"] for r in results)
    fixed = median(omics(argv, env) for _ in range(reruns))  # every step reused
    return {
        "workflow": label,
        "steps": len(results),
        "wall_s": wall,
        "compute_s": compute,
        "tools_s": tools,
        "fixed_start_s": fixed,
        "platform_per_step_s": (wall - fixed - compute) / max(len(results), 1),
    }


def demo(name: str) -> Prepare:
    return lambda scratch: ["--workflow", name]


def large_dna(scratch: Path) -> list[str]:
    """A random 5 Mb genome with SNVs and indels, 30x art_illumina pairs, one sample."""
    from omics_assets.science.dna_truth import simulate_truth

    truth = simulate_truth(
        scratch / "dna5mb",
        snvs=5000,
        indels=500,
        seed=5,
        genome_length=5_000_000,
        contigs=4,
        coverage=30.0,
        threads=2,
    )
    config = scratch / "dna5mb.yaml"
    config.write_text(
        "name: dna\ndomain_specific:\n"
        f"  reference: {truth.reference}\n  samplesheet: {truth.samplesheet}\n"
    )
    return ["--config", str(config)]


def large_epigenome(scratch: Path) -> list[str]:
    """BS.chr22's two IMR90 replicates as Bismark coverage files, r1 against r2 (a null
    comparison: every CpG tested, few DMRs), as a workflow of its own (no simulate step)."""
    folder = scratch / "bschr22"
    folder.mkdir()
    script = ROOT / "tests" / "omics" / "r" / "epigenome_bschr22.R"
    subprocess.run(["Rscript", str(script), str(folder)], check=True, capture_output=True)
    sheet = folder / "samplesheet.tsv"
    sheet.write_text(
        "sample\tcondition\tcoverage\nr1\tcontrol\tr1.cov.gz\nr2\ttreated\tr2.cov.gz\n"
    )
    config = scratch / "bschr22.yaml"
    config.write_text(
        f"name: bschr22\ndomain: epigenome\ndomain_specific:\n  samplesheet: {sheet}\n"
        "  contrast: [control, treated]\n  annotation: null\n"
        "steps:\n  cpg_table: {config: {min_samples: 1}}\n"
    )
    return ["--config", str(config)]


def large_gwas(scratch: Path) -> list[str]:
    from omics_assets.demo import unpack_eur_subset

    eur = unpack_eur_subset(scratch)
    config = scratch / "eur.yaml"
    config.write_text(
        f"name: gwas\ndomain_specific:\n  genotypes: {eur}\n"
        f"  phenotype: {eur}.pheno.covars\n  trait: PHENO\n"
        "steps:\n  association: {config: {model: linear}}\n"
    )
    return ["--config", str(config)]


def large_rnaseq(scratch: Path) -> list[str]:
    return [
        "--workflow",
        "rnaseq",
        "--param",
        "steps.simulate_reads.config.pairs_per_sample=200000",
    ]


DEMOS: dict[str, Prepare] = {
    name: demo(name) for name in ("dna", "epigenome", "ecology", "multiomics", "gwas", "rnaseq")
}
LARGE: dict[str, Prepare] = {
    "dna 5 Mb 30x": large_dna,
    "epigenome BS.chr22": large_epigenome,
    "gwas EUR subset": large_gwas,
    "rnaseq 200k pairs": large_rnaseq,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh runs per workflow")
    parser.add_argument("--reruns", type=int, default=3, help="reused runs: the fixed start")
    parser.add_argument("--only", default="", help="comma-separated labels (default: all)")
    parser.add_argument("--large", action="store_true", help="add the large inputs")
    args = parser.parse_args()
    chosen = {**DEMOS, **(LARGE if args.large else {})}
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k.split()[0] in args.only.split(",")}
    rows = []
    with tempfile.TemporaryDirectory(prefix="omics-bench-") as temp:
        for index, (label, prepare) in enumerate(chosen.items()):
            scratch = Path(temp) / str(index)
            scratch.mkdir()
            argv = prepare(scratch)
            for repeat in range(args.repeats):
                print(f"{label} ({repeat + 1}/{args.repeats})", file=sys.stderr)
                rows.append(measure(scratch, f"{label}#{repeat}", argv, args.reruns))
    table = pd.DataFrame(rows)
    table["workflow"] = table["workflow"].str.split("#").str[0]
    summary = table.groupby("workflow", sort=False).agg(median)
    print(summary.to_markdown(floatfmt=".2f"))


if __name__ == "__main__":
    main()
