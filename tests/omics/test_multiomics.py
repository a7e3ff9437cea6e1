"""The multiomics domain: MOFA+ recovers planted factors and their variance explained from
views with missing samples; bad views, metadata and configs fail naming what and where; the
demo runs, exports and reports; a view read from an upstream workflow's step. Only the tests
that run MOFA are ``slow``."""

import logging
import re
import sys
import textwrap
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

import omics_assets.definitions
from omics_assets.cli import main
from omics_assets.components.loader import workflows_folder
from omics_assets.config import ConfigError, resolve, yaml_file
from omics_assets.location import LOCATION
from omics_assets.science.multiomics import sample_groups, views
from omics_assets.science.multiomics_mofa import fit_mofa
from omics_assets.science.multiomics_simulate import Planted, simulate_views
from omics_assets.science.sample_tables import read_step_table
from omics_assets.science.steps import InputError, StepContext
from platform_core import cli
from tests.omics.conftest import StepRunner
from tests.support import latest_metadata

STEPS = ["views", "align", "factors"]
# Two designs (neither the demo's): features, weight sd per factor (0 = inactive), noise,
# share of samples missing, seed. Factors are numbered in decreasing planted variance.
DESIGNS = {
    "three_views": (
        {"rna": 300, "meth": 200, "protein": 50},
        {"rna": (1.0, 0.9, 0.0, 0.5), "meth": (1.0, 0.0, 0.8, 0.0), "protein": (0.9, 0.8, 0, 0)},
        {"rna": 0.7, "meth": 0.4, "protein": 1.0},
        {"rna": 0.0, "meth": 0.1, "protein": 0.2},
        11,
    ),
    "two_views_five_factors": (
        {"expression": 250, "accessibility": 150},
        {"expression": (1.2, 0.0, 0.8, 0.5, 0.0), "accessibility": (1.0, 1.0, 0.0, 0.3, 0.5)},
        {"expression": 0.8, "accessibility": 0.6},
        {"expression": 0.1, "accessibility": 0.15},
        5,
    ),
}


def write_views(planted: Planted, folder: Path, transposed: str = "") -> dict[str, dict]:
    """Each view as a TSV; the ``transposed`` one with samples in columns (transpose: auto)."""
    specs = {}
    for name, table in planted.views.items():
        path = folder / f"{name}.tsv"
        (table.T.rename_axis("feature") if name == transposed else table).to_csv(path, sep="\t")
        specs[name] = {"path": str(path)}
    return specs


def matched(planted: Planted, inferred: pd.DataFrame) -> tuple[list[str], list[float]]:
    """For each planted factor, the inferred factor that correlates best and |r|, over the
    samples present in a view where the factor is active (others carry no information on
    it: MOFA leaves their value at the prior)."""
    best, correlations = [], []
    for factor in planted.factors.columns:
        active = [v for v, w in planted.weights.items() if w[factor].abs().sum() > 0]
        informed = sorted({s for v in active for s in planted.views[v].index})
        truth = planted.factors.loc[informed, factor]
        r = inferred.loc[informed].corrwith(truth).abs()
        best.append(str(r.idxmax()))
        correlations.append(float(r.max()))
    return best, correlations


