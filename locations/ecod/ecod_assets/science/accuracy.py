"""Accuracy of predicted domains against known truth (demo batches carry it).

A true domain is *found* when a predicted domain of the same chain has both ends within
``tolerance`` residues of it (ECOD's benchmark criterion, +-20). Boundary accuracy is the
fraction of true domains found; F-group accuracy is the fraction of found domains whose
predicted f_id is the true one. Chains with no true domain count as correct when nothing was
predicted on them.

Recall and precision count a match only with both ends within ``tolerance`` *and* the right
F-group: recall = true domains so matched / true domains; precision = predicted domains that
match a true domain so / predicted domains (a domain predicted on an unassigned tail or a
decoy chain counts against it).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

TOLERANCE = 20


@dataclass(frozen=True)
class Accuracy:
    true_domains: int
    found: int
    correct_family: int
    empty_chains: int
    empty_chains_correct: int
    predicted: int
    predicted_correct: int

    @property
    def boundary(self) -> float:
        return self.found / self.true_domains if self.true_domains else 1.0

    @property
    def family(self) -> float:
        return self.correct_family / self.found if self.found else 0.0

    @property
    def recall(self) -> float:
        return self.correct_family / self.true_domains if self.true_domains else 1.0

    @property
    def precision(self) -> float:
        return self.predicted_correct / self.predicted if self.predicted else 1.0


def score(predicted: pd.DataFrame, truth: pd.DataFrame, tolerance: int = TOLERANCE) -> Accuracy:
    """Compare ``predicted`` (chain_id, start, end, f_id) with ``truth`` (chain_id, start,
    end, f_id; chains without domains as rows with start NA)."""
    true_domains = truth.dropna(subset=["start"]).reset_index(drop=True)
    predictions = predicted[["chain_id", "start", "end", "f_id"]].reset_index(drop=True)
    pairs = (
        true_domains.rename_axis("truth_row")
        .reset_index()
        .merge(
            predictions.rename_axis("predicted_row").reset_index(),
            on="chain_id",
            suffixes=("", "_pred"),
        )
    )
    near = pairs[
        ((pairs["start"].astype(float) - pairs["start_pred"]).abs() <= tolerance)
        & ((pairs["end"].astype(float) - pairs["end_pred"]).abs() <= tolerance)
    ]
    found = near["truth_row"].nunique()
    right = near[near["f_id"] == near["f_id_pred"]]
    correct = right["truth_row"].nunique()
    empty = set(truth["chain_id"]) - set(true_domains["chain_id"])
    return Accuracy(
        true_domains=len(true_domains),
        found=found,
        correct_family=correct,
        empty_chains=len(empty),
        empty_chains_correct=len(empty - set(predicted["chain_id"])),
        predicted=len(predictions),
        predicted_correct=right["predicted_row"].nunique(),
    )
