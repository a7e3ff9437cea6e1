"""``omics plot`` and its figures, on tables written by the real tools: plink2 ``--glm``
(linear, and logistic with a covariate's rows), PLINK 1.9 ``--linear`` and GEMMA ``-lm`` on
the HS1940 mice, and pydeseq2 (the rnaseq step) on a subset of the LNCaP counts."""

import argparse
import gzip
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from PIL import Image

from omics_assets.config import Layer, resolve
from omics_assets.demo import GEMMA_EXAMPLE, LI_SUM
from omics_assets.quick_commands import add_quick_verbs
from omics_assets.science import gwas, plots
from omics_assets.science.domains import step
from omics_assets.science.results_table import read_results
from omics_assets.science.steps import StepContext, execute_step
from platform_core import cli

KLK3, TMPRSS2, FKBP5 = "ENSG00000142515", "ENSG00000184012", "ENSG00000096060"
GENOME_WIDE_LINE = -np.log10(5e-8)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HS1940 PLINK set, unpacked, and the tools' results beside it."""
    folder = tmp_path_factory.mktemp("plot")
    for ext in ("bed", "bim", "fam"):
        with gzip.open(GEMMA_EXAMPLE / f"mouse_hs1940.{ext}.gz") as src:
            (folder / f"mice.{ext}").write_bytes(src.read())
    return folder


