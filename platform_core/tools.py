"""Running external programs: no shell, timeouts, retries with backoff, CPU accounting.

Every tool call of every location goes through :func:`run_tool`, which never uses a shell,
kills the program when it overruns its timeout, retries with exponential backoff, and raises
:class:`ToolError` carrying the tail of the program's stderr when the last attempt fails. The
CPU time the program used (user + system, from ``wait4``) and its peak memory are returned so
callers can report how close a stage came to the machine's limit.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

STDERR_TAIL_CHARS = 1500

T = TypeVar("T")
R = TypeVar("R")


class ToolError(RuntimeError):
    """A tool exited non-zero, was killed, or overran its timeout on every attempt."""

    def __init__(self, argv: Sequence[str], reason: str, stderr_tail: str, attempts: int) -> None:
        self.argv = list(argv)
        self.reason = reason
        self.stderr_tail = stderr_tail
        self.attempts = attempts
        super().__init__(
            f"{Path(argv[0]).name} {reason} (after {attempts} attempt(s)); stderr tail:\n"
            f"{stderr_tail or '(empty)'}"
        )


@dataclass(frozen=True)
class ToolResult:
    stdout: str
    cpu_seconds: float
    wall_seconds: float
    peak_memory_mb: float = 0.0


def require_program(name: str) -> str:
    """Absolute path of ``name`` (a command on PATH or a path), or ToolError if missing."""
    found = shutil.which(name)
    if found is None:
        raise ToolError([name], "is not installed (not on PATH)", "", 0)
    return found


def _run_once(
    argv: Sequence[str], timeout: float, cwd: Path | None
) -> tuple[int, str, str, float, float]:
    """Run argv; return (exit status, stdout, stderr, cpu seconds, peak resident MB). Status -9
    means timeout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        code = -9 if timed_out.is_set() else proc.returncode
        return (
            code,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024,
        )


def run_tool(
    argv: Sequence[str],
    timeout: float,
    retries: int = 2,
    backoff_seconds: float = 1.0,
    cwd: Path | None = None,
) -> ToolResult:
    """Run ``argv`` (no shell) with a timeout; retry ``retries`` times with exponential backoff.

    Raises ToolError with the last stderr tail when every attempt failed.
    """
    started = time.perf_counter()
    cpu = 0.0
    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        code, stdout, stderr, used, peak = _run_once(argv, timeout, cwd)
        cpu += used
        if code == 0:
            return ToolResult(stdout, cpu, time.perf_counter() - started, peak)
        reason = f"timed out after {timeout:g} s" if code == -9 else f"exited with status {code}"
        if attempt == attempts:
            raise ToolError(argv, reason, stderr[-STDERR_TAIL_CHARS:].strip(), attempts)
        time.sleep(backoff_seconds * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def map_parallel(
    function: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    cost: Callable[[T], float] | None = None,
) -> list[R]:
    """``function`` over ``items`` on ``workers`` threads (each typically waits on one tool
    process), results in input order. With ``cost``, the costliest items start first, so the
    last worker is not left running one long item alone. Exceptions propagate."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    order = list(range(len(items)))
    if cost is not None:
        order.sort(key=lambda i: -cost(items[i]))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(function, [items[i] for i in order]))
    out: list[R] = [results[0]] * len(items)
    for position, index in enumerate(order):
        out[index] = results[position]
    return out


@functools.cache
def program_version(program: str, args: tuple[str, ...] = ("--version",)) -> str:
    """The line a program prints about its version (whatever its exit status: some tools print
    it with their usage and exit non-zero), for provenance metadata."""
    _, stdout, stderr, _, _ = _run_once([program, *args], 30.0, None)
    lines = [line.strip() for line in (stdout + "\n" + stderr).splitlines() if line.strip()]
    return next((line for line in lines if "version" in line.lower()), lines[0] if lines else "")
