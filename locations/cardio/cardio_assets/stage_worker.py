"""A stage's work in a worker process, under the stage's time limit.

A thread blocked in a read (a hung network mount, a pipe nobody writes) cannot be stopped;
a process can. Each run process keeps one warm worker (started, its imports done, before the
clock starts) and hands it a stage's work with the limit; past the limit the worker is
killed, replaced at the next call, and ``StageTimeout`` is raised, which the seed's retry rule
turns into retries with exponential back-off (``defs.assets.common.recoverable``).

The worker is ``python -m cardio_assets.stage_worker``, not a multiprocessing spawn: a spawned
child re-runs its parent's main script first (the ``cardio`` console script imports Dagster
and the whole location), while this one imports only ``cardio_assets.stage_work``, the
stages' work without Dagster. It talks over a socket pair (multiprocessing's ``Connection``)
and exits when its run process is gone (a pipe whose write end only the run process holds),
also in the middle of a hung stage.
"""

import importlib
import os
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

Result = TypeVar("Result")
WORK_MODULE = "cardio_assets.stage_work"  # all the worker imports before it says ready
START_LIMIT_S = 300.0  # a worker that cannot import in 5 minutes is broken, not slow


class StageTimeout(TimeoutError):
    """A stage that ran past its time limit and was stopped."""

    def __init__(self, stage: str, study: str, limit_s: float) -> None:
        super().__init__(f"stage {stage} of study {study} exceeded {limit_s:g} s")
        self.stage, self.study, self.limit_s = stage, study, limit_s

    def __reduce__(self) -> tuple:
        return type(self), (self.stage, self.study, self.limit_s)


def _exit_with_parent(parent_alive: int) -> None:
    """Ends the worker when the run process is gone (the pipe's write end closed with it),
    whatever the worker is doing: a worker never outlives its run."""
    os.read(parent_alive, 1)
    os._exit(1)


def _serve(connection: Connection, parent_alive: int) -> None:
    """The worker: import, say ready, then run each ``(function, args)`` received and send
    back ``("ok", result)`` or ``("error", (exception, traceback text))``, until the run
    process closes its end."""
    threading.Thread(target=_exit_with_parent, args=(parent_alive,), daemon=True).start()
    importlib.import_module(WORK_MODULE)
    connection.send(("ready", None))
    while True:
        try:
            function, args = connection.recv()
        except EOFError:
            return
        try:
            connection.send(("ok", function(*args)))
        except Exception as error:  # every error of the work goes back to the stage
            text = traceback.format_exc()
            try:
                connection.send(("error", (error, text)))
            except Exception:  # an exception that cannot cross processes
                connection.send(("error", (RuntimeError(f"{type(error).__name__}: {error}"), text)))


class StageWorker:
    """One worker process, started on first use and after a kill."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._connection: Connection | None = None
        self._parent_alive: int | None = None  # the write end the worker watches

    def _start(self) -> Connection:
        ours, theirs = socket.socketpair()
        alive_read, alive_write = os.pipe()
        fds = (theirs.fileno(), alive_read)
        try:  # its stderr is the run's: an import error shows there
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, *map(str, fds)], pass_fds=fds
            )
        finally:
            theirs.close()
            os.close(alive_read)
        connection = Connection(ours.detach())
        self._process, self._connection, self._parent_alive = process, connection, alive_write
        try:
            ready = connection.poll(START_LIMIT_S) and connection.recv()
        except EOFError:  # it died importing (its traceback is on the run's stderr)
            ready = None
        if not ready:
            self.stop()
            raise RuntimeError(
                f"the stage worker did not import {WORK_MODULE} (exit code "
                f"{process.returncode}; -9: still importing after {START_LIMIT_S:g} s)"
            )
        return connection

    def _send(self, call: tuple) -> Connection:
        """``call`` sent to the worker, started if need be (again if the idle one died)."""
        connection = self._connection or self._start()
        try:
            connection.send(call)
        except (BrokenPipeError, ConnectionResetError):
            self.stop()
            connection = self._start()
            connection.send(call)
        return connection

    def run(
        self, stage: str, study: str, limit_s: float, function: Callable[..., Result], *args: Any
    ) -> Result:
        """``function(*args)`` in the worker; StageTimeout after ``limit_s`` seconds of work
        (the worker's start-up is not counted), the worker killed. An error of the work is
        raised here as it was raised there, with the worker's traceback as a note."""
        connection = self._send((function, args))
        if not connection.poll(limit_s):
            self.stop()
            raise StageTimeout(stage, study, limit_s)
        try:
            kind, payload = connection.recv()
        except EOFError:  # the worker died (killed, out of memory)
            code = self._process.wait() if self._process else None
            self.stop()
            raise RuntimeError(f"stage {stage} of study {study}: worker died ({code})") from None
        if kind == "error":
            error, text = payload
            error.add_note(f"in the stage worker:\n{text}")
            raise error
        return payload

    def stop(self) -> None:
        """Kill the worker now (the next call starts another)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
        if self._connection is not None:
            self._connection.close()
        if self._parent_alive is not None:
            os.close(self._parent_alive)
        self._process = self._connection = self._parent_alive = None


_WORKERS: dict[int, StageWorker] = {}


def run_stage(
    stage: str, study: str, limit_s: float, function: Callable[..., Result], *args: Any
) -> Result:
    """``function(*args)`` under the stage's limit in this process's warm worker; a limit of
    0 runs it here, unlimited (for a debugger or profiler)."""
    if limit_s <= 0:
        return function(*args)
    worker = _WORKERS.setdefault(os.getpid(), StageWorker())
    return worker.run(stage, study, limit_s, function, *args)


if __name__ == "__main__":  # the worker: python -m cardio_assets.stage_worker SOCKET PIPE
    _serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
