"""Domain-summary evidence: every reference domain a chain's hits point at, on one scale.

One row per (chain, piece of evidence), mirroring ECOD's domain-summary evidence: type
(``chain_blast`` | ``domain_blast`` | ``hhsearch`` | ``hmmscan``), target (reference
ecod_domain_id; for profiles the F-group's representative), evalue (HMMER: the i-Evalue),
bitscore (HHsearch, HMMER: their score), identity, coverage (fraction of the reference domain
or profile aligned),
query and target ranges, X/H/T/F groups, probability and P-value (HHsearch only: the chance of
the alignment's score against one profile), and how many residues of
the reference domain lie beyond each end of the alignment (used to extend boundaries).

Chain BLAST hits are turned into one row per reference domain of the hit chain: the domain's
residues are carried through the alignment onto the query.

Where the two profile methods agree, an HHsearch and an hmmscan hit of the same chain and
F-group aligning at least half of the shorter one on the same residues, a
``profile_consensus`` row (with HHsearch's ranges) joins them: their two P-values combined
by Fisher's method, stated for the release-sized database (``combined_pvalue``). Two weak
but concordant signals from different scorings of the same family are stronger evidence than
either (the rows stay, so each method's own evidence is still there).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecod_assets.science.blast import aligned_positions
from ecod_assets.science.ranges import parse_range
from ecod_assets.science.reference import HIERARCHY_COLUMNS

EVIDENCE_TYPES = ("chain_blast", "domain_blast", "hhsearch", "hmmscan", "profile_consensus")
PROFILE_EVIDENCE = ("hhsearch", "hmmscan", "profile_consensus")
CONSENSUS_MIN_OVERLAP = 0.5  # of the shorter alignment
# What each hit contributes; the summary adds printable ranges and the X/H/T/F hierarchy.
HIT_EVIDENCE_COLUMNS = [
    "chain_id", "type", "target", "evalue", "bitscore", "identity", "coverage", "probability",
    "pvalue", "q_start", "q_end", "t_start", "t_end", "n_unaligned", "c_unaligned",
]  # fmt: skip
GROUP_COLUMNS = ["x_group", "h_group", "t_group"]
EVIDENCE_COLUMNS = [
    *HIT_EVIDENCE_COLUMNS, "query_range", "target_range", *HIERARCHY_COLUMNS, *GROUP_COLUMNS
]  # fmt: skip


def with_hierarchy(table: pd.DataFrame, reference: pd.DataFrame, on: str) -> pd.DataFrame:
    """``table`` with the f_id, X/H/T/F names and X, X.H, X.H.T group ids of the reference
    domain named in its column ``on``."""
    hierarchy = reference.set_index("ecod_domain_id")[HIERARCHY_COLUMNS]
    table = table.join(hierarchy, on=on)
    groups = [hierarchy_ids(f) for f in table["f_id"]]
    for position, column in enumerate(GROUP_COLUMNS):
        table[column] = [g[position] for g in groups]
    return table


def hierarchy_ids(f_id: str) -> tuple[str, str, str]:
    """X, X.H and X.H.T group ids of an ``X.H.T.F`` f_id."""
    x, h, t, _ = f_id.split(".")
    return x, f"{x}.{h}", f"{x}.{h}.{t}"


def _domain_rows(hits: pd.DataFrame, evidence_type: str) -> pd.DataFrame:
    """domain_blast / hhsearch / hmmscan hits: the target is the reference domain itself."""
    return pd.DataFrame(
        {
            "chain_id": hits["chain_id"],
            "type": evidence_type,
            "target": hits["target"],
            "evalue": hits["evalue"],
            "bitscore": hits["bitscore"] if "bitscore" in hits else hits["score"],
            "identity": hits.get("identity", np.nan),
            "coverage": (hits["t_end"] - hits["t_start"] + 1) / hits["target_length"],
            "probability": hits.get("probability", np.nan),
            "pvalue": hits.get("pvalue", np.nan),
            "q_start": hits["q_start"],
            "q_end": hits["q_end"],
            "t_start": hits["t_start"],
            "t_end": hits["t_end"],
            "n_unaligned": hits["t_start"] - 1,
            "c_unaligned": hits["target_length"] - hits["t_end"],
        }
    )


def _chain_rows(hits: pd.DataFrame, domains: pd.DataFrame) -> pd.DataFrame:
    """chain_blast hits: each reference domain of the hit chain carried onto the query."""
    by_chain = {
        chain: [
            (d, parse_range(r)) for d, r in zip(g["ecod_domain_id"], g["seqid_range"], strict=True)
        ]
        for chain, g in domains.groupby("chain_id")
    }
    rows = []
    for hit in hits.itertuples(index=False):
        q_pos, t_pos = aligned_positions(hit.q_start, hit.t_start, hit.qseq, hit.sseq)
        for domain_id, segments in by_chain.get(hit.target, []):
            inside = np.zeros(len(t_pos), dtype=bool)
            for start, end in segments:
                inside |= (t_pos >= start) & (t_pos <= end)
            if not inside.any():
                continue
            length = sum(e - s + 1 for s, e in segments)
            t_in = t_pos[inside]
            before = sum(max(0, min(e, int(t_in.min()) - 1) - s + 1) for s, e in segments)
            after = sum(max(0, e - max(s, int(t_in.max()) + 1) + 1) for s, e in segments)
            rows.append(
                {
                    "chain_id": hit.chain_id,
                    "type": "chain_blast",
                    "target": domain_id,
                    "evalue": hit.evalue,
                    "bitscore": hit.bitscore,
                    "identity": hit.identity,
                    "coverage": inside.sum() / length,
                    "probability": np.nan,
                    "pvalue": np.nan,
                    "q_start": int(q_pos[inside].min()),
                    "q_end": int(q_pos[inside].max()),
                    "t_start": int(t_in.min()),
                    "t_end": int(t_in.max()),
                    "n_unaligned": before,
                    "c_unaligned": after,
                }
            )
    return pd.DataFrame(rows, columns=HIT_EVIDENCE_COLUMNS)


def combined_pvalue(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Fisher's combination of two P-values: P(chi-square, 4 d.f. >= -2 ln(p1 p2)), which is
    p1 p2 (1 - ln(p1 p2)). It treats the two as independent, which scores of one query
    against one family are not: a combined P-value is a ranking of agreement, judged at the
    same threshold as a single method's."""
    product = np.clip(np.asarray(first, float) * np.asarray(second, float), 1e-300, 1.0)
    return product * (1.0 - np.log(product))


