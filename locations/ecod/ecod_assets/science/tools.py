"""ECOD's external programs (BLAST+, HH-suite, HMMER, MAFFT): where they are and how they are run.

The runner itself (no shell, timeouts, retries, CPU accounting) is :mod:`platform_core.tools`.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from platform_core.tools import ToolError, ToolResult, require_program, run_tool

HHSUITE_LIBEXEC = Path("/usr/libexec/hhsuite")
HHSUITE_DATA = Path("/usr/share/hhsuite/data")
# Fastest first; Debian ships cstranslate per instruction set, not on PATH.
_CPU_VARIANTS = ("avx2", "avx", "sse4.1", "ssse3", "sse3", "plain")


def find_cstranslate(libexec: Path = HHSUITE_LIBEXEC) -> str:
    """``cstranslate`` from PATH, else the best Debian variant this CPU supports."""
    found = shutil.which("cstranslate")
    if found:
        return found
    flags = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].replace("_", ".").split())
                break
    for variant in _CPU_VARIANTS:
        candidate = libexec / f"cstranslate-{variant}"
        if candidate.exists() and (variant == "plain" or variant in flags):
            return str(candidate)
    raise ToolError(["cstranslate"], f"is not installed (not on PATH nor in {libexec})", "", 0)


@dataclass(frozen=True)
class Programs:
    """Resolved paths of the external programs and HH-suite's data directory."""

    blastp: str
    makeblastdb: str
    hhsearch: str
    hhblits: str
    hhmake: str
    mafft: str
    ffindex_build: str
    cstranslate: str
    hmmbuild: str
    hmmpress: str
    hmmscan: str
    hh_data: Path

    @classmethod
    def discover(cls) -> Programs:
        return cls(
            blastp=require_program("blastp"),
            makeblastdb=require_program("makeblastdb"),
            hhsearch=require_program("hhsearch_omp"),
            hhblits=require_program("hhblits"),
            hhmake=require_program("hhmake"),
            mafft=require_program("mafft"),
            ffindex_build=require_program("ffindex_build"),
            cstranslate=find_cstranslate(),
            hmmbuild=require_program("hmmbuild"),
            hmmpress=require_program("hmmpress"),
            hmmscan=require_program("hmmscan"),
            hh_data=HHSUITE_DATA,
        )


@dataclass(frozen=True)
class Limits:
    """How tools are run: parallel workers, per-call timeout, retries, and the folder their
    query and result files go in (None: the system's temporary folder)."""

    workers: int = 2
    timeout: float = 3600.0
    retries: int = 2
    backoff_seconds: float = 1.0
    workdir: Path | None = None

    def run(self, argv: Sequence[str], cwd: Path | None = None) -> ToolResult:
        return run_tool(argv, self.timeout, self.retries, self.backoff_seconds, cwd)
