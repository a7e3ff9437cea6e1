"""Live progress of a running stage: items done / total, told as step log lines in the seed's
form ``hhsearch_hits 45/100``. The run's event log is the one record of it: the UI shows the
lines among the run's logs, and ``ecod status`` reads them back, with each failed step's error,
from any process while the run goes on."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import dagster as dg

from platform_core.errors import ErrorInfo, root_cause

PROGRESS_INTERVAL_SECONDS = 2.0  # at most one line per stage this often (and one at the end)
ERROR_LINES = 5  # of a failed step's error, what status shows
_LINE = re.compile(r"^(?P<stage>[a-z][a-z0-9_]*) (?P<done>\d+)/(?P<total>\d+)$")


@dataclass(frozen=True)
class Count:
    """Items of a stage done (succeeded or failed) out of its total."""

    done: int
    total: int

    def __str__(self) -> str:
        return f"{self.done}/{self.total}"


class StageProgress:
    """Counts a stage's finished items and logs ``<stage> <done>/<total>``: when it starts, at
    most every ``interval`` seconds after, and when every item is done. Called with the items
    just finished, from the worker threads of a search. ``log``: the step's
    (``context.log``), so the lines go to the run's event log."""

    def __init__(
        self,
        log: logging.Logger,
        stage: str,
        total: int,
        interval: float = PROGRESS_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self._clock, self._interval = log, clock, interval
        self._lock = threading.Lock()
        self.stage, self.count = stage, Count(0, total)
        self._told_at = clock()
        self._told = self.count
        log.info(self.line())

    def line(self) -> str:
        return f"{self.stage} {self.count}"

    def __call__(self, items: int) -> None:
        with self._lock:  # one line at a time, counts never lost between threads
            self.count = Count(min(self.count.done + items, self.count.total), self.count.total)
            now = self._clock()
            if self.count.done == self.count.total or now - self._told_at >= self._interval:
                self._tell(now)

    def finish(self) -> None:
        """The stage ended with every item attempted: its last line says so (once)."""
        with self._lock:
            self.count = Count(self.count.total, self.count.total)
            self._tell(self._clock())

    def _tell(self, now: float) -> None:
        if self.count != self._told:
            self._log.info(self.line())
            self._told, self._told_at = self.count, now


@dataclass(frozen=True)
class RunEvents:
    """What a run's event log says of its stages: the last count per stage and the error
    (its first ``ERROR_LINES`` lines) per failed step."""

    counts: dict[str, Count]
    errors: dict[str, str]


def read_run(instance: dg.DagsterInstance, run_id: str) -> RunEvents:
    """The stage counts and step errors of run ``run_id`` so far (it may still be running)."""
    counts: dict[str, Count] = {}
    errors: dict[str, str] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None and entry.step_key:
            match = _LINE.match(entry.user_message)
            if match:
                counts[match["stage"]] = Count(int(match["done"]), int(match["total"]))
        elif event is not None and event.event_type == dg.DagsterEventType.STEP_FAILURE:
            errors[entry.step_key or "-"] = failure_text(event.step_failure_data)
    return RunEvents(counts, errors)


class UserFailure(Protocol):
    description: str | None


class StepFailure(Protocol):
    """What a step failure event carries (Dagster's ``StepFailureData``)."""

    error: ErrorInfo | None
    user_failure_data: UserFailure | None


def failure_text(data: StepFailure) -> str:
    """The first lines of a step failure: a ``dg.Failure``'s description, else the innermost
    error."""
    user = data.user_failure_data
    text = user.description if user and user.description else ""
    if not text and data.error is not None:
        text = root_cause(data.error)
    return "\n".join((text or "step failed").strip().splitlines()[:ERROR_LINES])


class StepTimes(Protocol):
    """What a step's stats offer (Dagster's ``RunStepKeyStatsSnapshot``), in Unix seconds."""

    start_time: float | None
    end_time: float | None


def step_seconds(step: StepTimes | None, now: float | None) -> float | None:
    """How long a step ran (one still running: until ``now``); None if it has not started."""
    if step is None or step.start_time is None:
        return None
    end = step.end_time or now
    return round(end - step.start_time, 2) if end else None
