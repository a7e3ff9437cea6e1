"""The confinement rules on their own: allowed roots, links, bounded gzip, the user's own
process, the step allowlist and the name rule."""

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from platform_core import confine as confine_module
from platform_core.confine import (
    ConfinementError,
    InputTooLargeError,
    check_gzip_size,
    confine,
    in_user_process,
    links_leaving,
    open_confined,
    user_process,
)
from platform_core.keys import InvalidNameError, validate_name
from platform_core.steps import StepNotAllowedError, resolve_step


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "root" / "sub" / "file.txt").write_text("inside")
    (tmp_path / "outside.txt").write_text("secret")
    return tmp_path / "root"


def test_confine_resolves_dots_home_and_links_before_judging(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert confine("sub/file.txt", [root], "input", base=root) == root / "sub" / "file.txt"
    monkeypatch.setenv("HOME", str(tmp_path))
    for value in ("../outside.txt", "sub/../../outside.txt", "~/outside.txt", "/etc/passwd"):
        with pytest.raises(ConfinementError, match="outside the allowed roots"):
            confine(value, [root], "input", base=root)
    (root / "link.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(ConfinementError, match=f"resolves to {tmp_path / 'outside.txt'}"):
        confine(root / "link.txt", [root], "input")
    assert links_leaving(root) == [(root / "link.txt", tmp_path / "outside.txt")]


def test_open_confined_never_follows_a_link_swapped_in(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = root / "sub" / "file.txt"
    with open_confined(inside, [root]) as handle:
        assert handle.read() == b"inside"
    inside.unlink()
    inside.symlink_to(tmp_path / "outside.txt")
    with pytest.raises(ConfinementError, match="outside the allowed roots"):
        open_confined(inside, [root])  # swapped before the check
    # swapped between the check and the open: the check saw the path as it was
    monkeypatch.setattr(confine_module, "confine", lambda path, roots, what: Path(path))
    with pytest.raises(ConfinementError, match="became a symbolic link; not followed"):
        open_confined(inside, [root])
    # a folder on the way swapped for a link: judged where the open file really is
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "file.txt").write_text("secret")
    inside.unlink()
    (root / "sub").rmdir()
    (root / "sub").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ConfinementError, match=f"opened as {tmp_path / 'elsewhere'}"):
        open_confined(inside, [root])
    monkeypatch.undo()
    os.mkfifo(root / "fifo")
    with pytest.raises(ConfinementError, match="not a regular file"):
        open_confined(root / "fifo", [root])  # refused at once: a pipe is never waited on


def test_a_gzip_bomb_is_stopped_at_the_limit(tmp_path: Path) -> None:
    bomb, plain = tmp_path / "bomb.gz", tmp_path / "plain.txt"
    with gzip.open(bomb, "wb") as handle:
        handle.write(b"\0" * 20_000_000)
    plain.write_text("not compressed")
    assert bomb.stat().st_size < 100_000
    with pytest.raises(InputTooLargeError, match="expands past 5 MB"):
        check_gzip_size(bomb, 5e6)
    assert check_gzip_size(bomb, 30e6) == 20_000_000
    assert check_gzip_size(plain, 1) is None
    (tmp_path / "broken.gz").write_bytes(bomb.read_bytes()[:500])
    with pytest.raises(ValueError, match="not a readable gzip"):
        check_gzip_size(tmp_path / "broken.gz", 30e6)


def test_the_user_process_reaches_its_children_but_not_a_daemon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probe = [
        sys.executable,
        "-c",
        "from platform_core.confine import in_user_process as f; print(f())",
    ]
    assert not in_user_process()
    with user_process():
        assert in_user_process()
        child = subprocess.run(probe, capture_output=True, text=True, check=True)
        assert child.stdout.strip() == "True"  # a step process the run started
    assert not in_user_process()
    monkeypatch.setenv("PLATFORM_USER_PROCESS", "999999999")  # leaked into a daemon's env
    assert not in_user_process()


@pytest.fixture
def hostile_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module whose import alone touches a sentinel file; and one that re-exports os.system."""
    sentinel = tmp_path / "imported"
    (tmp_path / "hostile_steps.py").write_text(
        f"from pathlib import Path\nPath({str(sentinel)!r}).touch()\n\n"
        "def wipe(ctx):\n    return ctx\n"
    )
    (tmp_path / "lab_steps.py").write_text("from os import system\nfrom shutil import rmtree\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PLATFORM_STEP_MODULES", raising=False)
    yield sentinel
    for name in ("hostile_steps", "lab_steps"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize(
    "func", ["os:system", "subprocess:run", "shutil:rmtree", "hostile_steps:wipe"]
)
def test_the_daemon_imports_no_unregistered_step_module(func: str, hostile_module: Path) -> None:
    with pytest.raises(StepNotAllowedError) as refused:
        resolve_step(func, {"flat_field": len}, "nuclei", "pipeline.yaml", user_code=False)
    message = str(refused.value)
    assert f"step 'nuclei' (pipeline.yaml): func {func!r} refused before import" in message
    assert "PLATFORM_STEP_MODULES (registered: none)" in message and "flat_field" in message
    assert not hostile_module.exists() and "hostile_steps" not in sys.modules


def test_registered_and_user_modules_are_imported(
    hostile_module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = {"flat_field": len}
    assert resolve_step("flat_field", shipped, "s", "f", user_code=False) is len
    assert resolve_step("json:dumps", shipped, "s", "f", user_code=True).__name__ == "dumps"
    monkeypatch.setenv("PLATFORM_STEP_MODULES", "hostile_steps, lab_steps")
    assert resolve_step("hostile_steps:wipe", shipped, "s", "f", user_code=False)(3) == 3
    assert hostile_module.exists()  # the gate, not the module, kept it out before
    with pytest.raises(StepNotAllowedError, match=r"shutil\.rmtree, re-exported"):
        resolve_step("lab_steps:rmtree", shipped, "s", "f", user_code=False)
    with pytest.raises(StepNotAllowedError, match="is not a function"):
        resolve_step("lab_steps:system", shipped, "s", "f", user_code=False)  # a builtin
    with pytest.raises(StepNotAllowedError, match="neither a shipped step"):
        resolve_step("rm -rf /", shipped, "s", "f", user_code=False)


@pytest.mark.parametrize("name", ["my_study", "_private", "Study2"])
def test_names_that_dagster_accepts(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["2fast", "my-study", "a/b", "../x", "", "x" * 129, "é"])
def test_names_that_dagster_refuses(name: str) -> None:
    with pytest.raises(InvalidNameError, match="Dagster's rule"):
        validate_name(name, "pipeline name")
