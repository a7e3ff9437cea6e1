"""The ecology domain against R's vegan on vegan's own data sets, its bad input, and the
shipped demo end to end.

vegan (``tests/omics/r/vegan_reference.R``, run once per session) exports each data set it
uses and its results; our steps read exactly those files. The data sets: ``dune`` with
``dune.env$Management``; ``varespec`` (percent cover, not counts: no rarefaction) with a factor
derived in the R script, ``Al_level`` = "high" where ``varechem$Al`` is above its median;
``BCI`` with ``BCI.env$Habitat``. PERMANOVA: 999 permutations on both sides (ours seeded with
the shipped default seed 1, vegan's with ``set.seed(1)``)."""

import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omics_assets.cli import main
from omics_assets.science.ecology import community
from omics_assets.science.ecology_stats import bray_curtis, jaccard, permanova
from omics_assets.science.steps import StepContext, execute_step
from platform_core import cli
from tests.omics.conftest import StepRunner
from tests.support import latest_metadata

pytestmark = pytest.mark.slow
R_SCRIPT = Path(__file__).parent / "r" / "vegan_reference.R"
PERMUTATIONS = 999
SETS = {"dune": True, "varespec": False, "BCI": True}  # data set: integer counts
STEPS = ["community", "qc", "diversity", "rarefaction", "beta", "ordination", "permanova"]


@pytest.fixture(scope="session")
def vegan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of vegan's data sets and results (see the R script's header)."""
    out = tmp_path_factory.mktemp("vegan")
    subprocess.run(
        ["Rscript", str(R_SCRIPT), str(out), str(PERMUTATIONS)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def read(path: Path, **kwargs: object) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"sample": str}, **kwargs)


def monte_carlo_bound(p: float, permutations: int = PERMUTATIONS) -> float:
    """How far two independent permutation p values at the same p may differ: three standard
    errors of a difference of two estimates, sqrt(2 p (1 - p) / n), plus one step 1 / (n + 1)
    of their grid."""
    return 3 * math.sqrt(2 * p * (1 - p) / permutations) + 1 / (permutations + 1)


def square(path: Path) -> pd.DataFrame:
    table = read(path).set_index("sample")
    table.columns = table.columns.astype(str)
    return table


@pytest.mark.parametrize("name", list(SETS))
def test_the_steps_equal_vegan(name: str, vegan: Path, run_steps: StepRunner) -> None:
    counts = SETS[name]
    steps = STEPS if counts else [s for s in STEPS if s != "rarefaction"]
    results = run_steps(
        "ecology",
        steps,
        {
            "counts": str(vegan / f"{name}_counts.tsv"),
            "metadata": str(vegan / f"{name}_env.tsv"),
            "factor": "factor",
        },
        community={"values": "counts" if counts else "abundances"},
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
        ours_matrix = square(output("beta", ours_file))
        theirs_matrix = square(vegan / f"{name}_{theirs_file}.tsv")
        assert ours_matrix.index.equals(theirs_matrix.index)
        np.testing.assert_allclose(ours_matrix, theirs_matrix, rtol=0, atol=1e-12)
    # PCoA eigenvalues: cmdscale's, negative ones included
    eigenvalues = read(output("ordination", "eigenvalues"))["eigenvalue"]
    cmdscale = read(vegan / f"{name}_pcoa_eig.tsv")["eigenvalue"]
    np.testing.assert_allclose(eigenvalues, cmdscale, rtol=0, atol=1e-9)
    # adonis2: pseudo-F and R^2 to 1e-6; p within Monte-Carlo error
    ours_tests = read(output("permanova", "permanova")).set_index("metric")
    adonis = read(vegan / f"{name}_adonis.tsv").set_index("metric")
    assert list(ours_tests.columns[:4]) == ["factor", "pseudo_f", "r2", "p"]
    for metric, expected in adonis.iterrows():
        got = ours_tests.loc[metric]
        assert got["pseudo_f"] == pytest.approx(expected["pseudo_f"], abs=1e-6)
        assert got["r2"] == pytest.approx(expected["r2"], abs=1e-6)
        assert abs(got["p"] - expected["p"]) <= monte_carlo_bound(expected["p"]), metric
    if counts:  # rarefy(x, min(rowSums(x)), se = TRUE)
        rarefied = read(output("rarefaction", "rarefaction")).set_index("sample")
        reference = read(vegan / f"{name}_rarefy.tsv").set_index("sample")
        assert (rarefied["depth"] == reference["depth"]).all()
        np.testing.assert_allclose(rarefied["expected_richness"], reference["expected"], atol=1e-9)
        np.testing.assert_allclose(rarefied["se"], reference["se"], atol=1e-9)


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


def run_community(tmp_path: Path, counts: str, values: str = "counts", **spec: str) -> dict:
    """The community step on a counts text (and metadata text in ``spec``)."""
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "counts.tsv"
    path.write_text(counts)
    domain_specific = {"counts": str(path), "metadata": None, "factor": None}
    if "metadata" in spec:
        (tmp_path / "meta.tsv").write_text(spec["metadata"])
        domain_specific |= {"metadata": str(tmp_path / "meta.tsv"), "factor": "group"}
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


def test_samples_missing_from_the_metadata_are_named(tmp_path: Path) -> None:
    counts = "sample\ta\tb\nx\t1\t2\ny\t3\t4\nz\t0\t1\n"
    result = run_community(tmp_path, counts, metadata="sample\tgroup\nx\tg1\n")
    error = result["errors"][0]
    assert error.startswith(f"{tmp_path / 'counts.tsv'}: 2 sample(s) missing from the metadata")
    assert "'y' (line 3), 'z' (line 4)" in error and str(tmp_path / "meta.tsv") in error
    result = run_community(tmp_path / "b", counts, metadata="sample\tother\nx\t1\n")
    assert re.search(r"meta\.tsv: line 1: no column 'group'", result["errors"][0])
    ok = run_community(tmp_path / "c", counts, metadata="sample\tgroup\nz\tg\ny\th\nx\tg\nw\th\n")
    assert ok["status"] == "completed"


def test_abundances_skip_rarefaction(tmp_path: Path, run_steps: StepRunner) -> None:
    table = tmp_path / "cover.tsv"
    table.write_text("sample\ta\tb\nx\t0.5\t2\ny\t1.25\t0\n")
    results = run_steps(
        "ecology",
        ["community", "qc", "diversity"],
        {"counts": str(table), "metadata": None, "factor": None},
        community={"values": "abundances"},
    )
    shannon = read(results["diversity"]["dir"] / "diversity.tsv")["shannon"]
    assert shannon.tolist() == pytest.approx([-(0.2 * math.log(0.2) + 0.8 * math.log(0.8)), 0])
    from omics_assets.science.ecology import rarefaction

    out = tmp_path / "rarefaction"
    out.mkdir()
    ctx = StepContext(
        "rarefaction",
        {"depth": None, "curve_points": 10},
        {},
        1,
        out,
        inputs={"qc": results["qc"]["output"]},
        input_dirs={"qc": results["qc"]["dir"]},
    )
    skipped = execute_step(rarefaction, ctx)
    assert skipped["status"] == "skipped" and "integer counts" in skipped["reason"]


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
