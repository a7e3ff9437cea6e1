"""Plain HMMER, the baseline the pipeline's profile evidence is held to.

Per F-group: its members aligned by ``mafft``, ``hmmbuild``; then ``hmmscan`` of every query
chain at a release-sized database (``-Z``) and HMMER's domains taken greedily, best i-Evalue
first, without overlap (``hmmer.greedy_domains``). No BLAST, no HHsearch, no partition
rules: what a user with HMMER alone would get from the same release.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from ecod_assets.science import search
from ecod_assets.science.hmmer import greedy_domains
from ecod_assets.science.library import family_alignment, family_hmm, family_members, press_hmms
from ecod_assets.science.reference import family_representatives
from ecod_assets.science.tools import Limits, Programs
from platform_core.tools import map_parallel

BASELINE_MAX_EVALUE = 1e-3  # i-Evalue at the release-sized database


def hmmer_baseline(
    domains: pd.DataFrame,
    chains: pd.DataFrame,
    out: Path,
    programs: Programs,
    limits: Limits,
    db_profiles: int,
    max_evalue: float = BASELINE_MAX_EVALUE,
) -> tuple[pd.DataFrame, float]:
    """(Domains (chain_id, start, end, f_id, evalue) of ``chains`` (chain_id, sequence),
    tool CPU seconds including mafft and hmmbuild). ``domains``: the release with sequences;
    models and alignments are written under ``out``."""
    reps = family_representatives(domains)
    members = family_members(domains, reps)
    for folder in (out / "msa", out / "hmm"):
        folder.mkdir(parents=True, exist_ok=True)

    def build(rep: str) -> float:
        with tempfile.TemporaryDirectory(prefix="ecod-baseline-", dir=limits.workdir) as tmp:
            rows, cpu = family_alignment(members[rep], Path(tmp), programs, limits)
        return cpu + family_hmm(rows, rep, out, programs, limits)

    names = list(reps["ecod_domain_id"])
    cpu = sum(map_parallel(build, names, limits.workers))
    cpu += press_hmms(out, names, programs, limits)
    hits = search.hmmscan_chains(chains, out / "families.hmm", programs, limits, 100, db_profiles)
    found = greedy_domains(hits.table, max_evalue)
    f_ids = domains.set_index("ecod_domain_id")["f_id"]
    found = found.assign(f_id=found["target"].map(f_ids))
    return found[["chain_id", "start", "end", "f_id", "evalue"]], cpu + hits.cpu_seconds
