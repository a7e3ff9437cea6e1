"""Domain boundaries from evidence: non-overlapping domains per chain, and their quality.

Evidence is taken best first in three tiers: confident BLAST hits (strong E-value and
identity), then profile hits (HHsearch, hmmscan), then the weak BLAST hits, so profile
evidence wins where pairwise evidence is weak; within a tier by lowest E-value (chain BLAST
before domain BLAST before HHsearch before hmmscan on ties). A piece of evidence becomes a
domain when it covers at least ``min_coverage`` of its reference domain, HHsearch hits need
``min_probability``, hmmscan domains and profile consensus (``evidence.consensus_rows``) an
E-value <= ``profile_max_evalue`` (at a release-sized database: the significance of a
sequence against a profile, which HHsearch's probability, calibrated for profile-profile
comparison, understates), and it
overlaps the domains already placed by at most ``max_overlap`` of its length (the overlap is
trimmed off). A further copy of a repeated domain (six fn3 repeats in one chain) is judged as
HMMER judges domains of a sequence already known to hold the family: an HHsearch alignment of
an F-group with confident evidence elsewhere in the chain needs only a P-value (a conditional
E-value for that one profile) <= ``repeat_max_pvalue`` (HMMER's domain inclusion, 0.01).
Finally each domain is extended over the reference residues its alignment left out at either
end, never into a neighbour or past the chain. Quality follows ECOD: ``good`` at chain
coverage >= 0.80, ``low_coverage`` at >= 0.50, ``fragmentary`` below, ``no_domains`` when
nothing was placed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecod_assets.science.blast import CONFIDENT_EVALUE, CONFIDENT_IDENTITY, confident
from ecod_assets.science.evidence import PROFILE_EVIDENCE
from ecod_assets.science.hmmer import DOMAIN_MAX_EVALUE

GOOD_COVERAGE = 0.80
LOW_COVERAGE = 0.50
QUALITY_LABELS = ("good", "low_coverage", "fragmentary", "no_domains")
DECIDING_EVIDENCE = ("target", "type", "evalue", "probability", "identity", "coverage")
PARTITION_COLUMNS = [
    "chain_id",
    "chain_length",
    "chain_coverage",
    "quality",
    "domain_number",
    "start",
    "end",
    "range",
    "length",
    "target",
    "type",
    "evalue",
    "probability",
    "identity",
    "coverage",
]


@dataclass(frozen=True)
class PartitionRules:
    min_coverage: float = 0.5  # of the reference domain
    min_probability: float = 0.9  # HHsearch
    max_overlap: float = 0.3  # of the candidate's length
    min_length: int = 25  # residues, after trimming
    confident_evalue: float = CONFIDENT_EVALUE  # BLAST evidence this strong ranks first
    confident_identity: float = CONFIDENT_IDENTITY
    repeat_max_pvalue: float = 0.01  # further copies of a family confidently in the chain
    profile_max_evalue: float = DOMAIN_MAX_EVALUE  # hmmscan, consensus; release-sized database


def evidence_tier(evidence: pd.DataFrame, rules: PartitionRules) -> np.ndarray:
    """0 for confident BLAST evidence, 1 for profile evidence, 2 for weak BLAST evidence."""
    blast = ~evidence["type"].isin(PROFILE_EVIDENCE)
    strong = confident(evidence, rules.confident_evalue, rules.confident_identity)
    return np.where(blast & strong, 0, np.where(blast, 2, 1))


def usable_evidence(evidence: pd.DataFrame, rules: PartitionRules) -> pd.DataFrame:
    """The evidence that may become a domain: covering ``min_coverage`` of its reference
    domain; for HHsearch, probable (``min_probability``) or a further copy of an F-group
    with confident evidence in the chain (P-value <= ``repeat_max_pvalue``); for hmmscan and
    profile consensus, significant (``profile_max_evalue``)."""
    covering = evidence[evidence["coverage"] >= rules.min_coverage]
    hhsearch = covering["type"] == "hhsearch"
    profile = covering["type"].isin(PROFILE_EVIDENCE)
    probable_hhsearch = hhsearch & (covering["probability"] >= rules.min_probability)
    probable = probable_hhsearch | (
        profile & ~hhsearch & (covering["evalue"] <= rules.profile_max_evalue)
    )
    # only confident evidence anchors further copies, as before hmmscan came in
    anchors = (evidence_tier(covering, rules) == 0) | probable_hhsearch
    anchored = pd.MultiIndex.from_frame(covering.loc[anchors, ["chain_id", "f_id"]])
    repeat = pd.MultiIndex.from_frame(covering[["chain_id", "f_id"]]).isin(anchored) & (
        covering["pvalue"] <= rules.repeat_max_pvalue
    )
    return covering[~profile | probable | (hhsearch & repeat)]


def quality_label(coverage: float, domains: int) -> str:
    """One of QUALITY_LABELS."""
    good, low, fragmentary, none = QUALITY_LABELS
    if domains == 0:
        return none
    if coverage >= GOOD_COVERAGE:
        return good
    return low if coverage >= LOW_COVERAGE else fragmentary


def _overlap(start: int, end: int, placed: list[dict]) -> int:
    return sum(max(0, min(end, d["end"]) - max(start, d["start"]) + 1) for d in placed)


def _place(candidates: list[dict], length: int, rules: PartitionRules) -> list[dict]:
    """Greedy placement of a chain's candidates (best first), then extension."""
    placed: list[dict] = []
    for row in candidates:
        start, end = int(row["q_start"]), int(row["q_end"])
        if _overlap(start, end, placed) > rules.max_overlap * (end - start + 1):
            continue
        for domain in sorted(placed, key=lambda d: d["start"]):  # trim the N-terminal overlap
            if domain["start"] <= start <= domain["end"]:
                start = domain["end"] + 1
        for domain in sorted(placed, key=lambda d: -d["end"]):  # and the C-terminal one
            if domain["start"] <= end <= domain["end"]:
                end = domain["start"] - 1
        if end - start + 1 < rules.min_length or _overlap(start, end, placed):
            continue
        placed.append({**row, "start": start, "end": end})
    placed.sort(key=lambda d: d["start"])
    for i, domain in enumerate(placed):
        lower = placed[i - 1]["end"] + 1 if i else 1
        upper = placed[i + 1]["start"] - 1 if i + 1 < len(placed) else length
        domain["start"] = max(lower, domain["start"] - int(domain["n_unaligned"]))
        domain["end"] = min(upper, domain["end"] + int(domain["c_unaligned"]))
    return placed


