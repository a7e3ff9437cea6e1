"""The epigenome domain against DSS (Debian r-bioc-dss, run once per session by
``r/dss_peer.R``) on real WGBS (bsseq's BS.chr22, exported to Bismark coverage files by
``r/epigenome_bschr22.R``) and on a simulated cohort with planted DMRs (per CpG and per DMR);
bad coverage files and samplesheets; the demo end to end through the CLI. Only the tests
that need R (the ``dss`` fixture) are ``slow``.

BS.chr22 is compared with DSS on chr22:30-32 Mb (~22,000 CpGs both replicates cover): DSS's
smoothed DMLtest takes ~14 s there, the whole chromosome would take minutes; our parser reads
and checks the whole chromosome."""

import gzip
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omics_assets.cli import main
from omics_assets.inputs import _sheet_reads
from omics_assets.science import epigenome_bismark as bismark
from omics_assets.science.epigenome import coverage, cpg_table
from omics_assets.science.epigenome_dss import call_dmrs
from omics_assets.science.epigenome_genes import annotate_regions, read_genes
from omics_assets.science.epigenome_simulate import simulate_cohort
from omics_assets.science.steps import InputError, StepContext, execute_step
from platform_core.confine import ConfinementError
from tests.omics.conftest import StepRunner

R_DIR = Path(__file__).parent / "r"
REGION = (30_000_000, 32_000_000)  # chr22 bp, ~22,000 CpGs both replicates cover (DSS: ~14 s)
CONTRAST = ["control", "treated"]
# the test cohort: the shipped demo's design (defaults/epigenome.yaml), another seed
COHORT = {"seed": 2, "cpgs_per_chrom": 10000, "dmrs": 30, "samples_per_condition": 3}
COHORT |= {"coverage": 15, "dispersion": 0.05, "delta": 0.3}


