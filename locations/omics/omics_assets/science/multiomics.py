"""The multiomics domain (being built: issue 32)."""

from __future__ import annotations

from omics_assets.science.specs import Step, Strict


class Inputs(Strict):
    """The multiomics domain's ``domain_specific`` keys."""


STEPS: tuple[Step, ...] = ()
