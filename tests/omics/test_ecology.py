"""The ecology domain against R's vegan on vegan's own data sets, its bad input, and the
shipped demo end to end.

vegan (``tests/omics/r/vegan_reference.R``, run once per session) exports each data set it
uses and its results; our steps read exactly those files. The data sets: ``dune`` (cover
classes: abundances) with ``dune.env$Management``; ``varespec`` (percent cover: abundances)
with a factor derived in the R script, ``Al_level`` = "high" where ``varechem$Al`` is above its
median; ``BCI`` (counts of trees) with ``BCI.env$Habitat``. Abundances are not rarefied by the
step; vegan's ``rarefy`` on dune's integers is compared with the function itself. PERMANOVA:
999 permutations on both sides (ours seeded with the shipped default seed 1, vegan's with
``set.seed(1)``). Only the tests that need R (the ``vegan`` fixture) are ``slow``."""

import math
import re
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import omics_assets
from omics_assets.cli import main
from omics_assets.science import ecology_stats
from omics_assets.science.ecology import community
from omics_assets.science.ecology_stats import bray_curtis, jaccard, permanova, rarefy
from omics_assets.science.steps import StepContext, execute_step
from platform_core import cli
from tests.omics.conftest import StepRunner
from tests.support import latest_metadata

R_SCRIPT = Path(__file__).parent / "r" / "vegan_reference.R"
DATA = Path(omics_assets.__file__).parent / "data"
PERMUTATIONS = 999
SETS = {"dune": "abundances", "varespec": "abundances", "BCI": "counts"}  # values
FILES = {"counts": "counts", "metadata": "env"}  # domain_specific key: the R script's file
STEPS = ["community", "qc", "diversity", "rarefaction", "beta", "ordination", "permanova"]