@pytest.fixture(scope="session")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cohort")
    simulate_cohort(out, **COHORT)
    return out


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cohort (2 x 3,000 CpGs, 4 planted DMRs) for the quick tests."""
    out = tmp_path_factory.mktemp("small")
    simulate_cohort(out, **{**COHORT, "cpgs_per_chrom": 3000, "dmrs": 4})
    return out


@pytest.fixture(scope="session")
def dss(tmp_path_factory: pytest.TempPathFactory, cohort: Path) -> Path:
    """DSS's outputs (see ``r/dss_peer.R``), once per session; R's error in the failure."""
    out = tmp_path_factory.mktemp("dss")
    script = R_DIR / "dss_peer.R"
    argv = ["Rscript", str(script), str(out), *map(str, REGION), str(cohort / "samplesheet.tsv")]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    except FileNotFoundError:
        pytest.fail("Rscript is not installed (the test peers' package list installs it)")
    if done.returncode != 0:
        pytest.fail(f"{script} failed (exit {done.returncode}); R said:\n{done.stderr[-4000:]}")
    return out


def overlaps(regions: pd.DataFrame, others: pd.DataFrame) -> np.ndarray:
    """Whether each region overlaps any of ``others`` (chrom, start, end; inclusive)."""
    pairs = regions.reset_index(drop=True).reset_index().merge(others, on="chrom")
    hit = pairs.loc[(pairs["start_y"] <= pairs["end_x"]) & (pairs["end_y"] >= pairs["start_x"])]
    return np.isin(np.arange(len(regions)), hit["index"])


def covered_bp(regions: pd.DataFrame) -> set[tuple[str, int]]:
    return {(r.chrom, bp) for r in regions.itertuples() for bp in range(r.start, r.end + 1)}


def read_dss_dmrs(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t").rename(columns={"chr": "chrom"})


def write_cov(table: pd.DataFrame, path: Path) -> None:
    meth, cov = table["meth"], table["cov"]
    fields = [table["chrom"], table["pos"], table["pos"], 100 * meth / cov, meth, cov - meth]
    pd.concat(fields, axis=1).to_csv(path, sep="\t", header=False, index=False)


@pytest.mark.slow
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


@pytest.mark.slow
def test_simulated_cohort_per_cpg_matches_dss(
    cohort: Path, dss: Path, run_steps: StepRunner
) -> None:
    """The multi-replicate branch (3 vs 3, smoothed, shrunk dispersions) against DSS's
    DMLtest CpG by CpG. DSS tests every CpG with reads, so our QC keeps every CpG with reads
    (min_samples 1): the smoothing windows see the same neighbours."""
    spec = {"samplesheet": str(cohort / "samplesheet.tsv"), "contrast": CONTRAST}
    steps = ["coverage", "cpg_table", "differential"]
    results = run_steps("epigenome", steps, spec, cpg_table={"min_coverage": 1, "min_samples": 1})
    ours = pd.read_parquet(results["differential"]["dir"] / "dml.parquet")
    theirs = read_dss_dmrs(dss / "sim_dml.tsv")  # group1 = treated, group2 = control
    both = ours.merge(theirs, on=["chrom", "pos"])
    assert len(both) == len(ours) == len(theirs) > 19_000  # the same CpGs pass hasCoverage
    pairs = (("treated", "1"), ("control", "2"))
    mu = max(np.abs(both[f"mu_{g}"] - both[f"mu{d}"]).max() for g, d in pairs)
    phi = max((np.abs(both[f"phi_{g}"] / both[f"phi{d}"] - 1)).max() for g, d in pairs)
    stat = np.corrcoef(both["stat_x"], both["stat_y"])[0, 1]
    print(
        f"\n3 vs 3 per CpG vs DSS on {len(both)} CpGs: max |mu diff| {mu:.2e}, max phi rel "
        f"diff {phi:.2e}, Wald statistic r = {stat:.10f}, max |stat diff| "
        f"{np.abs(both['stat_x'] - both['stat_y']).max():.2e}"
    )
    # tolerances of the optimisers: DSS's optimize (tol 1e-3 on log phi), our golden section
    assert mu <= 1e-4 and phi <= 1e-2 and stat >= 0.9999


@pytest.mark.slow
def test_simulated_cohort_recall_and_fdr_against_dss(
    cohort: Path, dss: Path, run_steps: StepRunner
) -> None:
    spec = {"samplesheet": str(cohort / "samplesheet.tsv"), "contrast": CONTRAST}
    spec["annotation"] = str(cohort / "genes.gtf")
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
    report = (results["report"]["dir"] / "report.md").read_text()
    assert "smoothed over a 500 bp moving window" in report and "p < 0.0001" in report


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
    sheet = bismark.read_samplesheet(cohort / "samplesheet.tsv", CONTRAST)
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


def relabelled_sheet(cohort: Path, out: Path, **changes: dict[str, str]) -> Path:
    """The cohort's samplesheet with absolute coverage paths and ``changes`` per column
    (old value -> new), written to ``out``."""
    sheet = pd.read_csv(cohort / "samplesheet.tsv", sep="\t", dtype=str)
    sheet["coverage"] = [str(cohort / c) for c in sheet["coverage"]]
    for column, mapping in changes.items():
        sheet[column] = sheet[column].replace(mapping)
    sheet.to_csv(out, sep="\t", index=False)
    return out


def test_the_coverage_step_fails_cleanly_on_a_bad_file(cohort: Path, tmp_path: Path) -> None:
    with gzip.open(cohort / "control_2.cov.gz", "rt") as handle:
        lines = handle.read().splitlines()
    fields = lines[41].split("\t")
    lines[41] = "\t".join([*fields[:3], "12.5", *fields[4:]])  # percent off the counts
    (tmp_path / "bad.cov").write_text("\n".join(lines) + "\n")
    bad = {str(cohort / "control_2.cov.gz"): str(tmp_path / "bad.cov")}
    spec = {"samplesheet": str(relabelled_sheet(cohort, tmp_path / "sheet.tsv", coverage=bad))}
    (out := tmp_path / "out").mkdir()
    ctx = StepContext("coverage", {}, spec | {"contrast": CONTRAST}, 1, out)
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


def test_numeric_labels_give_the_same_results_as_names(
    small: Path, tmp_path: Path, run_steps: StepRunner
) -> None:
    """Samples ``01``..``06`` in conditions ``0`` and ``1``: labels stay text through every
    step (read as numbers, 0/1 never match the contrast and ``01`` loses its zero)."""
    steps = ["coverage", "cpg_table", "differential", "dmrs", "report"]
    named = run_steps(
        "epigenome", steps, {"samplesheet": str(small / "samplesheet.tsv"), "contrast": CONTRAST}
    )
    expected = pd.read_parquet(named["differential"]["dir"] / "dml.parquet")
    samples = {f"{c}_{r}": f"{i * 3 + r:02d}" for i, c in enumerate(CONTRAST) for r in (1, 2, 3)}
    sheet = relabelled_sheet(
        small, tmp_path / "numeric.tsv", sample=samples, condition={"control": "0", "treated": "1"}
    )
    numeric = run_steps("epigenome", steps, {"samplesheet": str(sheet), "contrast": ["0", "1"]})
    pd.testing.assert_frame_equal(
        pd.read_parquet(numeric["differential"]["dir"] / "dml.parquet"), expected
    )
    assert (
        numeric["dmrs"]["output"]["metrics"]["dmrs"]
        == named["dmrs"]["output"]["metrics"]["dmrs"]
        > 0
    )
    qc = pd.read_csv(numeric["cpg_table"]["dir"] / "qc.tsv", sep="\t", dtype=str)
    assert list(qc["sample"]) == ["01", "02", "03", "04", "05", "06"]


def sheet_outcome(sheet: Path, roots: tuple[Path, ...]) -> tuple[object, object]:
    """What the core confines of a samplesheet (``_sheet_reads``: the files, or "refused")
    and what the coverage step would read (the files, or "refused")."""
    try:
        core: object = {p.resolve() for p in _sheet_reads(sheet, roots)}
    except ConfinementError:
        core = "refused"
    try:
        step: object = {Path(p) for p in bismark.read_samplesheet(sheet, CONTRAST)["coverage"]}
    except InputError:
        step = "refused"
    return core, step


@pytest.mark.parametrize(
    ("name", "first_line", "core_expected"),
    [
        ("samples.tsv", "", "refused"),  # the control: the core refuses the outside file
        ("samples.csv", "", set()),  # a TSV named .csv: one column for both, no coverage
        ("samples.tsv", "# a note\n", set()),  # a comment line: the header for both
    ],
)
def test_the_step_reads_only_what_the_core_confined(
    small: Path, tmp_path: Path, name: str, first_line: str, core_expected: object
) -> None:
    (root := tmp_path / "root").mkdir()
    outside = small / "control_1.cov.gz"  # outside the allowed root
    rows = [f"{s}\t{c}\t{s}.cov.gz" for c in CONTRAST for s in (f"{c}_2", f"{c}_3")]
    for row in rows:
        (root / row.split("\t")[2]).write_bytes((small / row.split("\t")[2]).read_bytes())
    lines = ["sample\tcondition\tcoverage", f"control_1\tcontrol\t{outside}", *rows]
    sheet = root / name
    sheet.write_text(first_line + "\n".join(lines) + "\n")
    core, step = sheet_outcome(sheet, (root,))
    assert core == core_expected
    # a run starts only when the core confines the sheet; then the step reads nothing else
    assert core == "refused" or step == "refused" or step <= core
    if core == "refused":  # the same sheet with only inside files: both read the same files
        sheet.write_text("\n".join(line for line in lines if str(outside) not in line) + "\n")
        core, step = sheet_outcome(sheet, (root,))
        assert step == core and len(step) == 4


def test_two_samples_naming_one_coverage_file_are_refused(small: Path, tmp_path: Path) -> None:
    sheet = relabelled_sheet(small, tmp_path / "sheet.tsv")
    rows = sheet.read_text().splitlines()
    rows[5] = rows[5].replace("treated_2.cov.gz", "treated_1.cov.gz")  # line 6
    sheet.write_text("\n".join(rows) + "\n")
    message = "sheet.tsv line 6: sample 'treated_2' names the coverage file of line 5"
    with pytest.raises(InputError, match=message):
        bismark.read_samplesheet(sheet, CONTRAST)


def test_min_samples_above_a_conditions_samples_is_refused(
    small: Path, tmp_path: Path, run_steps: StepRunner
) -> None:
    spec = {"samplesheet": str(small / "samplesheet.tsv"), "contrast": CONTRAST}
    done = run_steps("epigenome", ["coverage"], spec)["coverage"]
    config = {"min_coverage": 1, "min_samples": 4}
    inputs = {"inputs": {"coverage": done["output"]}, "input_dirs": {"coverage": done["dir"]}}
    ctx = StepContext("cpg_table", config, spec, 1, tmp_path / "cpg_table", **inputs)
    with pytest.raises(InputError, match="min_samples is 4 but condition 'control' has 3 sample"):
        cpg_table(ctx)


def test_annotation_matches_a_direct_search(small: Path, tmp_path: Path) -> None:
    """Nearest and overlapping genes of random regions, against every gene measured one by
    one; the GTF gzipped under a plain name (recognised by its bytes)."""
    gtf = tmp_path / "genes.gtf"
    gtf.write_bytes(gzip.compress((small / "genes.gtf").read_bytes()))
    genes = read_genes(gtf)
    rng = np.random.default_rng(0)
    start = rng.integers(1, genes["end"].max(), size=300)
    regions = pd.DataFrame(
        {
            "chrom": rng.choice(sorted(set(genes["chrom"])), size=300),
            "start": start,
            "end": start + rng.integers(0, 20_000, size=300),
        }
    )
    found = annotate_regions(regions, genes, max_distance=10_000)
    for row in found.itertuples():
        on = genes[genes["chrom"] == row.chrom]
        gap = np.maximum(0, np.maximum(on["start"] - row.end, row.start - on["end"]))
        assert row.overlapping_genes == ",".join(on.loc[gap == 0, "gene_name"])
        if gap.min() <= 10_000:
            assert row.distance == gap.min()
            assert gap[on["gene_name"] == row.nearest_gene].min() == gap.min()
        else:
            assert row.nearest_gene == "" and pd.isna(row.distance)
    assert found["distance"].dtype == "Int64" and (found["distance"] == 0).sum() > 10