@pytest.mark.slow
@pytest.mark.parametrize("design", DESIGNS)
def test_planted_factors_are_recovered_in_order(
    run_steps: StepRunner, tmp_path: Path, design: str
) -> None:
    features, activity, noise, missing, seed = DESIGNS[design]
    planted = simulate_views(120, features, activity, noise, missing, seed)
    first = next(iter(features))
    specs = write_views(planted, tmp_path, transposed=first)
    k = len(planted.factors.columns)
    started = time.perf_counter()
    results = run_steps("multiomics", STEPS, {"views": specs}, factors={"factors": k + 2})
    seconds = time.perf_counter() - started
    summary = pd.read_csv(results["views"]["dir"] / "views.tsv", sep="\t", index_col=0)
    assert summary.loc[first, "transposed"] and not summary.drop(first)["transposed"].any()
    present = set().union(*(t.index for t in planted.views.values()))  # in some view
    expected_missing = {v: len(present) - len(t) for v, t in planted.views.items()}
    assert summary["missing_samples"].to_dict() == expected_missing
    out = results["factors"]["dir"]
    scores = pd.read_csv(out / "factors.tsv", sep="\t", index_col=0)
    assert list(scores.columns) == [f"factor_{i + 1}" for i in range(k + 2)]
    assert set(scores.index) == present  # samples missing from some views: kept
    best, correlations = matched(planted, scores)
    explained = pd.read_csv(out / "variance_explained.tsv", sep="\t", index_col=0) / 100
    inferred = explained[best].set_axis(planted.factors.columns, axis=1)
    truth = planted.variance_explained
    diff = (inferred - truth).abs().to_numpy().max()
    every = [scores[b].corr(planted.factors[f]) for b, f in zip(best, truth.columns, strict=True)]
    print(
        f"\n{design}: |r| {np.round(correlations, 3)} (every sample: {np.abs(every).round(3)}), "
        f"variance explained max |diff| {diff:.4f}; {seconds:.1f} s"
    )
    print(pd.concat({"planted": truth, "inferred": inferred}).round(3).to_string())
    assert min(correlations) >= 0.9, correlations
    assert len(set(best)) == k  # one inferred factor per planted factor
    # the planted order of variance explained (summed over views), and each value
    assert truth.sum().is_monotonic_decreasing
    assert inferred.sum().is_monotonic_decreasing, inferred.sum()
    assert best == [f"factor_{i + 1}" for i in range(k)]  # the extra factors explain least
    assert diff <= 0.05
    assert (inferred[truth == 0].fillna(0) < 0.02).all().all()  # inactive view-factor pairs
    assert explained.drop(columns=[*best, "all_factors"]).to_numpy().max() < 0.02
    assert results["factors"]["checks"]["converged"]["passed"]


def context(tmp_path: Path, specs: dict[str, dict], **metadata: str | None) -> StepContext:
    """The views step's context; ``metadata``: its path and ``group`` (default None)."""
    (tmp_path / "out").mkdir()
    inputs = {"views": specs, "metadata": None, "group": None} | metadata
    return StepContext("views", {}, inputs, 1, tmp_path / "out")


def write(path: Path, text: str) -> dict[str, str]:
    path.write_text(textwrap.dedent(text).lstrip())
    return {"path": str(path)}


def test_views_that_share_no_sample_fail_naming_them(tmp_path: Path) -> None:
    specs = {
        "rna": write(tmp_path / "a.tsv", "sample\tg1\nS1\t1\nS2\t3\nS3\t5\nS4\t1\n"),
        "meth": write(tmp_path / "b.tsv", "sample\tc1\nS3\t0.1\nS4\t0.2\n"),
        "protein": write(tmp_path / "c.tsv", "sample\tp1\tp2\nP1\t1\t2\nP2\t3\t4\n"),
    }
    with pytest.raises(InputError) as error:
        views(context(tmp_path, specs))
    assert str(error.value) == (
        "the views share no sample: views rna, meth (samples S1, S2, S3, ... (4 in all)); "
        "view protein (samples P1, P2)"
    )
    assert not list((tmp_path / "out").iterdir())  # nothing written


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sample\tg1\tg2\nS1\t1\t2\nS2\t3\tlow\n",
            "line 3, row 'S2', column 'g2': 'low' is not a finite number (1 such cells)",
        ),
        ("sample\tg1\nS1\t1\nS2\tinf\n", "line 3, row 'S2', column 'g1': 'inf' is not a finite"),
        ("sample\tg1\tg1\nS1\t1\t2\n", "feature IDs must be unique; repeated: g1"),
        ("sample\tg1\nS1\t1\nS1\t2\n", "sample IDs must be unique; repeated: S1"),
    ],
)
def test_a_bad_matrix_fails_naming_file_row_and_column(
    tmp_path: Path, text: str, message: str
) -> None:
    good = write(tmp_path / "good.tsv", "sample\tx\nS1\t1\nS2\t2\n")
    bad = write(tmp_path / "bad.tsv", text)
    with pytest.raises(InputError) as error:
        views(context(tmp_path, {"good": good, "bad": {**bad, "transpose": False}}))
    assert str(error.value).startswith(f"view bad: {tmp_path / 'bad.tsv'}")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("views_read", "message"),
    [
        ({"rna": {"step": "counts"}}, "view rna: step counts of workflow up was not read"),
        (
            {"rna": {}},
            "view rna: step gene_counts of workflow up lists no .tsv file (files: notes)",
        ),
        ({"rna": {"file": "x"}}, "workflow up has no file 'x' (files: notes)"),
        (
            {"rna": {}, "dna": {"workflow": "other"}},
            "view dna: step gene_counts is read from workflows up and other: a step name may "
            "come from one upstream workflow only",
        ),
    ],
)
def test_an_upstream_view_without_its_table_fails_naming_it(
    tmp_path: Path, views_read: dict[str, dict[str, str]], message: str
) -> None:
    base = {"workflow": "up", "step": "gene_counts"}
    ctx = context(tmp_path, {name: base | extra for name, extra in views_read.items()})
    (tmp_path / "notes.txt").write_text("")
    ctx.inputs = {"gene_counts": {"files": {"notes": "notes.txt"}}}
    ctx.input_dirs = {"gene_counts": tmp_path}
    with pytest.raises(InputError) as error:
        views(ctx)
    assert message in str(error.value)