def partition_domains(
    evidence: pd.DataFrame, chain_lengths: pd.Series, rules: PartitionRules = PartitionRules()
) -> pd.DataFrame:
    """One row per placed domain (PARTITION_COLUMNS) carrying its chain's length, coverage
    and quality; a chain without domains is one row with ``domain_number`` 0.
    ``evidence`` is taken by tier (``evidence_tier``), then in its order (best first, as
    ``summarize_evidence`` sorts it); ``chain_lengths`` is indexed by chain id."""
    usable = usable_evidence(evidence, rules)
    usable = usable.iloc[np.argsort(evidence_tier(usable, rules), kind="stable")]
    by_chain: dict[str, list[dict]] = {}
    for record in usable.to_dict("records"):
        by_chain.setdefault(record["chain_id"], []).append(record)
    rows: list[dict] = []
    for chain_id, length in chain_lengths.items():
        placed = _place(by_chain[chain_id], int(length), rules) if chain_id in by_chain else []
        coverage = sum(d["end"] - d["start"] + 1 for d in placed) / int(length)
        chain = {
            "chain_id": chain_id,
            "chain_length": int(length),
            "chain_coverage": coverage,
            "quality": quality_label(coverage, len(placed)),
        }
        if not placed:
            rows.append({**chain, "domain_number": 0})
        for number, domain in enumerate(placed, start=1):
            rows.append(
                {
                    **{c: domain[c] for c in DECIDING_EVIDENCE},
                    **chain,
                    "domain_number": number,
                    "start": domain["start"],
                    "end": domain["end"],
                    "range": f"{domain['start']}-{domain['end']}",
                    "length": domain["end"] - domain["start"] + 1,
                }
            )
    return pd.DataFrame(rows, columns=PARTITION_COLUMNS)
