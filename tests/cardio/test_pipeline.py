"""The cardio location end to end through the ``cardio`` CLI: modes, report, plots, hard
stops, degradation, retries, resume and the inbox sensor."""

import json
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pydicom
import pytest

from cardio_assets.cli import main
from cardio_assets.definitions import defs as cardio_defs
from cardio_assets.defs.jobs import study_job
from cardio_assets.demo import demo, make_study, write_cine_dicom, write_ecg_csv
from cardio_assets.inputs import study_folder
from cardio_assets.location import LOCATION
from cardio_assets.resources import PACKAGED_MODELS, CardioConfig
from cardio_assets.science import formats
from platform_core import cli
from tests.support import last_partition_run, latest_metadata, store, tick


def report(home: Path, study: str) -> dict:
    out = home / f"{study}.report.json"
    main(["report", "--study", study, "--out", str(out)])
    return json.loads(out.read_text())


def test_demo_studies_run_in_every_mode(cardio_home: Path) -> None:
    folders = demo(cardio_home / "demo")
    for folder in folders:
        assert main(["run", str(folder), "--quiet"]) == 0, folder.name
    modes = {f.name: report(cardio_home, f.name) for f in folders}
    assert {k: v["mode"] for k, v in modes.items()} == {
        "study-sinus": "full",
        "study-irregular": "full",
        "study-brady": "ecg-only",
        "study-tachy": "full",
        "study-real": "full",
    }
    sinus = modes["study-sinus"]
    assert sinus["error"] is None
    assert sinus["pipeline_execution"]["branches_executed"] == ["echo", "ecg", "metadata"]
    assert sinus["pipeline_execution"]["states_traversed"][-1] == "COMPLETE"
    assert sinus["pipeline_execution"]["checkpoints_saved"] == 7
    assert sinus["pipeline_execution"]["retries_performed"] == 0
    assert set(sinus["stage_timings"]) >= {
        "RECEIPT",
        "VALIDATION",
        "PREPROCESSING",
        "DETECTION",
        "ANALYSIS",
        "FUSION",
        "SCORING",
    }
    assert 65 < sinus["results"]["ecg"]["heart_rate_bpm"] < 80
    assert 55 < sinus["results"]["echo"]["ef_percent"] < 65
    assert sinus["results"]["fusion"]["cycle_vs_rr"]["consistent"]
    real = modes["study-real"]
    assert real["results"]["ecg"]["r_peak_times_s"][0] == pytest.approx(0.527, abs=0.01)
    assert 40 <= real["results"]["echo"]["ef_percent"] <= 75
    irregular = modes["study-irregular"]
    assert "irregular rhythm, review" in irregular["results"]["ecg"]["flags"]
    assert irregular["results"]["risk"]["cha2ds2_vasc"]["score"] == 4  # H, A2 (78), Sc
    assert irregular["results"]["risk"]["cha2ds2_vasc"]["lower_bound"]
    assert "brady" in modes["study-brady"]["results"]["ecg"]["flags"][0]
    assert modes["study-brady"]["results"]["echo"] is None
    inst = cli.instance()
    assert "data:image/png;base64," in latest_metadata(inst, "ecg_features", "study-sinus")["strip"]
    assert (
        "data:image/png;base64,"
        in latest_metadata(inst, "echo_function", "study-sinus")["lv_volume_curve"]
    )


def test_unusable_echo_degrades_to_ecg_only_with_the_reason(cardio_home: Path) -> None:
    folder = cardio_home / "noisy-echo"
    make_study(folder, echo=False, seed=5)
    speckle = np.random.default_rng(0).rayleigh(60, size=(40, 128, 128)).clip(0, 255)
    write_cine_dicom(folder / "echo.dcm", speckle.astype(np.uint8), 33.3, 0.08)
    assert main(["run", str(folder), "--quiet"]) == 0
    result = report(cardio_home, "noisy-echo")
    assert result["mode"] == "ecg-only"
    assert result["results"]["echo"] is None
    [degraded] = result["degradations"]
    assert degraded["branch"] == "echo" and degraded["status"] == "skipped"
    # speckle with no heart: either no trustworthy cavity or no cardiac cycle in its area
    assert degraded["reason"].startswith(("low-confidence LV detection", "no full cardiac cycle"))


def _run(folder: Path, cardio: CardioConfig) -> bool:
    """Register and run a study with these settings (the CLI reads them from the environment
    at start-up; a test swaps the resource)."""
    assert main(["submit", str(folder)]) == 0
    defs = LOCATION.definitions(cardio=cardio)
    job = defs.resolve_job_def(study_job.name)
    return cli.run_job(job, cli.instance(), partition_key=folder.name).success


