"""Stage time limits: a stage that hangs for real (reading a pipe nobody writes, as a hung
network mount) is killed, retried with exponential back-off, and fails the run naming the
stage, the study and the limit; what was materialized before stays as it was."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from cardio_assets.cli import main
from cardio_assets.defs.assets.common import retry_rule
from cardio_assets.defs.jobs import study_job
from cardio_assets.demo import make_study
from cardio_assets.location import LOCATION
from cardio_assets.resources import CardioConfig
from cardio_assets.stage_worker import StageWorker
from platform_core import cli
from platform_core.platform_config import CONFIG_ENV, ConfigError

STUDY = "hung-ecg"


def _latest(inst: dg.DagsterInstance, asset: str) -> dg.EventLogRecord:
    records = inst.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[STUDY]), limit=1
    ).records
    assert records, asset
    return records[0]


def test_a_hung_stage_is_killed_retried_with_backoff_then_fails(
    cardio_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = cardio_home / STUDY
    make_study(folder, echo=False, seed=30)
    assert main(["run", str(folder), "--quiet"]) == 0
    inst = cli.instance()
    before = {a: _latest(inst, a) for a in ("validated_study", "ecg_preprocessed")}
    cleaned = next((cardio_home / "data").rglob(f"ecg_preprocessed/{STUDY}*cleaned.npy"))
    cleaned_bytes = cleaned.read_bytes()
    # the ECG's samples become a pipe nobody writes: reading it blocks for ever
    signal = folder / "ecg.dat"
    signal.unlink()
    os.mkfifo(signal)
    settings = cardio_home / "platform.yaml"
    settings.write_text(
        "locations:\n  cardio:\n    stage_timeouts_s: {ecg_preprocessed: 0.5}\n"
        "    timeout_retry_wait_s: 0.05\n"
    )
    monkeypatch.setenv(CONFIG_ENV, str(settings))
    job = LOCATION.definitions().resolve_job_def(study_job.name)
    result = cli.run_job(
        job, inst, partition_key=STUDY, asset_selection=[dg.AssetKey("ecg_preprocessed")]
    )

    assert not result.success
    retries = inst.all_logs(result.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
    waits = [r.dagster_event.event_specific_data.seconds_to_wait for r in retries]
    assert waits == pytest.approx([0.05, 0.1, 0.2])  # 3 retries, exponential back-off
    [failure] = result.get_step_failure_events()
    error = failure.step_failure_data.error
    assert f"stage ecg_preprocessed of study {STUDY} exceeded 0.5 s" in (
        error.cause.message if error.cause else error.message
    )
    # nothing new looks complete: the earlier materializations and their files are unchanged
    for asset, record in before.items():
        assert _latest(inst, asset).storage_id == record.storage_id, asset
    assert cleaned.read_bytes() == cleaned_bytes
    # the hung reader was killed: nobody holds the pipe open any more
    with pytest.raises(OSError) as no_reader:
        os.close(os.open(signal, os.O_WRONLY | os.O_NONBLOCK))
    assert no_reader.value.errno == errno.ENXIO


def test_stage_limits_name_known_stages(cardio_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        CardioConfig(stage_timeouts_s={"echo_lv_detection": 5}).time_limit_s("echo_lv_detection")
        == 5
    )
    assert CardioConfig(stage_timeout_s=30).time_limit_s("ecg_features") == 30
    settings = cardio_home / "typo.yaml"
    settings.write_text("locations:\n  cardio:\n    stage_timeouts_s: {ecg: 3}\n")
    monkeypatch.setenv(CONFIG_ENV, str(settings))
    with pytest.raises((ConfigError, ValueError), match="no stage ecg"):
        LOCATION.definitions()


def test_the_seed_retry_table() -> None:
    """Timeout: 3, exponential; transient network (a network mount gone stale): 3, fixed."""
    assert retry_rule(TimeoutError("slow")) == (3, 1.0, True)
    assert retry_rule(ConnectionResetError()) == (3, 2.0, False)
    assert retry_rule(OSError(errno.ESTALE, "Stale file handle")) == (3, 2.0, False)
    assert retry_rule(OSError(errno.ENOENT, "gone")) is None
    assert retry_rule(ValueError("bad input")) is None


def test_the_worker_imports_the_work_not_dagster() -> None:
    """The warm worker holds the stages' work and science, not Dagster nor the location's
    definitions (their imports would cost every run process ~1 s more)."""
    worker = StageWorker()
    try:
        loaded = worker.run(
            "probe",
            "-",
            60,
            eval,  # a builtin: the one function the worker can run without importing more
            "sorted(m for m in __import__('sys').modules "
            "if m.split('.')[0] in ('dagster', 'cardio_assets'))",
        )
    finally:
        worker.stop()
    assert "cardio_assets.stage_work" in loaded
    assert "cardio_assets.science.ecg" in loaded
    assert not [m for m in loaded if m.startswith(("dagster", "cardio_assets.defs"))], loaded


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (nobody may reap it in a container)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_a_hung_worker_ends_with_its_run_process() -> None:
    """A run process killed (-9) while its stage hangs takes the worker with it."""
    run_process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from cardio_assets.stage_worker import StageWorker\n"
            "worker = StageWorker()\n"
            "worker._start()\n"
            "print(worker._process.pid, flush=True)\n"
            "worker.run('stage', 'study', 600, time.sleep, 600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert run_process.stdout is not None
    worker_pid = int(run_process.stdout.readline())
    assert not _gone(worker_pid)
    run_process.send_signal(signal.SIGKILL)
    run_process.wait()
    deadline = time.monotonic() + 30
    while not _gone(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # polls the condition above
    assert _gone(worker_pid), "the stage worker outlived its run process"