def test_ids_stay_text_and_missing_cells_are_missing(run_steps: StepRunner, tmp_path: Path) -> None:
    """``001`` stays ``001``, a sample and a gene named ``NA`` are IDs (in the views, the
    aligned tables and the metadata's groups); empty and NA cells are missing values; a
    features-in-rows view is transposed (auto) and its samples aligned."""
    specs = {
        "a": write(
            tmp_path / "a.tsv",
            "id\t1\t2\t3\n001\t1\t2\tNA\n002\t2\t\t1\n010\t5\t1\t2\nNA\t1\t1\t1\n",
        ),
        "b": write(tmp_path / "b.tsv", "gene\t002\t001\tNA\nNA\t1\t2\t0\nx\t3\t1\t5\n"),
    }
    meta = write(tmp_path / "meta.tsv", "sample\tgroup\nNA\tx\n001\tNA\n")["path"]
    spec = {"views": specs, "metadata": meta, "group": "group"}
    results = run_steps("multiomics", ["views", "align"], spec)
    summary = pd.read_csv(results["views"]["dir"] / "views.tsv", sep="\t", index_col=0)
    columns = ["transposed", "samples", "missing_samples", "missing_values"]
    assert summary[columns].to_dict("index") == {
        "a": {"transposed": False, "samples": 4, "missing_samples": 0, "missing_values": 2},
        "b": {"transposed": True, "samples": 3, "missing_samples": 1, "missing_values": 0},
    }
    out = results["align"]["dir"]
    presence = pd.read_csv(out / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert presence.to_dict("list") == {
        "sample": ["001", "002", "010", "NA"], "a": ["1", "1", "1", "1"], "b": ["1", "1", "0", "1"]
    }  # fmt: skip
    aligned = read_step_table(out / "aligned" / "b.tsv")
    assert list(aligned.columns) == ["NA", "x"] and list(aligned.index) == list(presence["sample"])
    assert aligned.loc["010"].isna().all()  # absent from b: missing, as MOFA models it
    assert aligned.loc["001", "NA"] - aligned.loc["002", "NA"] > 0  # centred, order kept
    groups = sample_groups(context(tmp_path, specs, metadata=meta, group="group"))
    assert groups.to_dict() == {"NA": "x", "001": "NA"}


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        ("log2", "transform log2 needs values > 0, not 0 (2 such values)"),
        ("log2p1", "transform log2p1 needs values >= 0, not -1 (1 such values)"),
    ],
)
def test_values_must_suit_the_views_transform(tmp_path: Path, transform: str, message: str) -> None:
    values = write(tmp_path / "v.tsv", "sample\tg1\tg2\nS1\t0\t2.5\nS2\t-1\t4\n")
    with pytest.raises(InputError) as error:
        views(context(tmp_path, {"rna": {**values, "transform": transform}}))
    assert str(error.value) == f"view rna: {message}"