def _expect_hard_stop(
    home: Path, folder: Path, code: str, cardio: CardioConfig | None = None
) -> dict:
    if cardio is None:
        assert main(["run", str(folder), "--quiet"]) == 1
    else:
        assert not _run(folder, cardio)
    result = report(home, folder.name)
    assert result["mode"] is None
    assert result["error"]["code"] == code
    return result


def test_nothing_usable_is_e_hard_001(cardio_home: Path) -> None:
    folder = cardio_home / "only-metadata"
    folder.mkdir()
    (folder / "metadata.json").write_text('{"age": 50}')
    assert (
        "neither an ECG nor an echo"
        in _expect_hard_stop(cardio_home, folder, "E_HARD_001")["error"]["message"]
    )


def test_limits_are_hard_stops_before_reading(cardio_home: Path) -> None:
    big = cardio_home / "big-echo"
    make_study(big, profile=None, seed=6)
    result = _expect_hard_stop(cardio_home, big, "E_HARD_004", CardioConfig(max_input_mb=1))
    assert "echo.dcm" in result["error"]["message"] and result["error"]["step"] == "study_receipt"
    huge = cardio_home / "huge-echo"
    make_study(huge, profile=None, seed=7)
    result = _expect_hard_stop(cardio_home, huge, "E_HARD_002", CardioConfig(memory_limit_mb=10))
    assert result["error"]["step"] == "validated_study"


def test_corrupted_model_file_is_e_hard_003_and_not_retried(cardio_home: Path) -> None:
    models = cardio_home / "models"
    shutil.copytree(PACKAGED_MODELS, models)
    (models / "lv_template.json").write_text('{"smoothing_fraction": 0.5}')
    folder = cardio_home / "model-check"
    make_study(folder, seed=8)
    result = _expect_hard_stop(
        cardio_home, folder, "E_HARD_003", CardioConfig(models_dir=str(models))
    )
    assert "lv_template.json" in result["error"]["message"]
    inst = cli.instance()
    run = last_partition_run(inst, "model-check", [study_job.name])
    assert not inst.all_logs(run.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)


