"""Side-by-side runs reuse warm worker processes, but never with a stale environment."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from platform_core.pool import map_shared, process_pool, warm_shared


def test_worker_pool_is_kept_only_while_environment_and_directory_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = process_pool(1)
    pid = first.submit(os.getpid).result()
    assert process_pool(1) is first
    assert first.submit(os.getpid).result() == pid  # the same warm process, no new spawn

    monkeypatch.setenv("PLATFORM_DATA_ROOT", str(tmp_path))
    second = process_pool(1)
    assert second is not first
    assert second.submit(os.getenv, "PLATFORM_DATA_ROOT").result() == str(tmp_path)
    with pytest.raises(RuntimeError, match="shutdown"):
        first.submit(os.getpid)  # the stale pool is gone

    monkeypatch.chdir(tmp_path)
    third = process_pool(1)
    assert third is not second
    assert third.submit(os.getcwd).result() == str(tmp_path)


def _pid_after(seconds: float) -> int:
    time.sleep(seconds)  # a stand-in for a run's work: lets the other side take the next call
    return os.getpid()


def _write_pid(path: str) -> None:
    Path(path).write_text(str(os.getpid()))


def test_warmed_workers_serve_the_next_shared_map(tmp_path: Path) -> None:
    """warm_shared starts the worker (running its warm-up) before map_shared, which reuses it."""
    warm_shared(2, _write_pid, str(tmp_path / "pid"))
    pids = map_shared(_pid_after, [(1.0,), (0.0,)], size=2)
    assert pids[0] == os.getpid()
    assert pids[1] == int((tmp_path / "pid").read_text())  # the warmed worker, not a new one


def _fail_on(value: int) -> int:
    time.sleep(0.5 if value == 1 else 0)  # call 1, taken here first, holds this process
    if value == 3:
        raise ValueError(f"call {value} failed")
    return value


def test_shared_map_uses_this_process_and_a_worker_in_order() -> None:
    """This process takes the first call (the longest) at once, each side the next call when
    it is free; results come back in call order and both sides did work."""
    pids = map_shared(_pid_after, [(1.0,), (0.1,), (0.1,), (0.1,)], size=2)
    assert pids[0] == os.getpid()  # the longest call started here at once
    assert set(pids[1:]) - {os.getpid()}, pids  # the worker took the rest while it ran
    done: list[int] = []
    assert map_shared(_pid_after, [(0,)], size=2, on_result=done.append) == [os.getpid()]
    assert done == [1]


def test_shared_map_raises_an_error_from_either_side() -> None:
    with pytest.raises(ValueError, match="call 3 failed"):
        map_shared(_fail_on, [(1,), (2,), (3,)], size=2)  # 3 fails in the worker (1 holds here)
    with pytest.raises(ValueError, match="call 3 failed"):
        map_shared(_fail_on, [(3,), (1,)], size=2)  # 3 fails here


CONSOLE = """
import os, sys
from platform_core import cli, pool

def main():
    pool.warm_shared(2, os.getpid)
    print(pool.process_pool(1).submit(os.getpid).result(), end="")
    return int(sys.argv[1]) if sys.argv[1].isdigit() else cli.fail(sys.argv[1])

if __name__ == "__main__":
    cli.console(main)()
"""


@pytest.mark.parametrize(("argument", "code"), [("0", 0), ("3", 3), ("bad input", 2)])
def test_console_command_flushes_exits_with_mains_code_and_kills_its_workers(
    tmp_path: Path, argument: str, code: int
) -> None:
    """cli.console kills the pool's idle workers when main returns (this pins the executor's
    private ``_processes``) and exits with main's code, its output intact and no warning."""
    script = tmp_path / "command.py"
    script.write_text(CONSOLE)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, str(script), argument], capture_output=True, text=True, env=env
    )
    assert done.returncode == code, done.stderr
    worker = int(done.stdout)  # printed before the exit: flushed
    assert done.stderr == ("error: bad input\n" if code == 2 else "")  # e.g. no leak warning
    deadline = time.monotonic() + 30
    while Path(f"/proc/{worker}").exists() and _state(worker) != "Z":
        assert time.monotonic() < deadline, f"worker {worker} outlived its command"
        time.sleep(0.1)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "Z"
