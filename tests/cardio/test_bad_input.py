"""Bad study input: each case fails with the file and the reason, and the materializations of
an earlier study stay byte-identical."""

import hashlib
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from cardio_assets.cli import main
from cardio_assets.demo import make_study, median_beat, write_cine_dicom, write_ecg_csv
from tests.support import data_root


def _tree_digest() -> dict[str, str]:
    root = data_root() / "cardio"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "good" in p.name
    }


@pytest.fixture(scope="module")
def good_study(cardio_home: Path) -> dict[str, str]:
    make_study(cardio_home / "good", seed=1, metadata={"age": 60})
    assert main(["run", str(cardio_home / "good"), "--quiet"]) == 0
    return _tree_digest()


def _ecg_csv(folder: Path, seconds: float = 10.0, hz: float = 500.0, **edit: float) -> None:
    beat, _, beat_hz, leads = median_beat()
    t = np.arange(int(seconds * hz)) / hz
    signal = np.column_stack(
        [np.interp(t % 1.0, np.arange(len(beat)) / beat_hz, beat[:, k]) for k in range(len(leads))]
    )
    if "flat" in edit:
        signal[:] = 0.0
    if "nan_at" in edit:
        signal[int(edit["nan_at"]), 1] = np.nan
    write_ecg_csv(folder / "ecg.csv", signal, hz, leads)


def _not_dicom(folder: Path) -> None:
    (folder / "echo.dcm").write_bytes(b"this is a text file named like DICOM\n" * 10)


def _other_sop_class(folder: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.save_as(folder / "scan.dcm")


def _ecg_100_hz(folder: Path) -> None:
    _ecg_csv(folder, hz=100.0)


def _ecg_3_s(folder: Path) -> None:
    _ecg_csv(folder, seconds=3.0)


def _flat_ecg(folder: Path) -> None:
    _ecg_csv(folder, flat=1)


def _nan_ecg(folder: Path) -> None:
    _ecg_csv(folder, nan_at=1234)


def _three_frame_echo(folder: Path) -> None:
    write_cine_dicom(folder / "echo.dcm", np.full((3, 64, 64), 90, np.uint8), 33.3, 0.08)


def _age_250(folder: Path) -> None:
    _ecg_csv(folder)
    (folder / "metadata.json").write_text(json.dumps({"age": 250}))


def _unknown_keys(folder: Path) -> None:
    _ecg_csv(folder)
    (folder / "metadata.json").write_text(json.dumps({"age": 50, "favourite_colour": "red"}))


def _ecg_signal_fifo(folder: Path) -> None:
    """The WFDB record's samples are a pipe: reading it would block for ever."""
    make_study(folder, echo=False, seed=2)
    (folder / "ecg.dat").unlink()
    os.mkfifo(folder / "ecg.dat")


def _socket_beside_ecg(folder: Path) -> None:
    _ecg_csv(folder)
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(folder / "feed"))  # the socket file stays after close


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "ecg-fifo": (_ecg_signal_fifo, "ecg.dat: a named pipe (FIFO), not a regular file"),
    "socket": (_socket_beside_ecg, "feed: a socket, not a regular file"),
    "not-dicom": (_not_dicom, "echo.dcm: not DICOM"),
    "other-sop": (_other_sop_class, "scan.dcm: DICOM of SOP class 1.2.840.10008.5.1.4.1.1.2 (CT"),
    "ecg-100hz": (_ecg_100_hz, "ecg.csv: sampled at 100 Hz"),
    "ecg-3s": (_ecg_3_s, "ecg.csv: 3.0 s long"),
    "ecg-flat": (_flat_ecg, "ecg.csv: flat signal"),
    "ecg-nan": (_nan_ecg, "ecg.csv: 1 missing or non-finite samples (first: sample 1234, lead II)"),
    "echo-3-frames": (_three_frame_echo, "echo.dcm: 3 frames"),
    "age-250": (_age_250, "metadata.json: age 250"),
    "unknown-keys": (_unknown_keys, "metadata.json: unknown keys ['favourite_colour']"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_fails_naming_file_and_reason(
    case: str, cardio_home: Path, good_study: dict[str, str], capsys: pytest.CaptureFixture
) -> None:
    write, message = CASES[case]
    folder = cardio_home / case
    folder.mkdir()
    write(folder)
    assert main(["run", str(folder), "--quiet"]) == 1
    assert message in capsys.readouterr().err
    out = cardio_home / f"{case}.json"
    assert main(["report", "--study", case, "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["mode"] is None and message in report["error"]["message"]
    assert not (data_root() / "cardio" / "cardio_report" / f"{case}.json").exists()
    assert _tree_digest() == good_study


@pytest.mark.parametrize("name", ["a/b", "..", "x..y"])
def test_hostile_study_names_are_refused(name: str, cardio_home: Path, capsys) -> None:
    folder = cardio_home / "hostile"
    folder.mkdir(exist_ok=True)
    with pytest.raises(SystemExit) as exit_info:
        main(["submit", str(folder), "--study", name])
    assert exit_info.value.code == 2
    assert "invalid key" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "--study", "good", "--step", "nosuch", "--out", "x.tsv"], "no such asset"),
        (["export", "--study", "good", "--out", "{file}/x.tsv"], "a-file"),
        (["demo", "--out", "{file}/demo"], "a-file"),
    ],
)
def test_bad_output_or_step_is_one_line_and_exit_2(
    argv: list[str],
    message: str,
    cardio_home: Path,
    good_study: dict[str, str],
    capsys: pytest.CaptureFixture,
) -> None:
    """An unknown step, or an output path under a file, is one error line naming it."""
    a_file = cardio_home / "a-file"
    a_file.write_text("not a folder\n")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([arg.format(file=a_file) for arg in argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert _tree_digest() == good_study