def test_batches_fit_the_memory_limit_and_a_memory_error_retries_with_half(
    cardio_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = cardio_home / "batches"
    make_study(folder, seed=9)
    # a 256 x 256 grey frame is 0.52 MB as float64: 19 frames fit 10 MB, 64 would not
    assert _run(folder, CardioConfig(max_batch_mb=10.0))
    inst = cli.instance()
    assert report(cardio_home, "batches")["pipeline_execution"]["retries_performed"] == 0
    assert latest_metadata(inst, "echo_preprocessed", "batches")["batch_frames"] == 19

    decode = formats.grey_frames

    def out_of_memory_above_16(pixels: np.ndarray, header: formats.EchoHeader) -> np.ndarray:
        if len(pixels) > 16:
            raise MemoryError(f"cannot allocate {len(pixels)} frames")
        return decode(pixels, header)

    monkeypatch.setattr(formats, "grey_frames", out_of_memory_above_16)
    folder = cardio_home / "oom"
    make_study(folder, seed=9)
    # the stage in the run's process (no time limit), where the patched decoder applies
    assert _run(folder, CardioConfig(stage_timeouts_s={"echo_preprocessed": 0}))  # 64, 32, 16
    assert report(cardio_home, "oom")["pipeline_execution"]["retries_performed"] == 2
    assert latest_metadata(inst, "echo_preprocessed", "oom")["batch_frames"] == 16


def test_inbox_runs_a_complete_study_once(cardio_home: Path) -> None:
    inbox = cardio_home / "data" / "cardio" / "inbox"
    make_study(inbox / "inbox-study", echo=False, seed=10)
    (inbox / "inbox-study" / ".complete").touch()
    bad = inbox / "bad..name"
    bad.mkdir(parents=True)
    (bad / ".complete").touch()
    inst = cli.instance()
    first = tick(cardio_defs, "study_inbox_sensor", inst)
    assert [r.partition_key for r in first.run_requests] == ["inbox-study"]
    assert (inbox / "rejected" / "bad..name.error.txt").exists()
    again = tick(cardio_defs, "study_inbox_sensor", inst, first.cursor)
    assert again.run_requests == []
    # the study left the inbox and is read where it landed
    source = study_folder(store("cardio"), "inbox-study").path
    assert source == inbox / "processed" / "inbox-study"
    assert sorted(p.name for p in inbox.iterdir()) == ["processed", "rejected"]


def test_dicom_ecg_header_is_read_by_content(cardio_home: Path) -> None:
    """A DICOM ECG named like anything is recognised by its SOP class."""
    source = pydicom.dcmread(pydicom.data.get_testdata_file("waveform_ecg.dcm"))
    folder = cardio_home / "renamed"
    folder.mkdir()
    source.save_as(folder / "recording.bin")
    assert main(["run", str(folder), "--quiet"]) == 0
    assert report(cardio_home, "renamed")["mode"] == "ecg-only"


def test_failed_step_resumes_without_redoing_the_steps_before_it(cardio_home: Path) -> None:
    """A corrupted model file stops the study at the first step that loads it; once the
    operator fixes the settings, ``cardio resume`` re-executes from that step only."""
    models = cardio_home / "models-resume"
    shutil.copytree(PACKAGED_MODELS, models)
    (models / "thresholds.json").write_text("{}")
    folder = cardio_home / "resumable"
    make_study(folder, seed=11)
    assert not _run(folder, CardioConfig(models_dir=str(models)))
    inst = cli.instance()
    failed = last_partition_run(inst, "resumable", [study_job.name])
    done_before = {s.step_key for s in inst.get_run_step_stats(failed.dagster_run.run_id)}
    assert {"study_receipt", "validated_study", "ecg_preprocessed"} <= done_before
    # the location's own settings (the packaged models) are the fix
    assert main(["resume", "--study", "resumable"]) == 0
    resumed = last_partition_run(inst, "resumable", [study_job.name])
    assert resumed.dagster_run.parent_run_id == failed.dagster_run.run_id
    redone = {s.step_key for s in inst.get_run_step_stats(resumed.dagster_run.run_id)}
    assert "cardio_report" in redone
    assert not redone & {"study_receipt", "validated_study", "ecg_preprocessed"}
    assert report(cardio_home, "resumable")["mode"] == "full"
    with pytest.raises(SystemExit) as refused:  # nothing failed: nothing to resume
        main(["resume", "--study", "resumable"])
    assert refused.value.code == 2


def test_noisy_ecg_stops_at_the_quality_gate(cardio_home: Path, capsys) -> None:
    """No ECG in the signal (muscle-band noise in every lead): the blocking gate fails, the
    ECG is not analysed, the run fails and says why."""
    folder = cardio_home / "noise-only"
    folder.mkdir()
    noise = np.random.default_rng(12).normal(0, 300, (10_000, 3))
    write_ecg_csv(folder / "ecg.csv", noise, 1000.0, ("I", "II", "III"))
    assert main(["run", str(folder), "--quiet"]) == 1
    assert "quality gate ecg_quality_gate: ECG quality" in capsys.readouterr().err
    inst = cli.instance()
    run = last_partition_run(inst, "noise-only", [study_job.name])
    gates = {
        entry.dagster_event.event_specific_data.check_name: entry.dagster_event.event_specific_data
        for entry in inst.all_logs(
            run.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
    }
    assert gates["echo_quality_gate"].passed  # no echo: nothing to gate
    assert not gates["ecg_quality_gate"].passed
    assert "too noisy" in gates["ecg_quality_gate"].description
    features = dg.AssetRecordsFilter(dg.AssetKey("ecg_features"), asset_partitions=["noise-only"])
    assert not inst.fetch_materializations(features, limit=1).records
    failed = report(cardio_home, "noise-only")
    assert failed["mode"] is None
    assert failed["error"]["step"] == "ecg_preprocessed_ecg_quality_gate"


def test_many_studies_run_as_one_run_each(cardio_home: Path, capsys) -> None:
    """``cardio run A B C``: each study its own partition run, side by side; one failing study
    fails the command and leaves the others' results."""
    folders = [cardio_home / "many" / f"many-{i}" for i in range(3)]
    for i, folder in enumerate(folders[:2]):
        make_study(folder, echo=False, seed=20 + i)
    folders[2].mkdir()
    (folders[2] / "metadata.json").write_text('{"age": 50}')  # nothing usable: E_HARD_001
    capsys.readouterr()
    assert main(["run", *map(str, folders), "--quiet", "--json"]) == 1
    rows = {row["study"]: row for row in json.loads(capsys.readouterr().out)}
    assert [rows[f"many-{i}"]["status"] for i in range(3)] == ["SUCCESS", "SUCCESS", "FAILURE"]
    assert [rows[f"many-{i}"]["mode"] for i in range(2)] == ["ecg-only", "ecg-only"]
    assert rows["many-2"]["error"] == "E_HARD_001"
    runs = {rows[f"many-{i}"]["last_run"] for i in range(3)}
    assert len(runs) == 3
    for run_id in runs:
        assert cli.instance().get_run_by_id(run_id).tags["dagster/partition"].startswith("many-")