@pytest.fixture(scope="session")
def vegan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of vegan's data sets and results (see the R script's header)."""
    out = tmp_path_factory.mktemp("vegan")
    done = subprocess.run(
        ["Rscript", str(R_SCRIPT), str(out), str(PERMUTATIONS)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        pytest.fail(f"{R_SCRIPT} failed (exit {done.returncode}); R said:\n{done.stderr}")
    return out


def read(path: Path, **kwargs: object) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"sample": str}, **kwargs)


def monte_carlo_bound(p: float, permutations: int = PERMUTATIONS) -> float:
    """How far two independent permutation p values at the same p may differ: three standard
    errors of a difference of two estimates, sqrt(2 p (1 - p) / n), plus one step 1 / (n + 1)
    of their grid."""
    return 3 * math.sqrt(2 * p * (1 - p) / permutations) + 1 / (permutations + 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SETS))
def test_the_steps_equal_vegan(name: str, vegan: Path, run_steps: StepRunner) -> None:
    values = SETS[name]
    files = {key: str(vegan / f"{name}_{suffix}.tsv") for key, suffix in FILES.items()}
    results = run_steps(
        "ecology",
        STEPS,
        {**files, "factor": "factor"},
        community={"values": values},
        ordination={"axes": 50},  # every axis of a positive eigenvalue (<= 49 here)
    )

    def output(step: str, file: str) -> Path:
        return results[step]["dir"] / results[step]["output"]["files"][file]

    # alpha diversity: specnumber and diversity(), to 1e-9
    ours = read(output("diversity", "diversity")).set_index("sample")
    theirs = read(vegan / f"{name}_diversity.tsv").set_index("sample")
    assert list(ours.columns[:3]) == ["richness", "shannon", "simpson"]
    assert ours.index.equals(theirs.index)
    for column in ["richness", "shannon", "simpson", "invsimpson"]:
        np.testing.assert_allclose(ours[column], theirs[column], rtol=0, atol=1e-9)
    # vegdist bray and binary jaccard, to 1e-12
    for ours_file, theirs_file in [("bray_curtis", "bray"), ("jaccard", "jaccard")]:
        ours_matrix = read(output("beta", ours_file)).set_index("sample")
        theirs_matrix = read(vegan / f"{name}_{theirs_file}.tsv").set_index("sample")
        assert ours_matrix.index.equals(theirs_matrix.index)
        np.testing.assert_allclose(ours_matrix, theirs_matrix, rtol=0, atol=1e-12)
    # PCoA eigenvalues: cmdscale's, negative ones included
    eigenvalues = read(output("ordination", "eigenvalues"))["eigenvalue"]
    cmdscale = read(vegan / f"{name}_pcoa_eig.tsv")["eigenvalue"]
    np.testing.assert_allclose(eigenvalues, cmdscale, rtol=0, atol=1e-9)
    # and its coordinates on every positive axis, each up to its sign (arbitrary)
    points = read(output("ordination", "pcoa")).set_index("sample")
    theirs_points = read(vegan / f"{name}_pcoa_points.tsv").set_index("sample")
    assert points.shape == theirs_points.shape and points.index.equals(theirs_points.index)
    for axis in points.columns:
        sign = np.sign((points[axis] * theirs_points[axis]).sum())
        np.testing.assert_allclose(sign * points[axis], theirs_points[axis], rtol=0, atol=1e-9)
    # adonis2: pseudo-F and R^2 to 1e-6; p within Monte-Carlo error
    ours_tests = read(output("permanova", "permanova")).set_index("metric")
    adonis = read(vegan / f"{name}_adonis.tsv").set_index("metric")
    assert list(ours_tests.columns[:4]) == ["factor", "pseudo_f", "r2", "p"]
    for metric, expected in adonis.iterrows():
        got = ours_tests.loc[metric]
        assert got["pseudo_f"] == pytest.approx(expected["pseudo_f"], abs=1e-6)
        assert got["r2"] == pytest.approx(expected["r2"], abs=1e-6)
        assert abs(got["p"] - expected["p"]) <= monte_carlo_bound(expected["p"]), metric
    rarefaction = results["rarefaction"]["output"]
    assert rarefaction["metrics"]["rarefied"] is (values == "counts")
    if values == "counts":  # rarefy(x, min(rowSums(x)), se = TRUE)
        rarefied = read(output("rarefaction", "rarefaction")).set_index("sample")
        reference = read(vegan / f"{name}_rarefy.tsv").set_index("sample")
        assert (rarefied["depth"] == reference["depth"]).all()
        np.testing.assert_allclose(rarefied["expected_richness"], reference["expected"], atol=1e-9)
        np.testing.assert_allclose(rarefied["se"], reference["se"], atol=1e-9)
    else:  # abundances are not individuals: no curves, and the reason
        assert rarefaction["files"] == {"report": "report.md"}
        assert "abundances" in rarefaction["metrics"]["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("block", [ecology_stats.PAIR_BLOCK, 500])
def test_rarefy_equals_vegan_on_dune_and_bci(
    vegan: Path, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function, as vegan's ``rarefy(x, min(rowSums(x)), se = TRUE)``: on dune's integer
    cover classes (which the step does not rarefy) and on BCI; with the taxon pairs of the
    standard error in one block, and in blocks of 500 pairs (2-3 rows of BCI's taxa)."""
    monkeypatch.setattr(ecology_stats, "PAIR_BLOCK", block)
    for name in ("dune", "BCI"):
        table = read(vegan / f"{name}_counts.tsv").set_index("sample")
        reference = read(vegan / f"{name}_rarefy.tsv").set_index("sample")
        depth = int(reference["depth"].iloc[0])
        ours = np.array([rarefy(row, depth) for row in table.to_numpy(dtype=float)])
        np.testing.assert_allclose(ours[:, 0], reference["expected"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(ours[:, 1], reference["se"], rtol=0, atol=1e-9)


def test_rarefy_memory_stays_bounded_for_thousands_of_taxa(monkeypatch: pytest.MonkeyPatch) -> None:
    """2000 taxa: 2 million taxon pairs in the standard error, 100 MB at once; in blocks,
    the peak stays under 40 MB and the value is the one-block value."""
    counts = np.random.default_rng(3).negative_binomial(0.5, 0.05, size=2000).astype(float)
    tracemalloc.start()
    try:
        blocked = rarefy(counts, 400)
        peak = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    assert peak < 40, peak
    monkeypatch.setattr(ecology_stats, "PAIR_BLOCK", 10**8)
    assert blocked == pytest.approx(rarefy(counts, 400), rel=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SETS))
def test_permanova_p_equals_vegan_with_its_permutations(name: str, vegan: Path) -> None:
    """With the permutations adonis2 drew (its shuffleSet), the p values are vegan's own."""
    counts = read(vegan / f"{name}_counts.tsv").set_index("sample").to_numpy(dtype=float)
    groups = read(vegan / f"{name}_env.tsv")["factor"].to_numpy()
    orders = np.loadtxt(vegan / f"{name}_permutations.tsv", dtype=int, ndmin=2) - 1
    assert orders.shape == (PERMUTATIONS, len(groups))
    adonis = read(vegan / f"{name}_adonis.tsv").set_index("metric")
    for metric, distance in [("bray_curtis", bray_curtis), ("jaccard", jaccard)]:
        test = permanova(distance(counts), groups, orders, seed=0)
        assert test.p == pytest.approx(adonis.loc[metric, "p"], abs=1e-12), metric
        assert test.pseudo_f == pytest.approx(adonis.loc[metric, "pseudo_f"], abs=1e-9)


def test_qc_drops_empty_samples_and_singletons(tmp_path: Path, run_steps: StepRunner) -> None:
    table = tmp_path / "table.csv"
    table.write_text(
        "site,a,b,c,d,gone\n# a comment line\n"
        "s1,5,3,0,1,0\ns2,0,0,0,0,0\ns3,2,4,6,0,0\ns4,1,1,1,0,0\n"
    )
    meta = tmp_path / "meta.tsv"
    meta.write_text("sample\tgroup\ns1\tx\ns2\tx\ns3\ty\ns4\ty\ns5\ty\n")
    spec = {"counts": str(table), "metadata": str(meta), "factor": "group"}
    results = run_steps(
        "ecology", ["community", "qc", "diversity"], spec, qc={"singletons": "drop"}
    )
    qc = results["qc"]["output"]
    assert qc["metrics"]["singletons_dropped"] == 1  # d: 1 in all
    assert qc["metrics"]["absent_taxa_dropped"] == 1  # gone
    assert results["qc"]["checks"]["samples_kept"]["passed"] is False
    report = read(results["qc"]["dir"] / "qc.tsv").set_index("sample")
    assert report.loc["s2", "reason"] == "empty" and not report.loc["s2", "kept"]
    diversity = read(results["diversity"]["dir"] / "diversity.tsv").set_index("sample")
    assert diversity.index.tolist() == ["s1", "s3", "s4"]
    assert diversity.loc["s1", "richness"] == 2  # a, b (d dropped)
    assert diversity.loc["s4", "simpson"] == pytest.approx(2 / 3, abs=1e-12)


def run_community(
    tmp_path: Path, counts: str, values: str = "counts", metadata: str = "", factor: str = ""
) -> dict:
    """The community step on a counts text (and a metadata text with its factor); a failure
    must leave nothing written."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "counts.tsv").write_text(counts)
    (tmp_path / "meta.tsv").write_text(metadata)
    domain_specific = {
        "counts": str(tmp_path / "counts.tsv"),
        "metadata": str(tmp_path / "meta.tsv") if metadata else None,
        "factor": factor or None,
    }
    out = tmp_path / "out"
    out.mkdir()
    result = execute_step(
        community, StepContext("community", {"values": values}, domain_specific, 1, out)
    )
    if result["status"] == "failed":
        assert not any(out.iterdir()), "nothing written on failure"
    return result


@pytest.mark.parametrize(
    ("counts", "values", "message"),
    [
        ("sample\ta\tb\nx\t1\t-2\n", "counts", r"line 2, column 3 \(b\): '-2' is negative"),
        (
            "sample\ta\tb\nx\t1\t2\ny\t2.5\t0\n",
            "counts",
            r"line 3, column 2 \(a\): '2.5' is not an integer count",
        ),
        ("sample\ta\tb\nx\t1\t-0.5\n", "abundances", r"line 2, column 3 \(b\): '-0.5' is negative"),
        ("sample\ta\tb\nx\t1\tfew\n", "counts", r"line 2, column 3 \(b\): 'few' is not a number"),
        ("sample\ta\tb\nx\t1\t\n", "counts", r"line 2, column 3 \(b\): '' is not a number"),
        ("sample\ta\tb\nx\t1\t2\nx\t3\t4\n", "counts", r"line 3: sample 'x' appears again"),
        ("sample\ta\ta\nx\t1\t2\n", "counts", r"taxon 'a' is the name of columns 2 and 3"),
        ("sample\ta\tb\nx\t1\n", "counts", r"line 2: 2 fields, the header has 3"),
        ("sample\ta\tb\n", "counts", r"a header but no samples"),
        ("", "counts", r"the table is empty"),
    ],
)
def test_bad_community_tables_are_refused_with_file_and_place(
    tmp_path: Path, counts: str, values: str, message: str
) -> None:
    result = run_community(tmp_path, counts, values)
    assert result["status"] == "failed"
    error = result["errors"][0]
    assert str(tmp_path / "counts.tsv") in error
    assert re.search(message, error), error


META = "sample\tsite\n"  # the header of most metadata cases below


@pytest.mark.parametrize(
    ("metadata", "factor", "message"),
    [
        ("sample\tsite\tsite\nx\ta\tb\n", "site", "line 1: column 'site' is the name of"),
        (META + "x\ta\ny\tb\nx\tc\n", "site", r"line 4: sample 'x' appears again \(first"),
        (META + "x\ta\ny\tb\n", "sample", r"factor is 'sample', the column of sample IDs"),
        (META + "x\ta\ny\t\nz\tb\n", "site", "line 3: sample 'y' has no value of the"),
        (META + "x\ta\ny\n", "site", "line 3: 1 fields, the header has 2"),
        ("sample\tother\nx\t1\ny\t2\n", "site", "line 1: no column 'site', named by domain_"),
        (META + "x\tg1\n", "site", r"counts\.tsv: 2 sample\(s\) missing from the metadata .*"
         r"meta\.tsv: 'y' \(line 3\), 'z' \(line 4\)"),
    ],
)  # fmt: skip
def test_bad_metadata_is_refused_with_file_and_line(
    tmp_path: Path, metadata: str, factor: str, message: str
) -> None:
    counts = "sample\ta\tb\nx\t1\t2\ny\t3\t4\nz\t0\t1\n"
    result = run_community(tmp_path, counts, metadata=metadata, factor=factor)
    assert result["status"] == "failed"
    assert re.search(message, result["errors"][0]), result["errors"]
    assert factor == "sample" or str(tmp_path) in result["errors"][0]
    extra = META + "z\tg\ny\th\nx\tg\nw\th\n"  # rows of other samples: ignored
    ok = run_community(tmp_path / "ok", counts, metadata=extra, factor="site")
    assert ok["status"] == "completed"


def test_abundances_are_not_rarefied(tmp_path: Path, run_steps: StepRunner) -> None:
    """Abundances (cover) have alpha diversity but no rarefaction: the step completes (what
    follows still runs), with no curves and the reason."""
    table = tmp_path / "cover.tsv"
    table.write_text("sample\ta\tb\nx\t0.5\t2\ny\t1.25\t0\n")
    results = run_steps(
        "ecology",
        ["community", "qc", "diversity", "rarefaction"],
        {"counts": str(table), "metadata": None, "factor": None},
        community={"values": "abundances"},
    )
    shannon = read(results["diversity"]["dir"] / "diversity.tsv")["shannon"]
    assert shannon.tolist() == pytest.approx([-(0.2 * math.log(0.2) + 0.8 * math.log(0.8)), 0])
    rarefaction = results["rarefaction"]
    assert rarefaction["output"]["metrics"]["rarefied"] is False
    assert rarefaction["output"]["files_created"] == ["report.md"]
    assert "not counts of individuals" in (rarefaction["dir"] / "report.md").read_text()


def test_two_samples_end_in_a_report_without_a_pcoa(tmp_path: Path, run_steps: StepRunner) -> None:
    """Two samples have one PCoA axis: the ordination completes without a second axis and
    the report, without a PCoA plot, says why (a skip would have cancelled the report)."""
    table = tmp_path / "two.tsv"
    table.write_text("sample\ta\tb\tc\nx\t5\t1\t0\ny\t1\t2\t7\n")
    steps = ["community", "qc", "diversity", "beta", "ordination", "permanova", "report"]
    spec = {"counts": str(table), "metadata": None, "factor": None}
    results = run_steps("ecology", steps, spec)
    ordination = results["ordination"]["output"]["metrics"]
    assert ordination["axes"] == 1 and ordination["pc2_explained"] is None
    assert list(read(results["ordination"]["dir"] / "pcoa.tsv").columns) == ["sample", "PC1"]
    report = results["report"]["output"]["files"]
    assert report == {"diversity_plot": "diversity.png", "report": "report.md"}
    text = (results["report"]["dir"] / "report.md").read_text()
    assert "Fewer than two axes with positive eigenvalues" in text
    assert "Not tested: no domain_specific.factor to test." in text


def test_sample_ids_stay_as_written(tmp_path: Path, run_steps: StepRunner) -> None:
    """Samples named NA, null and 001 keep their names through every step (a reader that
    turned them into NaN or 1 would lose or merge them)."""
    counts = tmp_path / "counts.tsv"
    counts.write_text("sample\ta\tb\tc\nNA\t5\t1\t0\nnull\t2\t2\t2\n001\t0\t3\t9\n1\t4\t4\t1\n")
    meta = tmp_path / "meta.tsv"
    meta.write_text("sample\tsite\n1\tNA\n001\tn\nnull\tNA\nNA\tn\n")
    spec = {"counts": str(counts), "metadata": str(meta), "factor": "site"}
    steps = ["community", "qc", "diversity", "beta", "ordination", "permanova", "report"]
    results = run_steps("ecology", steps, spec, permanova={"permutations": 9})
    ids = ["NA", "null", "001", "1"]
    diversity = read(results["diversity"]["dir"] / "diversity.tsv", keep_default_na=False)
    assert diversity["sample"].tolist() == ids
    assert diversity["richness"].tolist() == [2, 3, 2, 3]
    bray = read(results["beta"]["dir"] / "bray_curtis.tsv", keep_default_na=False)
    assert bray["sample"].tolist() == ids and list(bray.columns[1:]) == ids
    permanova_table = read(results["permanova"]["dir"] / "permanova.tsv")
    assert (permanova_table["df_factor"] == 1).all()  # two levels, NA and n: NA is a level


def test_without_a_factor_the_workflow_ends_in_its_report(
    omics_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``factor: null`` (and no metadata): PERMANOVA completes untested with an empty
    table, and the report still comes, with its diversity and PCoA plots."""
    config = tmp_path / "no_factor.yaml"
    config.write_text(
        "name: eco_no_factor\ndomain: ecology\ndomain_specific:\n"
        f"  counts: {DATA / 'ecology_dune_counts.tsv'}\n  metadata: null\n  factor: null\n"
        "steps:\n  community: {config: {values: abundances}}\n"
        "  permanova: {config: {permutations: 9}}\n"
    )
    assert main(["run", "--config", str(config), "--quiet"]) == 0
    key = re.search(r"run (\S+): succeeded", capsys.readouterr().out)
    assert key is not None
    report = latest_metadata(cli.instance(), ["eco_no_factor", "report"], key[1])
    assert {"diversity.png", "ordination.png"} <= set(report["files_created"])
    assert report["report"].count("data:image/png;base64,") == 2
    assert "Not tested: no domain_specific.factor to test." in report["report"]
    permanova_step = latest_metadata(cli.instance(), ["eco_no_factor", "permanova"], key[1])
    assert permanova_step["metric/tested"] is False
    out = tmp_path / "permanova.tsv"
    export = ["export", "--config", str(config), "--step", "permanova", "--out", str(out)]
    assert main(export) == 0
    empty = read(out)
    assert empty.empty and list(empty.columns[:4]) == ["factor", "pseudo_f", "r2", "p"]


@pytest.mark.slow
def test_the_demo_runs_and_exports_vegans_values(
    omics_home: Path, vegan: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["run", "--workflow", "ecology", "--quiet"]) == 0
    key = re.search(r"^workflow ecology run (\S+): succeeded", capsys.readouterr().out, re.M)
    assert key is not None
    out = tmp_path / "diversity.tsv"
    assert main(["export", "--workflow", "ecology", "--step", "diversity", "--out", str(out)]) == 0
    diversity = read(out)
    assert list(diversity.columns) == ["sample", "richness", "shannon", "simpson"]
    reference = read(vegan / "dune_diversity.tsv")
    assert diversity["sample"].tolist() == reference["sample"].tolist()
    for column in ["richness", "shannon", "simpson"]:
        np.testing.assert_allclose(diversity[column], reference[column], rtol=0, atol=1e-9)
    out = tmp_path / "permanova.tsv"
    assert main(["export", "--workflow", "ecology", "--step", "permanova", "--out", str(out)]) == 0
    tests = read(out)
    assert list(tests.columns[:4]) == ["factor", "pseudo_f", "r2", "p"]
    assert set(tests["factor"]) == {"Management"}
    adonis = read(vegan / "dune_adonis.tsv").set_index("metric")
    for _, row in tests.iterrows():
        expected = adonis.loc[row["metric"]]
        assert row["pseudo_f"] == pytest.approx(expected["pseudo_f"], abs=1e-6)
        assert row["r2"] == pytest.approx(expected["r2"], abs=1e-6)
        assert abs(row["p"] - expected["p"]) <= monte_carlo_bound(expected["p"])
    report = latest_metadata(cli.instance(), ["ecology", "report"], key[1])["report"]
    assert report.count("data:image/png;base64,") == 2  # PCoA by factor, diversity boxplots
    assert "## PERMANOVA" in report and "Management" in report
    # dune's cover classes are declared abundances: not rarefied, and the run still succeeded
    rarefaction = latest_metadata(cli.instance(), ["ecology", "rarefaction"], key[1])
    assert rarefaction["metric/rarefied"] is False and rarefaction["status"] == "completed"
