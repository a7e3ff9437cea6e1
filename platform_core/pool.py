"""One process pool helper for every location: spawned workers (no forked copies of open
connections) kept warm for the life of the process, so repeated work skips Python start-up
and imports; replaced when the environment or working directory it was spawned with changes,
and dropped when a worker dies."""

import atexit
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

Result = TypeVar("Result")
_POOLS: dict[tuple, ProcessPoolExecutor] = {}


def process_pool(size: int, initializer: Callable[[], None] | None = None) -> ProcessPoolExecutor:
    """``size`` spawned workers, each started with ``initializer``; the same pool while size,
    initializer, environment and working directory are unchanged (a changed environment, e.g.
    another data root, replaces every pool: workers see the environment of their spawn)."""
    context = (os.getcwd(), tuple(sorted(os.environ.items())))
    for key in [k for k in _POOLS if k[2:] != context]:
        _POOLS.pop(key).shutdown()
    key = (size, initializer, *context)
    if key not in _POOLS:
        _POOLS[key] = ProcessPoolExecutor(
            max_workers=size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=initializer,
        )
    return _POOLS[key]


def map_in_pool(
    function: Callable[..., Result],
    calls: Iterable[tuple[Any, ...]],
    size: int,
    initializer: Callable[[], None] | None = None,
    on_result: Callable[[int], None] | None = None,
) -> list[Result]:
    """``function(*args)`` for each args, ``size`` worker processes at once, results in order;
    ``on_result(done)`` after each call finishes (progress). A pool whose worker died (killed,
    out of memory) is dropped, so the next call starts afresh, and the error is raised."""
    pool = process_pool(size, initializer)
    futures = [pool.submit(function, *args) for args in calls]
    try:
        if on_result is not None:
            for done, _ in enumerate(as_completed(futures), 1):
                on_result(done)
        return [future.result() for future in futures]
    except BrokenProcessPool:
        _forget(pool)
        raise


def _forget(pool: ProcessPoolExecutor) -> None:
    """Drop a pool whose worker died (killed, out of memory): the next call starts afresh."""
    for key in [k for k, v in _POOLS.items() if v is pool]:
        _POOLS.pop(key)


def map_shared(
    function: Callable[..., Result],
    calls: Sequence[tuple[Any, ...]],
    size: int,
    on_result: Callable[[int], None] | None = None,
) -> list[Result]:
    """``map_in_pool`` on ``size`` cores with this process as one of them: each free core
    takes the next call, so put the longest first (and start the workers early with
    ``warm_shared``: a cold worker's start-up delays its first call). Results in order; an
    error in either is raised."""
    results: list[Any] = [None] * len(calls)
    pending, lock, done = deque(range(len(calls))), threading.Lock(), [0]

    def take() -> int | None:
        with lock:
            return pending.popleft() if pending else None

    def finish(index: int, result: Result) -> None:
        with lock:
            results[index] = result
            done[0] += 1
            count = done[0]
        if on_result is not None:
            on_result(count)

    def stop() -> None:  # after an error on either side, the other starts nothing new
        with lock:
            pending.clear()

    def feed(workers: int) -> None:
        pool, running = process_pool(workers), {}
        try:
            while True:
                while len(running) < workers and (index := take()) is not None:
                    running[pool.submit(function, *calls[index])] = index
                if not running:
                    return
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    finish(running.pop(future), future.result())
        except BrokenProcessPool:
            _forget(pool)
            raise
        finally:
            stop()

    index = take()  # the first call here, at once
    with ThreadPoolExecutor(1) as feeder:
        fed = feeder.submit(feed, size - 1) if size > 1 and len(calls) > 1 else None
        try:
            while index is not None:
                finish(index, function(*calls[index]))
                index = take()
        finally:
            stop()
        if fed is not None:
            fed.result()
    return results


def warm_shared(size: int, function: Callable[..., None], *args: Any) -> None:
    """Start now the workers a later ``map_shared(..., size)`` will use, each running
    ``function(*args)`` (e.g. importing the code it will run): their start-up then overlaps
    what this process does before that call, e.g. a CLI's planning. The pool stays while the
    environment does."""
    if size > 1:
        pool = process_pool(size - 1)
        for _ in range(size - 1):
            pool.submit(function, *args)


def kill_workers() -> None:
    """Kill every pool's workers at once and forget the pools: for a command that is done
    (every result returned), instead of the graceful join in which each worker tears down an
    interpreter that held a run's tables (~0.7 s). Uses the executor's ``_processes``
    (stdlib, unchanged since Python 3.2; tests/platform_core/test_worker_pool.py pins it)."""
    for pool in _POOLS.values():
        for process in list((pool._processes or {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
    _POOLS.clear()


def _shutdown_all() -> None:
    for pool in _POOLS.values():
        pool.shutdown(cancel_futures=True)
    _POOLS.clear()


atexit.register(_shutdown_all)
