"""Searching a batch of chains: BLAST and hmmscan in chunks, query profiles, HHsearch.

Each function runs its tool calls on ``limits.workers`` parallel single-threaded processes
(filling the cores without oversubscribing them) and returns the results, the items that
failed with their error, and the CPU seconds the tools used. A failed call does not stop the
batch: the caller decides, from the failed fraction, whether the stage fails. A ``progress``
callable, when given, is told how many items each finished call covered (from the worker
threads), so a running stage can say how far it is.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd

from ecod_assets.science.blast import blastp_argv, parse_hits
from ecod_assets.science.fasta import format_fasta
from ecod_assets.science.hhsuite import (
    MAX_HITS,
    PairwiseAlignment,
    a3m_profile,
    ffindex_build_argv,
    hhblits_argv,
    hhsearch_argv,
    read_ffindex,
)
from ecod_assets.science.hmmer import DomtblError, hmmscan_argv, parse_domtblout
from ecod_assets.science.tools import Limits, Programs
from platform_core.tools import ToolError, map_parallel

FAILURE_COLUMNS = ["chain_id", "error"]
T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[int], None]  # told the number of items just finished (done or failed)


def _tell(progress: Progress | None, items: int) -> None:
    if progress is not None:
        progress(items)


def _telling(function: Callable[[T], R], tell: Callable[[T], None]) -> Callable[[T], R]:
    """``function``, then ``tell`` of its task however the call ended."""

    def told(task: T) -> R:
        try:
            return function(task)
        finally:
            tell(task)

    return told


@dataclass(frozen=True)
class StageResult:
    """What a search stage produced: a table, failed items (chain_id, error), tool CPU."""

    table: pd.DataFrame
    failures: pd.DataFrame
    cpu_seconds: float


def _failures(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


def _chunks(
    chains: pd.DataFrame, chunk_size: int, workers: int, searches: int = 1
) -> list[list[tuple[str, str]]]:
    """(chain_id, sequence) records in chunks of at most ``chunk_size``, small enough that
    the ``searches`` searches of every chunk give each worker at least two tasks, so tasks
    of unequal cost still end together."""
    records = list(zip(chains["chain_id"], chains["sequence"], strict=True))
    size = max(1, min(chunk_size, -(-len(records) * searches // (2 * workers))))
    return [records[i : i + size] for i in range(0, len(records), size)]


def blast_chains(
    chains: pd.DataFrame,
    databases: Mapping[str, Path],
    programs: Programs,
    limits: Limits,
    chunk_size: int,
    dbsize: int | None = None,
    progress: Mapping[str, Progress] | None = None,
) -> dict[str, StageResult]:
    """blastp of every chain (columns chain_id, sequence) against each named database, in
    chunks of ``chunk_size`` chains; the chunks of all databases share the workers. A chunk
    whose blastp fails marks its chains failed for that database. ``dbsize``: the effective
    database size (residues) of the E-values; ``progress``: per database name."""
    chunks = _chunks(chains, chunk_size, limits.workers, len(databases))
    tasks = [(name, chunk) for name in databases for chunk in chunks]

    def search(task: tuple[str, list[tuple[str, str]]]) -> tuple[pd.DataFrame, list, float]:
        name, chunk = task
        with tempfile.TemporaryDirectory(prefix="ecod-blast-", dir=limits.workdir) as tmp:
            query = Path(tmp) / "query.fasta"
            query.write_text(format_fasta(chunk))
            try:
                argv = blastp_argv(programs.blastp, query, databases[name], dbsize=dbsize)
                result = limits.run(argv)
            except ToolError as error:
                return parse_hits(""), [(c, str(error)) for c, _ in chunk], 0.0
        return parse_hits(result.stdout), [], result.cpu_seconds

    progress = progress or {}
    results = map_parallel(
        _telling(search, lambda task: _tell(progress.get(task[0]), len(task[1]))),
        tasks,
        limits.workers,
        cost=lambda task: sum(len(s) for _, s in task[1]),
    )
    out = {}
    for name in databases:
        mine = [r for (task_name, _), r in zip(tasks, results, strict=True) if task_name == name]
        out[name] = StageResult(
            pd.concat([r[0] for r in mine], ignore_index=True),
            _failures([f for r in mine for f in r[1]]),
            sum(r[2] for r in mine),
        )
    return out


def blast_profiles(chains: pd.DataFrame, domain_hits: pd.DataFrame) -> pd.DataFrame:
    """Query profiles (chain_id, n_sequences, a3m) from each chain's domain BLAST alignments;
    a chain without hits gets a single-sequence profile."""
    by_chain: dict[str, dict[str, PairwiseAlignment]] = {}
    columns = ["chain_id", "target", "q_start", "qseq", "sseq"]
    for chain_id, target, q_start, qseq, sseq in domain_hits[columns].itertuples(index=False):
        # the first (best) HSP per reference domain
        by_chain.setdefault(chain_id, {}).setdefault(
            target, PairwiseAlignment(target, q_start, qseq, sseq)
        )
    rows = []
    for chain_id, sequence in zip(chains["chain_id"], chains["sequence"], strict=True):
        alignments = list(by_chain.get(chain_id, {}).values())
        rows.append((chain_id, len(alignments) + 1, a3m_profile(chain_id, sequence, alignments)))
    return pd.DataFrame(rows, columns=["chain_id", "n_sequences", "a3m"])


def hhblits_profiles(
    chains: pd.DataFrame,
    database: Path,
    programs: Programs,
    limits: Limits,
    progress: Progress | None = None,
) -> StageResult:
    """Query profiles by ``hhblits`` (2 iterations) against the reference family database."""

    def build(record: tuple[str, str]) -> tuple[str, int, str, str | None, float]:
        chain_id, sequence = record
        with tempfile.TemporaryDirectory(prefix="ecod-hhblits-", dir=limits.workdir) as tmp:
            query, a3m = Path(tmp) / "query.fasta", Path(tmp) / "query.a3m"
            query.write_text(format_fasta([(chain_id, sequence)]))
            try:
                result = limits.run(hhblits_argv(programs.hhblits, query, database, a3m, 1))
            except ToolError as error:
                return chain_id, 0, "", str(error), 0.0
            text = a3m.read_text()
        return chain_id, text.count(">"), text, None, result.cpu_seconds

    results = map_parallel(
        _telling(build, lambda _: _tell(progress, 1)),
        list(zip(chains["chain_id"], chains["sequence"], strict=True)),
        limits.workers,
    )
    table = pd.DataFrame(
        [(c, n, a) for c, n, a, e, _ in results if e is None],
        columns=["chain_id", "n_sequences", "a3m"],
    )
    failures = _failures([(c, e) for c, _, _, e, _ in results if e is not None])
    return StageResult(table, failures, sum(r[4] for r in results))


HHSEARCH_CHUNK = 100  # queries per hhsearch_omp call: a crash costs at most this many


def hhsearch_chains(
    profiles: pd.DataFrame,
    database: Path,
    programs: Programs,
    limits: Limits,
    max_mem_gb: float,
    max_hits: int = MAX_HITS,
    progress: Progress | None = None,
) -> StageResult:
    """HHsearch of every query profile (chain_id, a3m) against ``database``: a table of
    chain_id and the raw ``.hhr`` text.

    Queries go in chunks to ``hhsearch_omp`` (one process, ``workers`` threads): HHsearch
    spends ~0.2 s per start loading its context library, which one call per chain paid every
    time. A chunk whose call fails marks its chains failed; a query without a result too."""
    records = list(zip(profiles["chain_id"], profiles["a3m"], strict=True))
    table, failures, cpu = [], [], 0.0
    for start in range(0, len(records), HHSEARCH_CHUNK):
        chunk = records[start : start + HHSEARCH_CHUNK]
        with tempfile.TemporaryDirectory(prefix="ecod-hhsearch-", dir=limits.workdir) as tmp:
            folder, queries, results = Path(tmp, "queries"), Path(tmp, "queries"), Path(tmp, "hhr")
            folder.mkdir()
            for number, (_, a3m) in enumerate(chunk):
                (folder / f"q{number}.a3m").write_text(a3m)
            argv = hhsearch_argv(
                programs.hhsearch, queries, database, results, limits.workers, max_mem_gb, max_hits
            )
            try:
                cpu += limits.run(
                    ffindex_build_argv(programs.ffindex_build, queries, folder)
                ).cpu_seconds
                cpu += limits.run(argv).cpu_seconds
            except ToolError as error:
                failures += [(chain_id, str(error)) for chain_id, _ in chunk]
                _tell(progress, len(chunk))
                continue
            texts = read_ffindex(results)
        _tell(progress, len(chunk))
        for number, (chain_id, _) in enumerate(chunk):
            text = texts.get(f"q{number}.a3m")
            if text:
                table.append((chain_id, text))
            else:
                failures.append((chain_id, f"{Path(programs.hhsearch).name} wrote no result"))
    return StageResult(pd.DataFrame(table, columns=["chain_id", "hhr"]), _failures(failures), cpu)


def hmmscan_chains(
    chains: pd.DataFrame,
    database: Path,
    programs: Programs,
    limits: Limits,
    chunk_size: int,
    db_profiles: int,
    progress: Progress | None = None,
) -> StageResult:
    """hmmscan of every chain (chain_id, sequence) against the family HMMs, in chunks of
    ``chunk_size`` chains over the workers: a table of domains (``hmmer.DOMTBL_COLUMNS``,
    i-Evalues at ``db_profiles`` profiles). A chunk whose hmmscan fails, or writes no
    readable domain table, marks its chains failed."""

    def scan(chunk: list[tuple[str, str]]) -> tuple[pd.DataFrame, list, float]:
        with tempfile.TemporaryDirectory(prefix="ecod-hmmscan-", dir=limits.workdir) as tmp:
            query, domtbl = Path(tmp) / "query.fasta", Path(tmp) / "domains.tbl"
            query.write_text(format_fasta(chunk))
            argv = hmmscan_argv(programs.hmmscan, database, query, domtbl, db_profiles)
            try:
                result = limits.run(argv)
                return parse_domtblout(domtbl.read_text(), db_profiles), [], result.cpu_seconds
            except (ToolError, DomtblError, OSError) as error:
                failed = [(c, f"{Path(programs.hmmscan).name}: {error}") for c, _ in chunk]
                return parse_domtblout("", db_profiles), failed, 0.0

    chunks = _chunks(chains, chunk_size, limits.workers)
    results = map_parallel(
        _telling(scan, lambda chunk: _tell(progress, len(chunk))),
        chunks,
        limits.workers,
        cost=lambda chunk: sum(len(s) for _, s in chunk),
    )
    return StageResult(
        pd.concat([r[0] for r in results], ignore_index=True)
        if results
        else parse_domtblout("", db_profiles),
        _failures([f for r in results for f in r[1]]),
        sum(r[2] for r in results),
    )