def test_a_view_config_error_names_the_users_file_and_line(tmp_path: Path) -> None:
    """A workflow view without ``step``: one error, in the user's file at its ``workflow:``
    line (not the defaults, ``views: {}``); a file view's bad option: at its ``path:`` line."""
    config = tmp_path / "views.yaml"
    config.write_text(
        "name: mo_views\ndomain: multiomics\ndomain_specific:\n  views:\n"
        "    rna: {path: rna.tsv}\n    meth:\n      workflow: epigenome\n"
        "    protein: {path: p.tsv, transform: log3}\n"
    )
    with pytest.raises(ConfigError) as error:
        resolve("multiomics", [yaml_file(config)])
    step, transform = sorted(str(error.value).splitlines()[1:])  # two errors, no more
    expected = f"domain_specific.views.meth.workflow.step ({config} line 7): Field required"
    assert step.strip() == expected
    assert "protein.path.transform = 'log3'" in transform and f"({config} line 8)" in transform


@pytest.mark.parametrize(
    ("metadata", "group", "message"),
    [
        (None, "group", "domain_specific.group is 'group' but no metadata file is set"),
        ("", "group", "meta.tsv: no such file"),
        ("sample\tgroup\nS1\tx\nS1\ty\n", "group", "line 3: sample 'S1' appears again"),
        ("sample\tgroup\tgroup\nS1\tx\ty\n", "group", "line 1: column 'group' is the name"),
        ("id\tgroup\nS1\tx\n", "group", "line 1: no column 'sample' (columns: id, group)"),
        ("sample\ttype\nS1\tx\n", "group", "no column 'group', named by domain_specific.group"),
        ("sample\tgroup\nS1\tx\n", "sample", "domain_specific.group is 'sample'"),
    ],
)
def test_bad_metadata_fails_naming_file_and_line(
    tmp_path: Path, metadata: str | None, group: str, message: str
) -> None:
    specs = {"rna": write(tmp_path / "a.tsv", "sample\tg1\nS1\t1\nS2\t2\n")}
    path = tmp_path / "meta.tsv"
    if metadata:
        path.write_text(metadata)
    ctx = context(tmp_path, specs, metadata=None if metadata is None else str(path), group=group)
    with pytest.raises(InputError, match=re.escape(message)) as error:
        views(ctx)
    assert not metadata or group == "sample" or str(error.value).startswith(f"{path}: line ")
    assert not list((tmp_path / "out").iterdir())


