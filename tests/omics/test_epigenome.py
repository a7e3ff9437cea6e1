"""The epigenome domain against DSS (Debian r-bioc-dss, run once per session by
``r/dss_peer.R``) on real WGBS (bsseq's BS.chr22, exported to Bismark coverage files by
``r/epigenome_bschr22.R``) and on a simulated cohort with planted DMRs; bad coverage files;
the demo end to end through the CLI."""

import gzip
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omics_assets.cli import main
from omics_assets.science import epigenome_bismark as bismark
from omics_assets.science.epigenome_dss import call_dmrs
from omics_assets.science.epigenome_simulate import simulate_cohort
from omics_assets.science.steps import StepContext, execute_step
from tests.omics.conftest import StepRunner

pytestmark = pytest.mark.slow

R_DIR = Path(__file__).parent / "r"
REGION = (30_000_000, 32_000_000)  # chr22 bp, ~22,000 CpGs both replicates cover (DSS: ~13 s)
# the test cohort: the shipped demo's design (defaults/epigenome.yaml), another seed
COHORT = dict(
    seed=2,
    cpgs_per_chrom=10000,
    dmrs=30,
    samples_per_condition=3,
    coverage=15,
    dispersion=0.05,
    delta=0.3,
)


@pytest.fixture(scope="session")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cohort")
    simulate_cohort(out, **COHORT)
    return out