def consensus_rows(evidence: pd.DataFrame) -> pd.DataFrame:
    """``profile_consensus`` rows (EVIDENCE_COLUMNS) of every HHsearch hit that an hmmscan hit
    of the same chain and F-group overlaps by CONSENSUS_MIN_OVERLAP: HHsearch's ranges and
    target (its alignment places ends better on real families), the best combined P-value,
    and E-value = combined P-value x the database size of the hmmscan E-value (its evalue /
    pvalue)."""
    hhsearch = evidence[evidence["type"] == "hhsearch"].reset_index(drop=True)
    hmmscan = evidence.loc[
        evidence["type"] == "hmmscan", ["chain_id", "f_id", "q_start", "q_end", "pvalue", "evalue"]
    ]
    pairs = (
        hhsearch.rename_axis("row")
        .reset_index()
        .merge(hmmscan, on=["chain_id", "f_id"], suffixes=("", "_hmm"))
    )
    shared = (
        np.minimum(pairs["q_end"], pairs["q_end_hmm"])
        - np.maximum(pairs["q_start"], pairs["q_start_hmm"])
        + 1
    )
    shorter = (
        np.minimum(pairs["q_end"] - pairs["q_start"], pairs["q_end_hmm"] - pairs["q_start_hmm"]) + 1
    )
    pairs = pairs[shared >= CONSENSUS_MIN_OVERLAP * shorter]
    if pairs.empty:
        return evidence.iloc[0:0]
    combined = combined_pvalue(pairs["pvalue_hmm"], pairs["pvalue"])
    profiles = np.divide(  # the database size; an i-Evalue printed as 0 stays 0
        pairs["evalue_hmm"],
        pairs["pvalue_hmm"],
        out=np.zeros(len(pairs)),
        where=pairs["pvalue_hmm"] > 0,
    )
    pairs = pairs.assign(type="profile_consensus", evalue=combined * profiles, pvalue=combined)
    return pairs.sort_values("evalue").drop_duplicates("row")[evidence.columns]


def summarize_evidence(
    domains: pd.DataFrame,
    chain_hits: pd.DataFrame | None,
    domain_hits: pd.DataFrame | None,
    hhsearch_hits: pd.DataFrame | None,
    hmmscan_hits: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """All evidence of a batch as one table (EVIDENCE_COLUMNS), best first within a chain.
    ``hmmscan_hits``: ``hmmer.parse_domtblout`` rows (aligned ranges, i-Evalues)."""
    parts = []
    if chain_hits is not None and not chain_hits.empty:
        parts.append(_chain_rows(chain_hits, domains))
    for hits, kind in (
        (domain_hits, "domain_blast"),
        (hhsearch_hits, "hhsearch"),
        (hmmscan_hits, "hmmscan"),
    ):
        if hits is not None and not hits.empty:
            parts.append(_domain_rows(hits, kind))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in EVIDENCE_COLUMNS})
    evidence = with_hierarchy(pd.concat(parts, ignore_index=True), domains, on="target")
    evidence = pd.concat([evidence, consensus_rows(evidence)], ignore_index=True)
    positions = ["q_start", "q_end", "t_start", "t_end"]  # float after a failed row was dropped
    evidence[positions] = evidence[positions].astype(np.int64)
    evidence["query_range"] = evidence["q_start"].astype(str) + "-" + evidence["q_end"].astype(str)
    evidence["target_range"] = evidence["t_start"].astype(str) + "-" + evidence["t_end"].astype(str)
    order = evidence["type"].map({t: i for i, t in enumerate(EVIDENCE_TYPES)})
    evidence = evidence.assign(_order=order).sort_values(
        ["chain_id", "evalue", "_order", "bitscore"], ascending=[True, True, True, False]
    )
    return evidence.drop(columns="_order")[EVIDENCE_COLUMNS].reset_index(drop=True)
