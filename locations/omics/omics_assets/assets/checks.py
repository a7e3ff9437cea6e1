"""Quality checks of a step's result, beside its status check: each reads the verdict the
step recorded under its name (``checks`` of ``result.json`` in its folder) and WARNs when it
failed. Separate checks, not part of the step: a skipped step leaves them unevaluated rather
than failed. Shipped steps declare theirs in ``science/domains.py``, the user's own steps in
``checks:``."""

import json
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from omics_assets.workflows import RESULT_FILE


def _verdict_check(name: str) -> Callable[[dict], dg.AssetCheckResult]:
    """The check of verdict ``name``: Dagster hands it the checked asset's value."""

    def check(step: dict) -> dg.AssetCheckResult:
        verdicts = json.loads((Path(step["dir"]) / RESULT_FILE).read_text())["checks"]
        if name not in verdicts:
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"the step recorded no verdict {name!r} (it recorded: "
                f"{', '.join(verdicts) or 'none'})",
            )
        verdict = verdicts[name]
        return dg.AssetCheckResult(
            passed=bool(verdict["passed"]),
            severity=dg.AssetCheckSeverity.WARN,
            description=verdict["description"],
        )

    return check


def build_quality_checks(
    checks: tuple[tuple[str, str], ...],
    asset: dg.AssetsDefinition,
    partitions_def: dg.DynamicPartitionsDefinition,
) -> list[dg.AssetChecksDefinition]:
    """The quality checks a step declares (``(name, description)``), on its asset."""
    return [
        dg.asset_check(asset=asset, name=name, description=text, partitions_def=partitions_def)(
            _verdict_check(name)
        )
        for name, text in checks
    ]
