"""MOFA+ (``mofapy2``) on aligned views, in memory: no HDF5 file is written.

mofapy2 prints its progress and calls ``sys.exit`` on bad data; both are contained here: its
output goes to the step's log at DEBUG, and an exit becomes an InputError with its last lines.
Factors come back sorted by the variance they explain summed over views (as MOFA's saved
models are), named ``factor_1`` ... ``factor_K``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from omics_assets.science.steps import InputError

ConvergenceMode = Literal["fast", "medium", "slow"]


@dataclass(frozen=True)
class Fit:
    """A trained model: factors (samples x K), weights per view (features x K), variance
    explained per view and factor and by all factors (fractions of the view's sum of
    squares), iterations run and whether the ELBO converged before the limit."""

    factors: pd.DataFrame
    weights: dict[str, pd.DataFrame]
    variance_explained: pd.DataFrame  # views x factor_1..K
    total_explained: pd.Series  # by view
    iterations: int
    converged: bool


def fit_mofa(
    views: dict[str, pd.DataFrame],
    factors: int,
    iterations: int,
    convergence_mode: ConvergenceMode,
    seed: int,
    threads: int,
    log: logging.Logger,
) -> Fit:
    """MOFA+ with ``factors`` factors on views that share one sample index (samples in rows,
    NaN where a view lacks a sample or a value): Gaussian likelihoods, ARD and spike-and-slab
    priors on the weights (MOFA's defaults), one group, no factor dropped during training.
    numpy's BLAS uses at most ``threads`` threads meanwhile (the step's share of the
    machine)."""
    from threadpoolctl import threadpool_limits

    samples = next(iter(views.values())).index
    names = list(views)
    printed = io.StringIO()
    with (
        contextlib.redirect_stdout(printed),
        warnings.catch_warnings(record=True) as caught,
        threadpool_limits(limits=threads),
    ):
        warnings.simplefilter("always")
        try:
            from mofapy2.run.entry_point import entry_point

            model = entry_point()
            model.set_data_options(scale_views=False, center_groups=True)
            model.set_data_matrix(
                [[views[v].to_numpy(dtype=float)] for v in names],
                likelihoods=["gaussian"] * len(names),
                views_names=names,
                groups_names=["all"],
                samples_names=[[str(s) for s in samples]],
                features_names=[[f"{v}:{f}" for f in views[v].columns] for v in names],
            )
            model.set_model_options(factors=factors, spikeslab_weights=True, ard_weights=True)
            model.set_train_options(
                iter=iterations,
                convergence_mode=convergence_mode,
                seed=seed,
                verbose=False,
                quiet=False,
                dropR2=None,
            )
            model.build()
            model.run()
        except SystemExit:
            tail = " | ".join(printed.getvalue().strip().splitlines()[-3:])
            raise InputError(f"mofapy2 stopped: {tail}") from None
    if log.isEnabledFor(logging.DEBUG):
        log.debug("mofapy2:\n" + printed.getvalue())
        for warning in caught:
            log.debug(f"mofapy2 warning: {warning.category.__name__}: {warning.message}")
    net = model.model
    r2 = np.asarray(net.calculate_variance_explained()[0])  # views x K
    order = np.argsort(-np.nansum(r2, axis=0), kind="stable")
    columns = [f"factor_{i + 1}" for i in range(len(order))]
    z = net.nodes["Z"].getExpectation()[:, order]
    w = net.nodes["W"].getExpectation()
    elbo = net.getTrainingStats()["elbo"]  # cut at the iteration that converged
    converged = len(elbo) <= iterations
    return Fit(
        factors=pd.DataFrame(z, index=samples, columns=columns),
        weights={
            v: pd.DataFrame(w[m][:, order], index=views[v].columns, columns=columns)
            for m, v in enumerate(names)
        },
        variance_explained=pd.DataFrame(r2[:, order], index=names, columns=columns),
        total_explained=pd.Series(
            np.asarray(net.calculate_variance_explained(total=True)[0]), index=names
        ),
        iterations=len(elbo) if converged else iterations - 1,
        converged=converged,
    )