@pytest.fixture(scope="session")
def dss(tmp_path_factory: pytest.TempPathFactory, cohort: Path) -> Path:
    """DSS's outputs (see ``r/dss_peer.R``), once per session."""
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed (the test peer's package list installs it)")
    out = tmp_path_factory.mktemp("dss")
    argv = ["Rscript", str(R_DIR / "dss_peer.R"), str(out), *map(str, REGION)]
    subprocess.run([*argv, str(cohort / "samplesheet.tsv")], check=True, capture_output=True)
    return out


def overlaps(regions: pd.DataFrame, others: pd.DataFrame) -> np.ndarray:
    """Whether each region overlaps any of ``others`` (chrom, start, end; inclusive)."""
    return np.array(
        [
            (
                (others["chrom"] == r.chrom)
                & (others["start"] <= r.end)
                & (others["end"] >= r.start)
            ).any()
            for r in regions.itertuples()
        ],
        dtype=bool,
    )


def covered_bp(regions: pd.DataFrame) -> set[tuple[str, int]]:
    return {(r.chrom, bp) for r in regions.itertuples() for bp in range(r.start, r.end + 1)}


def read_dss_dmrs(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t").rename(columns={"chr": "chrom"})


def write_cov(table: pd.DataFrame, path: Path) -> None:
    percent = 100 * table["meth"] / table["cov"]
    lines = pd.DataFrame(
        {
            "chrom": table["chrom"],
            "start": table["pos"],
            "end": table["pos"],
            "percent": percent,
            "meth": table["meth"],
            "unmeth": table["cov"] - table["meth"],
        }
    )
    lines.to_csv(path, sep="\t", header=False, index=False)


def test_bschr22_matches_dss_smoothed_methylation_and_null_dmrs(
    dss: Path, tmp_path: Path, run_steps: StepRunner
) -> None:
    files = [dss / "bschr22" / f"{r}.cov.gz" for r in ("r1", "r2")]
    started = time.perf_counter()
    tables = [bismark.read_coverage(f) for f in files]
    bismark.check_shifts(dict(zip(files, tables, strict=True)))
    seconds = time.perf_counter() - started
    for path, table in zip(files, tables, strict=True):
        with gzip.open(path, "rt") as handle:
            assert len(table) == sum(1 for _ in handle) > 400_000  # every line, none at 0 reads
        assert table["chrom"].eq("chr22").all() and table["pos"].is_monotonic_increasing
    print(f"\nBS.chr22: parsed and checked 2 x ~470,000 lines in {seconds:.1f} s")
    # DSS ran on the region's CpGs both replicates cover: ours reads the same CpGs
    sheet = ["sample\tcondition\tcoverage"]
    for name, table in zip(("r1", "r2"), tables, strict=True):
        inside = table[table["pos"].between(*REGION)]
        write_cov(inside.drop(columns="line"), tmp_path / f"{name}.cov")
        sheet.append(f"{name}\t{name}\t{name}.cov")
    (tmp_path / "samplesheet.tsv").write_text("\n".join(sheet) + "\n")
    spec = {"samplesheet": str(tmp_path / "samplesheet.tsv"), "contrast": ["r1", "r2"]}
    steps = ["coverage", "cpg_table", "differential", "dmrs"]
    results = run_steps("epigenome", steps, spec, cpg_table={"min_coverage": 1, "min_samples": 1})
    ours = pd.read_parquet(results["differential"]["dir"] / "dml.parquet")
    theirs = pd.read_csv(dss / "bschr22_dml.tsv", sep="\t")  # group1 = r2, group2 = r1
    both = ours.merge(theirs, on="pos")
    assert len(both) >= 0.99 * max(len(ours), len(theirs))
    r1 = np.corrcoef(both["mu_control"], both["mu2"])[0, 1]
    r2 = np.corrcoef(both["mu_treated"], both["mu1"])[0, 1]
    stat = np.corrcoef(both["stat_x"], both["stat_y"])[0, 1]
    print(f"smoothed methylation vs DSS on {len(both)} CpGs: r1 r = {r1:.6f}, r2 r = {r2:.6f}")
    print(
        f"Wald statistic r = {stat:.6f}; max |mu diff| = "
        f"{np.abs(both['mu_control'] - both['mu2']).max():.2e}"
    )
    assert r1 >= 0.99 and r2 >= 0.99 and stat >= 0.99
    # r1 vs r2: one cell line twice, a null comparison
    dmrs = pd.read_csv(results["dmrs"]["dir"] / "dmrs.tsv", sep="\t")
    # at DSS's callDMR threshold, our other dmrs defaults
    strict = call_dmrs(ours, 1e-5, 0.1, min_cpgs=3, min_length=50, max_gap=500, min_significant=0.5)
    reference = read_dss_dmrs(dss / "bschr22_dmrs.tsv")
    shared = len(covered_bp(strict) & covered_bp(reference))
    print(
        f"null r1 vs r2, {len(ours)} CpGs: ours {len(dmrs)} DMRs at p < 1e-4 "
        f"({dmrs['n_cpgs'].sum()} CpGs), {len(strict)} at p < 1e-5; DSS callDMR (p < 1e-5) "
        f"{len(reference)}; shared bp at p < 1e-5: {shared} of "
        f"{len(covered_bp(strict))} (ours) and {len(covered_bp(reference))} (DSS)"
    )
    for called in (dmrs, strict, reference):
        assert len(called) <= len(ours) / 2000  # at most 1 DMR per 2,000 CpGs tested
    assert dmrs["n_cpgs"].sum() <= 0.005 * len(ours)


def test_simulated_cohort_recall_and_fdr_against_dss(
    cohort: Path, dss: Path, run_steps: StepRunner
) -> None:
    spec = {
        "samplesheet": str(cohort / "samplesheet.tsv"),
        "contrast": ["control", "treated"],
        "annotation": str(cohort / "genes.gtf"),
    }
    steps = ["coverage", "cpg_table", "differential", "dmrs", "annotate", "report"]
    results = run_steps("epigenome", steps, spec)
    truth = pd.read_csv(cohort / "truth.tsv", sep="\t")
    figures = {}
    for name, path in (
        ("ours (defaults: p < 1e-4, max_gap 500)", results["dmrs"]["dir"] / "dmrs.tsv"),
        ("DSS callDMR defaults (p < 1e-5)", dss / "sim_dmrs.tsv"),
        ("DSS callDMR at p < 1e-4", dss / "sim_dmrs_p1e-4.tsv"),
    ):
        called = read_dss_dmrs(path)
        recall = overlaps(truth, called).mean()
        fdr = 1 - overlaps(called, truth).mean() if len(called) else 0.0
        figures[name] = (recall, fdr)
        print(f"{name}: {len(called)} DMRs, recall {recall:.3f}, FDR {fdr:.3f}")
    (recall, fdr), *reference = figures.values()
    assert recall >= 0.90 and fdr <= 0.10
    assert all(recall >= r and fdr <= max(f, 0.10) for r, f in reference)
    found = pd.read_csv(results["annotate"]["dir"] / "dmr_genes.tsv", sep="\t")
    assert found["nearest_gene"].notna().any()
    assert (results["report"]["dir"] / "volcano.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("lines", "where", "what"),
    [
        (
            ["chr1\t100\t100\t50\t1\t1", "chr1\t200\t200\t75\t3\t1", "chr1\t300\t300\t90\t1\t3"],
            "line 3",
            "disagrees",
        ),
        (["chr1\t100\t100\t50\t1\t1", "chr1\t199\t200\t75\t3\t1"], "line 2", "0-based"),
        (["chr1\t100\t100\t50\t1\t1", "chr1\t200\t200\t75\t-3\t1"], "line 2", "negative"),
        (["chr1\t100\t100\t50\t1\t1", "chr1\t200\t200\t75\t3"], "line 2", "6"),
    ],
)
def test_a_bad_coverage_file_is_refused_naming_file_and_line(
    tmp_path: Path, lines: list[str], where: str, what: str
) -> None:
    bad = tmp_path / "bad.cov"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(bismark.InputError, match=f"{re.escape(str(bad))}: {where}: .*{what}"):
        bismark.read_coverage(bad)


def test_a_file_shifted_by_one_base_is_refused(cohort: Path, tmp_path: Path) -> None:
    sheet = bismark.read_samplesheet(cohort / "samplesheet.tsv", ["control", "treated"])
    tables = {Path(p): bismark.read_coverage(Path(p)) for p in sheet["coverage"]}
    bismark.check_shifts(tables)  # the cohort as written passes
    shifted = tmp_path / "shifted.cov"
    source = next(iter(tables.values()))
    write_cov(source.assign(pos=source["pos"] - 1), shifted)  # as if 0-based
    tables[shifted] = bismark.read_coverage(shifted)
    with pytest.raises(
        bismark.InputError, match=f"{re.escape(str(shifted))}: line 1: .*0- and 1-based"
    ):
        bismark.check_shifts(tables)


def test_the_coverage_step_fails_cleanly_on_a_bad_file(cohort: Path, tmp_path: Path) -> None:
    sheet = pd.read_csv(cohort / "samplesheet.tsv", sep="\t")
    with gzip.open(cohort / sheet["coverage"][1], "rt") as handle:
        lines = handle.read().splitlines()
    fields = lines[41].split("\t")
    lines[41] = "\t".join([*fields[:3], "12.5", *fields[4:]])  # percent off the counts
    (tmp_path / "bad.cov").write_text("\n".join(lines) + "\n")
    sheet["coverage"] = [str(cohort / c) for c in sheet["coverage"]]
    sheet.loc[1, "coverage"] = str(tmp_path / "bad.cov")
    sheet.to_csv(tmp_path / "samplesheet.tsv", sep="\t", index=False)
    out = tmp_path / "out"
    out.mkdir()
    ctx = StepContext(
        step="coverage",
        config={},
        domain_specific={
            "samplesheet": str(tmp_path / "samplesheet.tsv"),
            "contrast": ["control", "treated"],
        },
        threads=1,
        out=out,
    )
    from omics_assets.science.epigenome import coverage

    result = execute_step(coverage, ctx)
    assert result["status"] == "failed"
    assert f"{tmp_path / 'bad.cov'}: line 42: percent 12.5 disagrees" in result["errors"][0]
    assert not any(out.iterdir())  # refused before writing


def test_demo_runs_and_exports_the_planted_dmrs(omics_home: Path, tmp_path: Path) -> None:
    assert main(["run", "--workflow", "epigenome", "--quiet"]) == 0
    out = tmp_path / "dmrs.tsv"
    assert main(["export", "--workflow", "epigenome", "--step", "dmrs", "--out", str(out)]) == 0
    dmrs = pd.read_csv(out, sep="\t")
    assert list(dmrs.columns) == ["chrom", "start", "end", "n_cpgs", "mean_diff", "p"]
    (truth_path,) = (omics_home / "data").rglob("simulate/*/truth.tsv")
    truth = pd.read_csv(truth_path, sep="\t")
    recall, precision = overlaps(truth, dmrs).mean(), overlaps(dmrs, truth).mean()
    print(f"\ndemo: {len(dmrs)} DMRs, recall {recall:.3f}, precision {precision:.3f}")
    assert recall >= 0.9 and precision >= 0.9