def test_mofa_uses_at_most_the_steps_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the BLAS at 2 threads, a fit at ``threads`` = 1 runs at 1 (mofapy2's run faked)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    seen: list[int] = []  # the threads of each BLAS (and OpenMP) library inside the fit

    def run() -> None:
        seen.extend(library["num_threads"] for library in threadpool_info())
        raise SystemExit(print("stopped here"))

    fake = mock.MagicMock()  # mofapy2.run.entry_point: entry_point().run() is ``run``
    fake.entry_point.return_value.run.side_effect = run
    monkeypatch.setitem(sys.modules, "mofapy2.run.entry_point", fake)
    view = pd.DataFrame(np.ones((3, 2)), index=["a", "b", "c"], columns=["x", "y"])
    with threadpool_limits(limits=2), pytest.raises(InputError, match="stopped here"):
        fit_mofa({"v": view}, 2, 10, "fast", 1, 1, logging.getLogger("test"))
    assert seen and set(seen) == {1}, seen


@pytest.mark.slow
def test_the_demo_runs_exports_and_reports_its_factors(
    omics_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--workflow", "multiomics", "--quiet"]) == 0
    run = re.search(r"^workflow multiomics run (\S+): succeeded", capsys.readouterr().out, re.M)
    assert run is not None
    out = tmp_path / "factors.tsv"
    assert main(["export", "--workflow", "multiomics", "--step", "factors", "--out", str(out)]) == 0
    table = pd.read_csv(out, sep="\t", index_col=0)
    factors = [f"factor_{i}" for i in range(1, 7)]
    assert table.index.name == "sample" and list(table.columns) == factors
    assert table.notna().all().all()
    assert len(table) == 60 and table.index.is_unique
    # the variance explained: a value per view and factor (percent), and by all factors
    step = latest_metadata(cli.instance(), ["multiomics", "factors"], run[1])
    explained = read_step_table(Path(step["output_dir"]) / "variance_explained.tsv")
    assert sorted(explained.index) == ["meth", "protein", "rna"]
    assert list(explained.columns) == [*factors, "all_factors"]
    assert (explained >= 0).all().all() and (explained["all_factors"].between(10, 100)).all()
    # the report: its tables, and the heatmap and factor plot embedded under it
    report = latest_metadata(cli.instance(), ["multiomics", "report"], run[1])
    assert report["files_created"] == ["factors.png", "report.md", "variance_explained.png"]
    assert report["report"].count("data:image/png;base64,") == 2
    assert "## Variance explained" in report["report"] and "## Views" in report["report"]


UPSTREAM = '''
import shutil

def genes(ctx):
    """A gene x sample table, as rnaseq's gene_counts writes it."""
    shutil.copy(ctx.domain_specific["table"], ctx.out / "gene_counts.tsv")
    (ctx.out / "notes.txt").write_text("not a table")
    files = {"notes": "notes.txt", "counts": "gene_counts.tsv"}
    return {"status": "completed", "output": {"files": files, "metrics": {}}}
'''


@pytest.mark.slow
def test_a_view_reads_an_upstream_workflows_step(
    omics_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A custom workflow of the operator's folder writes counts with genes in rows; a user's
    multiomics workflow reads its step's first .tsv as the view ``rna`` (transpose: auto,
    log2(x + 1))."""
    monkeypatch.chdir(tmp_path)
    module = f"mo_lab_{tmp_path.name.replace('-', '_')[-30:]}"
    (tmp_path / f"{module}.py").write_text(UPSTREAM)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PLATFORM_STEP_MODULES", module)
    features, activity, noise, missing, seed = DESIGNS["three_views"]
    planted = simulate_views(80, features, activity, noise, missing, seed + 1)
    counts = np.round(2 ** (planted.views["rna"] + 6) - 1).clip(lower=0)  # log2(x + 1) scale
    counts.T.rename_axis("gene").to_csv(tmp_path / "genes.tsv", sep="\t")
    meth = write_views(planted, tmp_path)["meth"]
    workflows_folder().mkdir(parents=True, exist_ok=True)
    upstream = workflows_folder() / "mo_counts.yaml"
    upstream.write_text(
        f"name: mo_counts\ndomain: custom\ndomain_specific: {{table: {tmp_path / 'genes.tsv'}}}\n"
        f'steps:\n  gene_counts: {{func: "{module}:genes"}}\n'
    )
    (tmp_path / "mo_up.yaml").write_text(
        "name: mo_up\ndomain: multiomics\ndomain_specific:\n  views:\n"
        "    rna: {workflow: mo_counts, step: gene_counts, run: latest, transform: log2p1}\n"
        f"    meth: {{path: {meth['path']}}}\n"
        "steps:\n  factors: {config: {factors: 6}}\n"
    )
    config = str(tmp_path / "mo_up.yaml")
    # the location reloads (as the UI's Reload all does): mo_counts is one of its workflows
    monkeypatch.setattr(omics_assets.definitions, "defs", LOCATION.definitions())
    try:
        assert main(["run", "--workflow", "mo_counts", "--quiet"]) == 0
        assert main(["run", "--config", config, "--quiet"]) == 0
        for step in ("views", "factors"):
            export = ["export", "--config", config, "--step", step, "--out", f"{step}.tsv"]
            assert main(export) == 0
    finally:
        sys.modules.pop(module, None)
        upstream.unlink()
    summary = pd.read_csv("views.tsv", sep="\t", index_col=0)
    assert summary.loc["rna", "transposed"] and not summary.loc["meth", "transposed"]
    assert summary.loc["rna", "source"].endswith("gene_counts.tsv")  # the step's first .tsv
    assert summary["samples"].to_dict() == {v: len(planted.views[v]) for v in ("rna", "meth")}
    scores = pd.read_csv("factors.tsv", sep="\t", index_col=0)
    assert set(scores.index) == set(planted.views["rna"].index) | set(planted.views["meth"].index)
    # the two planted factors active in rna or meth and strongest there are found again
    for factor in ("factor_1", "factor_2"):
        r = scores.corrwith(planted.factors[factor]).abs().max()
        assert r >= 0.9, (factor, r)
