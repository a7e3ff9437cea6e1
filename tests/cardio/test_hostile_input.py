"""Hostile study input (issue 29): a study folder dropped into the inbox is read only inside
itself, also after a file is swapped for a link once it was registered; a study the user
registered from the CLI reads as the user wrote it."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from cardio_assets.cli import main
from cardio_assets.definitions import defs as cardio_defs
from cardio_assets.defs.jobs import study_job
from cardio_assets.demo import REAL_ECG, make_study, write_cine_dicom
from cardio_assets.inputs import study_folder
from cardio_assets.partitions import studies
from cardio_assets.science import formats
from platform_core import cli
from platform_core.confine import InputFolder
from tests.support import failure_messages, outside_untouched, store, tick

SECRET = "not for the daemon"  # what outside_untouched writes to <outside>/secret.txt


def _outside(tmp_path: Path) -> Path:
    """``<tmp>/outside`` (outside_untouched's folder, which it then watches) holding readable
    study files: the real DICOM ECG, a WFDB record, metadata, a cine and ``leak.csv``, a CSV
    ECG whose sample row is the secret (a reader that parses it names the secret)."""
    outside = tmp_path / "outside"
    make_study(outside, echo=False, seed=40)  # ecg.hea, ecg.dat
    shutil.copy(get_testdata_file(REAL_ECG), outside / "real.dcm")
    (outside / "metadata.json").write_text(json.dumps({"age": 61}))
    write_cine_dicom(outside / "echo.dcm", np.full((12, 32, 32), 90, np.uint8), 33.3, 0.08)
    (outside / "leak.csv").write_text(f"# sampling_rate_hz: 500\nI\n{SECRET}\n")
    return outside


def _drop(name: str, add: Callable[[Path], None]) -> tuple[Path, dg.SensorResult]:
    """A complete ECG-only study ``name`` in the inbox, with ``add`` applied; one tick."""
    inbox = store("cardio").inbox()
    make_study(inbox / name, echo=False, ecg_format="csv", seed=41)
    add(inbox / name)
    (inbox / name / ".complete").touch()
    return inbox, tick(cardio_defs, "study_inbox_sensor", cli.instance())


def _rejected(inbox: Path, name: str, result: dg.SensorResult) -> str:
    """The rejection text of ``name``, checked: moved to rejected/, no partition, no run."""
    assert result.run_requests == []
    assert result.dynamic_partitions_requests == []
    assert (inbox / "rejected" / name).is_dir()
    assert not (inbox / "processed" / name).exists()
    assert name not in cli.instance().get_dynamic_partitions(studies.name)
    with pytest.raises(FileNotFoundError, match="not registered"):
        study_folder(store("cardio"), name)
    return (inbox / "rejected" / f"{name}.error.txt").read_text()


def test_dropped_link_out_of_the_study_is_rejected(cardio_home: Path, tmp_path: Path) -> None:
    with outside_untouched(tmp_path) as outside:
        inbox, result = _drop(
            "linked-out", lambda f: (f / "ecg.dcm").symlink_to(outside / "secret.txt")
        )
        error = _rejected(inbox, "linked-out", result)
    assert "ecg.dcm" in error
    assert "outside the study folder" in error


def test_unsafe_yaml_tag_is_rejected_and_never_constructed(
    cardio_home: Path, tmp_path: Path
) -> None:
    with outside_untouched(tmp_path) as outside:
        pwned = outside / "pwned"
        inbox, result = _drop(
            "yaml-tag",
            lambda f: (f / "study.yaml").write_text(
                f'!!python/object/apply:os.system ["touch {pwned}"]\n'
            ),
        )
        error = _rejected(inbox, "yaml-tag", result)
        assert not pwned.exists()
    assert "study.yaml" in error and "not valid YAML" in error


def test_file_swapped_for_a_link_after_registration_is_refused(
    cardio_home: Path, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    """Registered from the inbox (confined), then ``ecg.csv`` becomes a link to a CSV outside
    whose parsing would quote the secret: the run fails at the receipt naming the file, and
    the secret is nowhere in the run's events, the data root or the instance."""
    leak = _outside(tmp_path) / "leak.csv"
    with outside_untouched(tmp_path):
        _, result = _drop("swapped", lambda f: None)
        assert [r.partition_key for r in result.run_requests] == ["swapped"]
        folder = study_folder(store("cardio"), "swapped")
        assert folder.confined
        (folder.path / "ecg.csv").unlink()
        (folder.path / "ecg.csv").symlink_to(leak)
        inst = cli.instance()
        inst.add_dynamic_partitions(studies.name, ["swapped"])
        job = cardio_defs.resolve_job_def(study_job.name)
        run = cli.run_job(job, inst, partition_key="swapped")
    assert not run.success
    [failure] = [e for e in run.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert failure.step_key == "study_receipt"
    assert message.startswith("study swapped: ecg.csv: not read:")
    assert "outside the allowed roots" in message
    receipts = dg.AssetRecordsFilter(dg.AssetKey("study_receipt"), asset_partitions=["swapped"])
    assert not inst.fetch_materializations(receipts, limit=1).records
    # no stored value of any step: the only record of the study is its registration
    assert [p.parent.name for p in cardio_home.rglob("swapped.json")] == ["studys"]
    logs = inst.all_logs(run.run_id)
    assert logs and all(SECRET not in repr(entry) for entry in logs)
    written = [p for p in cardio_home.rglob("*") if p.is_file() and not p.is_symlink()]
    assert written and all(SECRET.encode() not in p.read_bytes() for p in written)
    out, err = capfd.readouterr()
    assert SECRET not in out + err


def test_readers_refuse_links_out_of_a_confined_study(tmp_path: Path) -> None:
    """Each reader, given a file swapped for a link after the receipt: refused naming the
    file when the study is confined, read through the same link when it is not."""
    outside = _outside(tmp_path)
    with outside_untouched(tmp_path):
        study = tmp_path / "study"
        make_study(study, echo=False, seed=42)  # WFDB ecg.hea / ecg.dat
        (study / "ecg.dat").unlink()
        (study / "ecg.dat").symlink_to(outside / "ecg.dat")
        for name, target in [("ecg.dcm", "real.dcm"), ("echo.dcm", "echo.dcm")]:
            (study / name).symlink_to(outside / target)
        (study / "metadata.json").symlink_to(outside / "metadata.json")
        cine = formats.echo_header(outside / "echo.dcm")
        reads: list[tuple[str, Callable[[InputFolder], object]]] = [
            ("ecg.dcm", lambda f: formats.identify(study / "ecg.dcm", f)),
            ("ecg.dcm", lambda f: formats.read_ecg(study / "ecg.dcm", "ecg-dicom", f)),
            ("ecg.dat", lambda f: formats.read_ecg(study / "ecg.hea", "ecg-wfdb", f)),
            ("echo.dcm", lambda f: formats.echo_header(study / "echo.dcm", f)),
            ("echo.dcm", lambda f: formats.read_echo(study / "echo.dcm", cine, f)),
            ("metadata.json", lambda f: formats.read_metadata(study / "metadata.json", f)),
        ]
        for file, read in reads:
            with pytest.raises(formats.StudyInputError) as refused:
                read(InputFolder(study, confined=True))
            assert str(refused.value).startswith(f"{file}: not read:"), file
            assert "outside the allowed roots" in str(refused.value)
            assert read(InputFolder(study, confined=False)) is not None, file


def test_cli_study_may_link_outside(cardio_home: Path, tmp_path: Path) -> None:
    """A study the user registers from the CLI is not confined: a link to their real ECG
    elsewhere is read."""
    outside = _outside(tmp_path)
    with outside_untouched(tmp_path):
        folder = cardio_home / "cli-linked"
        folder.mkdir()
        (folder / "ecg.dcm").symlink_to(outside / "real.dcm")
        assert main(["run", str(folder), "--quiet"]) == 0
        assert not study_folder(store("cardio"), "cli-linked").confined
        out = cardio_home / "cli-linked.json"
        assert main(["report", "--study", "cli-linked", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "ecg-only"
    assert report["results"]["ecg"]["r_peak_times_s"][0] == pytest.approx(0.527, abs=0.01)


def test_a_ui_run_reads_models_only_inside_the_input_roots(
    cardio_home: Path, tmp_path: Path
) -> None:
    """``models_dir`` set in a run's config (as the UI allows) outside the roots fails the run
    when its resources start, before any model file is read."""
    with outside_untouched(tmp_path) as outside:
        inst = cli.instance()
        inst.add_dynamic_partitions(studies.name, ["models"])
        job = cardio_defs.resolve_job_def(study_job.name)
        config = {"resources": {"cardio": {"config": {"models_dir": str(outside)}}}}
        run = job.execute_in_process(
            instance=inst, partition_key="models", run_config=config, raise_on_error=False
        )
    assert not run.success
    errors = failure_messages(run)
    assert any(
        f"run config models_dir '{outside}'" in e and "outside the allowed" in e for e in errors
    )
