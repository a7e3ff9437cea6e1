"""One process pool helper for every location: spawned workers (no forked copies of open
connections) kept warm for the life of the process, so repeated work skips Python start-up
and imports; replaced when the environment or working directory it was spawned with changes,
and dropped when a worker dies."""

import atexit
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
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
        for key in [k for k, v in _POOLS.items() if v is pool]:
            _POOLS.pop(key)
        raise


def _shutdown_all() -> None:
    for pool in _POOLS.values():
        pool.shutdown(cancel_futures=True)
    _POOLS.clear()


atexit.register(_shutdown_all)