def _run(argv: list[str], cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def plink_linear(work: Path) -> Path:
    """plink2 --glm on the .fam's phenotype, gzipped (a linear model)."""
    _run(["plink2", "--bfile", "mice", "--glm", "allow-no-covars", "--out", "lin"], work)
    plain = work / "lin.PHENO1.glm.linear"
    with plain.open("rb") as src, gzip.open(work / "lin.glm.linear.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    return work / "lin.glm.linear.gz"


@pytest.fixture(scope="module")
def plink_logistic(work: Path) -> Path:
    """plink2 --glm on a 0/1 trait of the .fam (column 9) with a covariate (column 11),
    covariate rows kept: a logistic(.hybrid) table with TEST = ADD and cov rows."""
    fam = pd.read_csv(work / "mice.fam", sep=r"\s+", header=None, na_values="NA")
    ids = {"#FID": fam[0], "IID": fam[1]}
    for name, value in (("case", (fam[8] + 1).astype("Int64")), ("cov", fam[10])):
        table = pd.DataFrame({**ids, name: value})
        table.to_csv(work / f"{name}.tsv", sep="\t", index=False, na_rep="NA")
    argv = ["plink2", "--bfile", "mice", "--pheno", "case.tsv", "--covar", "cov.tsv"]
    _run([*argv, "--glm", "--out", "bin"], work)
    return work / "bin.case.glm.logistic.hybrid"


@pytest.fixture(scope="module")
def plink19(work: Path) -> Path:
    """PLINK 1.9 --linear: whitespace-aligned columns CHR, BP, P."""
    _run(["plink1.9", "--bfile", "mice", "--linear", "--allow-no-sex", "--out", "p19"], work)
    return work / "p19.assoc.linear"


@pytest.fixture(scope="module")
def gemma(work: Path) -> dict[str, Path]:
    """GEMMA's linear model: Wald (-lm 1: p_wald) and likelihood-ratio (-lm 2: p_lrt)."""
    for test in ("1", "2"):
        _run(["gemma", "-bfile", "mice", "-lm", test, "-o", f"lm{test}"], work)
    return {t: work / "output" / f"lm{n}.assoc.txt" for t, n in (("p_wald", 1), ("p_lrt", 2))}


@pytest.fixture(scope="module")
def de_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rnaseq differential_expression step (pydeseq2) on 300 expressed LNCaP genes drawn
    at random plus KLK3, TMPRSS2 and FKBP5: its de_results.tsv."""
    folder = tmp_path_factory.mktemp("de")
    counts = pd.read_csv(LI_SUM, sep="\t", index_col=0)
    expressed = counts[counts.sum(axis=1) >= 10]
    drawn = np.random.default_rng(5).choice(expressed.index, 300, replace=False)
    expressed.loc[sorted({*drawn, KLK3, TMPRSS2, FKBP5})].to_csv(folder / "counts.tsv", sep="\t")
    sheet = LI_SUM.parent / "lncap_samplesheet.tsv"
    spec = {"counts": str(folder / "counts.tsv"), "samplesheet": str(sheet)}
    spec |= {"reference_level": "mock", "quantifier": "kallisto"}
    config = resolve("rnaseq", [Layer("test", {"name": "test", "domain": "rnaseq"})]).config
    outputs: dict = {}
    for name in ("samplesheet", "differential_expression"):
        (folder / name).mkdir()
        ctx = StepContext(
            step=name,
            config=config["steps"][name]["config"],
            domain_specific=spec,
            threads=1,
            out=folder / name,
            inputs=outputs,
            input_dirs={k: folder / k for k in outputs},
        )
        result = execute_step(step("rnaseq", name).run, ctx)
        assert result["status"] == "completed", result["errors"]
        outputs[name] = result["output"]
    return folder / "differential_expression" / "de_results.tsv"


Command = Callable[..., tuple[int, str, str]]


@pytest.fixture
def omics_plot(capsys: pytest.CaptureFixture[str]) -> Command:
    """``omics plot ARGS`` through a parser with only the quick verbs and the CLI's dispatch:
    (exit code, stdout, stderr)."""
    root = argparse.ArgumentParser(prog="omics")
    add_quick_verbs(root.add_subparsers(dest="command", required=True))

    def run(*argv: str | Path) -> tuple[int, str, str]:
        args = root.parse_args(["plot", *map(str, argv)])
        try:
            code = cli.dispatch(args)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG"
        return image.size


def _points(plot: plots.Plot) -> np.ndarray:
    (scatter,) = plot.figure.axes[0].collections
    return np.asarray(scatter.get_offsets())


def _red(plot: plots.Plot) -> np.ndarray:
    (scatter,) = plot.figure.axes[0].collections
    return np.all(np.isclose(scatter.get_facecolors(), to_rgba(plots.SIGNIFICANT)), axis=1)


def test_manhattan_draws_every_finite_p_in_genome_order(plink_linear: Path) -> None:
    raw = pd.read_csv(plink_linear, sep="\t", dtype={"#CHROM": str})
    finite = raw[raw["P"].notna()]
    plot = plots.manhattan(read_results(plink_linear, "manhattan").frame)
    points = _points(plot)
    assert plot.points == len(points) == len(finite) > 9000
    assert points[:, 1].max() == pytest.approx(-np.log10(finite["P"].min()))
    assert plot.significant == (finite["P"] < 5e-8).sum()
    axis = plot.figure.axes[0]
    lines = [line.get_ydata() for line in axis.get_lines()]
    assert plot.line == pytest.approx(GENOME_WIDE_LINE)
    assert any(np.allclose(y, GENOME_WIDE_LINE) for y in lines)
    labels = [t.get_text() for t in axis.get_xticklabels()]
    assert labels == [str(c) for c in range(1, 20)]  # 1, 2, ..., 10, not 1, 10, 11, ...
    ticks = dict(zip(labels, axis.get_xticks(), strict=True))
    top_x = points[points[:, 1].argmax(), 0]
    assert ticks["16"] < top_x < ticks["18"]  # HS1940's first phenotype peaks on chr 17
    assert plot.png().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("source", "chrom", "pos", "p"),
    [
        ("plink_linear", "#CHROM", "POS", "P"),
        ("plink_logistic", "#CHROM", "POS", "P"),
        ("plink19", "CHR", "BP", "P"),
        ("p_wald", "chr", "ps", "p_wald"),
        ("p_lrt", "chr", "ps", "p_lrt"),
    ],
)
def test_columns_are_found_under_each_tools_names(
    request: pytest.FixtureRequest, source: str, chrom: str, pos: str, p: str
) -> None:
    if source.startswith("plink"):
        path = request.getfixturevalue(source)
    else:
        path = request.getfixturevalue("gemma")[source]
    raw = pd.read_csv(path, sep=r"\s+" if source == "plink19" else "\t", dtype={chrom: str})
    if source == "plink_logistic":  # a row per term: only the variant's (ADD) is kept
        assert set(raw["TEST"]) == {"ADD", "cov"}
        raw = raw[raw["TEST"] == "ADD"]
    table = read_results(path, "manhattan")
    assert table.columns == {"chrom": chrom, "pos": pos, "p": p}
    assert len(table.frame) == len(raw)
    np.testing.assert_array_equal(table.frame["chrom"], raw[chrom])
    np.testing.assert_array_equal(table.frame["p"], raw[p].astype(float))


def test_plot_command_writes_the_png_and_says_what_it_plotted(
    omics_plot: Command, plink_linear: Path, gemma: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "manhattan.png"
    code, stdout, stderr = omics_plot("--input", plink_linear, "--type", "manhattan", "--out", out)
    finite = pd.read_csv(plink_linear, sep="\t")["P"].notna().sum()
    assert code == 0, stderr
    assert stdout.startswith(f"manhattan plot of {finite} variants -> {out}")
    width, height = _png_size(out)  # 10 x 3 in at 150 dpi, cropped to the content
    assert 1100 < width < 1600 and 380 < height < 560
    out = tmp_path / "qq.png"
    code, stdout, stderr = omics_plot("--input", gemma["p_lrt"], "--type", "qq", "--out", out)
    assert code == 0, stderr
    variants = len(pd.read_csv(gemma["p_lrt"], sep="\t"))
    assert stdout.startswith(f"qq plot of {variants} variants -> {out} (lambda GC ")
    width, height = _png_size(out)  # 3.5 x 3.5 in
    assert 450 < width < 600 and 450 < height < 620
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manhattan.png", "qq.png"]


def test_qq_needs_only_p(omics_plot: Command, gemma: dict[str, Path], tmp_path: Path) -> None:
    raw = pd.read_csv(gemma["p_wald"], sep="\t")
    raw[["rs", "p_wald"]].to_csv(tmp_path / "p_only.csv", index=False)
    plot = plots.qq(read_results(tmp_path / "p_only.csv", "qq").frame["p"])
    observed = _points(plot)[:, 1]
    assert plot.points == len(observed) == len(raw)
    assert observed.max() == pytest.approx(-np.log10(raw["p_wald"].min()))
    assert plot.note == f"lambda GC {plots.lambda_gc(raw['p_wald'].to_numpy()):.3f}"
    plot.png()
    code, _, stderr = omics_plot(
        "--input", tmp_path / "p_only.csv", "--type", "manhattan", "--out", tmp_path / "m.png"
    )
    assert code == 2 and "no column 'chrom'" in stderr
    assert not (tmp_path / "m.png").exists()


def test_volcano_and_ma_of_the_rnaseq_steps_table(
    omics_plot: Command, de_results: Path, tmp_path: Path
) -> None:
    raw = pd.read_csv(de_results, sep="\t", index_col="gene")
    assert raw["padj"].isna().any()  # independent filtering: drawn, never red
    called = raw["padj"] < 0.05
    assert called[[KLK3, TMPRSS2, FKBP5]].all()
    frame = read_results(de_results, "volcano").frame
    volcano = plots.volcano(frame)
    points, red = _points(volcano), _red(volcano)
    assert volcano.points == len(points) == len(raw)
    assert volcano.significant == red.sum() == called.sum() > 3
    klk3 = np.isclose(points[:, 0], raw.loc[KLK3, "log2FoldChange"])
    assert red[klk3].all() and points[klk3, 1] == pytest.approx(-np.log10(raw.loc[KLK3, "pvalue"]))
    volcano.png()
    ma = plots.ma(read_results(de_results, "ma").frame)
    points = _points(ma)
    assert ma.points == len(raw) and ma.significant == called.sum() and ma.line == 0.0
    np.testing.assert_allclose(np.sort(points[:, 0]), np.sort(np.log10(raw["baseMean"] + 1)))
    ma.png()
    for kind in ("volcano", "ma"):
        out = tmp_path / f"{kind}.png"
        code, stdout, stderr = omics_plot("--input", de_results, "--type", kind, "--out", out)
        assert code == 0, stderr
        assert stdout.startswith(f"{kind} plot of {len(raw)} genes -> {out}")
        assert f"({called.sum()} at padj < 0.05)" in stdout
        width, height = _png_size(out)  # 4.5 x 3.4 in at 150 dpi
        assert 550 < width < 760 and 450 < height < 620
    assert plots.ma_volcano_png(raw.dropna(), 0.05).startswith(b"\x89PNG")  # the report's


@pytest.mark.parametrize(
    ("source", "kind", "drop", "says"),
    [
        ("plink", "manhattan", ["P"], "no column 'p' for a manhattan plot (looked for: p, P, "),
        ("plink", "manhattan", ["#CHROM"], "(looked for: chrom, #CHROM, chr, CHR)"),
        ("gemma", "manhattan", ["ps"], "no column 'pos' for a manhattan plot"),
        ("plink", "volcano", [], "no column 'log2FoldChange'"),
        ("de", "ma", ["baseMean"], "no column 'baseMean' for a ma plot"),
        ("de", "volcano", ["padj", "pvalue"], "no column 'padj' or 'pvalue'"),
    ],
)
def test_a_missing_column_is_named_with_the_file_and_the_aliases(
    request: pytest.FixtureRequest,
    omics_plot: Command,
    tmp_path: Path,
    source: str,
    kind: str,
    drop: list[str],
    says: str,
) -> None:
    path = {
        "plink": lambda: request.getfixturevalue("plink_linear"),
        "gemma": lambda: request.getfixturevalue("gemma")["p_wald"],
        "de": lambda: request.getfixturevalue("de_results"),
    }[source]()
    table = tmp_path / "results.tsv"
    pd.read_csv(path, sep="\t").drop(columns=drop).to_csv(table, sep="\t", index=False)
    code, _, stderr = omics_plot("--input", table, "--type", kind, "--out", tmp_path / "o.png")
    assert code == 2
    assert stderr.startswith(f"error: {table}: ") and says in stderr
    assert "its columns: " in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.tsv"]


def _bad_input(kind: str, plink: Path, folder: Path) -> Path:
    """An input that cannot be plotted, made from plink2's table (gzipped)."""
    path = folder / ("in.tsv.gz" if kind == "truncated" else "in.tsv")
    with gzip.open(plink, "rt") as src:
        header = src.readline()
    if kind == "truncated":
        path.write_bytes(plink.read_bytes()[: plink.stat().st_size // 2])
    elif kind in ("empty", "header only"):
        path.write_text("" if kind == "empty" else header)
    elif kind == "a png":
        path.write_bytes(plots.qq_png(np.linspace(0.01, 1, 50)))
    elif kind == "no p":
        pd.read_csv(plink, sep="\t").assign(P="NA").to_csv(path, sep="\t", index=False)
    return {"absent": folder / "absent.tsv", "a folder": folder}.get(kind, path)


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("absent", "absent.tsv: no such file"),
        ("a folder", "in: not a file"),
        ("empty", "is empty"),
        ("a png", "not a text table"),
        ("truncated", "not a readable table"),
        ("header only", "has a header but no rows"),
        ("no p", "none of its 10300 rows has a p-value in column 'P'"),
    ],
)
def test_unplottable_input_fails_and_leaves_out_untouched(
    omics_plot: Command,
    plink_linear: Path,
    tmp_path: Path,
    kind: str,
    says: str,
) -> None:
    (tmp_path / "in").mkdir()
    source = _bad_input(kind, plink_linear, tmp_path / "in")
    out = tmp_path / "out" / "plot.png"
    out.parent.mkdir()
    out.write_bytes(b"an earlier plot")
    code, stdout, stderr = omics_plot("--input", source, "--type", "manhattan", "--out", out)
    assert (code, stdout) == (2, "")
    assert says in stderr
    assert [p.name for p in out.parent.iterdir()] == ["plot.png"]
    assert out.read_bytes() == b"an earlier plot"


def test_a_write_that_fails_halfway_leaves_the_earlier_png(
    omics_plot: Command,
    gemma: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "qq.png"
    out.write_bytes(b"an earlier plot")
    write_bytes = Path.write_bytes

    def disk_full(path: Path, data: bytes) -> int:
        write_bytes(path, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    code, _, stderr = omics_plot("--input", gemma["p_wald"], "--type", "qq", "--out", out)
    assert code == 2 and "No space left on device" in stderr
    assert [p.name for p in tmp_path.iterdir()] == ["qq.png"]  # no temp file left
    assert out.read_bytes() == b"an earlier plot"


def test_the_reports_draw_with_the_same_functions(plink_linear: Path, tmp_path: Path) -> None:
    """The gwas report step on plink2's table as the association step reads it."""
    association = tmp_path / "association"
    association.mkdir()
    gwas.read_glm(plink_linear).to_csv(association / "association.tsv", sep="\t", index=False)
    (tmp_path / "report").mkdir()
    ctx = StepContext(
        step="report",
        config={},
        domain_specific={},
        threads=1,
        out=tmp_path / "report",
        inputs={"association": {"files": {"association": "association.tsv"}, "metrics": {}}},
        input_dirs={"association": association},
    )
    result = execute_step(step("gwas", "report").run, ctx)
    assert result["status"] == "completed", result["errors"]
    for name in ("manhattan.png", "qq.png"):
        assert _png_size(tmp_path / "report" / name)[0] > 200


def test_out_must_be_a_png(omics_plot: Command, gemma: dict[str, Path], tmp_path: Path) -> None:
    code, _, stderr = omics_plot(
        "--input", gemma["p_wald"], "--type", "qq", "--out", tmp_path / "qq.pdf"
    )
    assert code == 2 and "give a .png file" in stderr
    assert list(tmp_path.iterdir()) == []
