"""One storage owner: every location's demo, run against a second data root, writes nothing
outside it. Sentinels stand where a stray write would go (the working directory and its
``.data``, the home folder, the repository); the only other places written are the named
exceptions: ``DAGSTER_HOME`` (the instance), ``TMPDIR`` (tools' temporary files) and the
demos' explicit ``--out`` folders."""

import os
from pathlib import Path

import pytest

from tests.support import command as run_command

pytestmark = pytest.mark.slow  # every location's demo with real tools: a few minutes

ROOT = Path(__file__).resolve().parent.parent
NOT_OURS = {".git", ".venv", ".pytest_cache", ".ruff_cache", "test-artifacts", "__pycache__"}


def _files(folder: Path) -> set[str]:
    """Every file below ``folder`` (relative), but caches and what other tests write."""
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and not NOT_OURS & set(p.relative_to(folder).parts)
    }


def test_every_demo_writes_only_under_its_data_root(tmp_path: Path) -> None:
    work, home, out, root = (tmp_path / n for n in ("work", "home", "out", "second_root"))
    for folder in (work / ".data", home, out):  # .data: where the default root would be
        folder.mkdir(parents=True)
    repository = _files(ROOT)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "PLATFORM_"))},
        "HOME": str(home),
        "TMPDIR": str(tmp_path / "tmp"),
        "MPLCONFIGDIR": str(tmp_path / "tmp" / "matplotlib"),  # matplotlib's font cache
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "PLATFORM_DATA_ROOT": str(root),
        "TETRA_PROVIDER": "synthetic",
        "TETRA_SYNTHETIC_COUNT": "3",
    }
    (tmp_path / "tmp").mkdir()

    def command(*argv: str) -> None:  # in the working directory; run: here, not via a daemon
        run_command(env, *argv, *(["--here"] if argv[1] == "run" else []), cwd=work)

    command("tetra", "run", "--start", "2018-03-05", "--end", "2018-03-09", "--quiet")
    command("tetra", "demo", "--out", str(out / "tetra"), "--start", "2018-03-01")
    command("ecod", "demo", "--out", str(out / "ecod"), "--chains", "4")
    command("ecod", "run", str(out / "ecod" / "demo-batch.fasta"), "--quiet")
    command("hcs", "demo", "--out", str(out / "hcs"), "--wells", "1", "--tile", "128")
    command("hcs", "run", str(out / "hcs" / "demo_plate"), "--quiet")
    command("cardio", "demo", "--out", str(out / "cardio"))
    command("cardio", "run", str(out / "cardio" / "study-sinus"), "--quiet")
    command("omics", "demo", "--out", str(out / "omics"))
    command("omics", "run", "--workflow", "simulation", "--quiet")

    assert _files(work) == set() and _files(home) == set()  # no default root, no home files
    assert _files(ROOT) == repository  # nothing written into the repository
    written = _files(root)
    expected = {  # each location's values and side files, in the one root
        "tetra/market_data/2018-03-05.arrow",
        "tetra/reports/2018-03-05.html",
        "ecod/inputs/demo-batch/chains.fasta",
        "ecod/inputs/demo-batch.json",
        "ecod/classification/demo-batch.parquet",
        "imaging/plates/demo_plate.json",
        "imaging/stitched_plate/demo_plate.ome.zarr/zarr.json",
        "cardio/studys/study-sinus.json",
        "cardio/echo_preprocessed/study-sinus.frames.npy",
        "cardio/cardio_report/study-sinus.json",
    }
    assert expected <= written, sorted(expected - written)
    assert any(f.startswith("ecod/reference/") and f.endswith("/complete") for f in written)
    assert any(f.startswith("omics/simulation/steps/tree_sequence/") for f in written)
    assert any(f.startswith("omics/runs/omics_simulation/") for f in written)
    assert not any(f.startswith(".scratch/") for f in written)  # tools' work folders removed
    produced = {Path(f).parts[0] for f in _files(out)}
    assert produced == {"tetra", "ecod", "hcs", "cardio", "omics"}  # only where --out said
