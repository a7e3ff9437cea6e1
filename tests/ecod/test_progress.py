"""Live progress inside a running stage (the seed's "hhsearch_search 45/100"), per-stage times
and a failed stage's error, as ``ecod status`` shows them and the run's logs (the UI) hold
them."""

import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from ecod_assets.cli import main
from ecod_assets.progress import PROGRESS_INTERVAL_SECONDS, StageProgress
from platform_core.platform_config import CONFIG_ENV
from tests.ecod.support import write_demo_batch
from tests.support import store

PROTEIN = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ"


class Lines(logging.Handler):
    """The messages a logger received."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def logger(name: str) -> tuple[logging.Logger, Lines]:
    log, lines = logging.getLogger(f"test-progress-{name}"), Lines()
    log.addHandler(lines)
    log.setLevel(logging.INFO)
    return log, lines


def test_lines_at_start_at_most_every_interval_and_at_the_end() -> None:
    log, lines = logger("throttle")
    now = [0.0]
    progress = StageProgress(log, "hhsearch_hits", 100, interval=2.0, clock=lambda: now[0])
    for _ in range(99):  # one item every 0.5 s: a line every 4 items
        now[0] += 0.5
        progress(1)
    now[0] += 0.1
    progress(1)
    progress.finish()  # already said: no second end line
    expected = ["hhsearch_hits 0/100", *(f"hhsearch_hits {n}/100" for n in range(4, 100, 4))]
    assert lines.messages == [*expected, "hhsearch_hits 100/100"]


def test_counts_from_many_threads_are_never_lost() -> None:
    log, lines = logger("threads")
    progress = StageProgress(log, "blast_chain_hits", 8 * 250)
    workers = [threading.Thread(target=lambda: [progress(1) for _ in range(250)]) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert lines.messages[0] == "blast_chain_hits 0/2000"
    assert lines.messages[-1] == "blast_chain_hits 2000/2000"
    assert lines.messages.count("blast_chain_hits 2000/2000") == 1


def batch_status(batch: str, capsys: pytest.CaptureFixture) -> dict:
    capsys.readouterr()
    assert main(["status", "--batch", batch, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_status_reads_items_done_while_the_run_goes_on(
    ecod_home: Path,
    ecod_instance: dg.DagsterInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """A BLAST-only run in its own process (one chain per blastp, one at a time: ~80 calls),
    its status read from here until a stage shows items done between 0 and all."""
    config = tmp_path / "platform.yaml"
    config.write_text("locations:\n  ecod:\n    blast_batch_size: 1\n    workers: 1\n")
    monkeypatch.setenv(CONFIG_ENV, str(config))
    fasta = write_demo_batch(ecod_home, "livebatch", 40, seed=21)
    assert main(["submit", str(fasta)]) == 0
    argv = ["run", "--batch", "livebatch", "--mode", "blast-only", "--quiet"]
    run = subprocess.Popen(
        [sys.executable, "-m", "ecod_assets.cli", *argv],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[tuple[str, int, int]] = []  # (stage, done, total) while the run was active
    deadline = time.monotonic() + 90
    try:
        while run.poll() is None and time.monotonic() < deadline:
            status = batch_status("livebatch", capsys)
            if status["active_run"] is None:
                continue
            seen += [
                (stage, info["progress"]["done"], info["progress"]["total"])
                for stage, info in status["stages"].items()
                if info["in_progress"] and info["progress"]
            ]
            if any(0 < done < total for _, done, total in seen):
                break
    finally:
        _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err[-2000:]
    assert any(0 < done < total == 40 for _, done, total in seen), seen

    status = batch_status("livebatch", capsys)
    assert status["active_run"] is None
    for stage in ("blast_chain_hits", "blast_domain_hits"):
        info = status["stages"][stage]
        assert info["progress"] == {"done": 40, "total": 40} and not info["in_progress"]
        assert info["seconds"] > 0 and info["error"] is None
    assert status["stages"]["batch_chains"]["seconds"] is not None
    assert status["stages"]["hhsearch_hits"]["seconds"] is None  # not in a BLAST-only run

    # The UI shows the same lines: the step's logs, at most one per interval per stage.
    run_id = status["last_run"]["last_run"]
    told = [
        (entry.timestamp, entry.user_message)
        for entry in ecod_instance.all_logs(run_id)
        if entry.dagster_event is None and entry.step_key == "blast_hits"
        if entry.user_message.startswith("blast_chain_hits ")
    ]
    assert told[0][1] == "blast_chain_hits 0/40" and told[-1][1] == "blast_chain_hits 40/40"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(told[:-1])]  # the end line: any time
    assert gaps and min(gaps) >= PROGRESS_INTERVAL_SECONDS - 0.05, gaps


def test_status_shows_stage_times_and_the_failed_stage_error(
    ecod_home: Path, capsys: pytest.CaptureFixture
) -> None:
    """A batch whose stored FASTA holds a letter that is no amino acid fails at batch_chains:
    status names the stage, its time and the first lines of its error."""
    fasta = write_demo_batch(ecod_home, "badletters", 5, seed=22)
    assert main(["submit", str(fasta)]) == 0
    stored = store("ecod").area("inputs") / "badletters" / "chains.fasta"
    stored.write_text(f">q1\n{PROTEIN}\n>q2\n{PROTEIN[:30]}J{PROTEIN[30:]}\n")
    assert main(["run", "--batch", "badletters"]) == 1

    status = batch_status("badletters", capsys)
    failed = status["stages"]["batch_chains"]
    assert failed["failed"] and failed["seconds"] is not None and failed["seconds"] >= 0
    assert "invalid batch input" in failed["error"] and "'J'" in failed["error"]
    assert "residue 31" in failed["error"] and str(stored) in failed["error"]
    blast = status["stages"]["blast_chain_hits"]
    assert not blast["failed"] and blast["seconds"] is None and blast["error"] is None

    assert main(["status", "--batch", "badletters"]) == 0
    text = capsys.readouterr().out
    assert "progress" in text.splitlines()[1] and "seconds" in text.splitlines()[1]
    assert "batch_chains failed:" in text and "non-amino-acid letter(s) 'J'" in text
