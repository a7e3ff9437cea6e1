"""Quality checks of a step's result, beside its status check: each reads the verdict the
step recorded (``result.json`` in its folder) and WARNs when it failed. Separate checks, not
part of the step: a skipped step leaves them unevaluated rather than failed."""

import json
from pathlib import Path

import dagster as dg

from omics_assets.workflows import RESULT_FILE


def _verdict(value: dict, name: str) -> dg.AssetCheckResult:
    verdict = json.loads((Path(value["dir"]) / RESULT_FILE).read_text())["checks"][name]
    return dg.AssetCheckResult(
        passed=bool(verdict["passed"]),
        severity=dg.AssetCheckSeverity.WARN,
        description=verdict["description"],
    )


# One function per check: Dagster passes the checked asset to the parameter named after it.
def genomic_inflation(association: dict) -> dg.AssetCheckResult:
    return _verdict(association, "genomic_inflation")


def mapping_rate(quantify: dict) -> dg.AssetCheckResult:
    return _verdict(quantify, "mapping_rate")


QUALITY_CHECKS = {"genomic_inflation": genomic_inflation, "mapping_rate": mapping_rate}


def build_quality_checks(
    checks: tuple[tuple[str, str], ...],
    asset: dg.AssetsDefinition,
    partitions_def: dg.DynamicPartitionsDefinition,
) -> list[dg.AssetChecksDefinition]:
    """The quality checks a step declares (``(name, description)``), on its asset."""
    return [
        dg.asset_check(asset=asset, name=name, description=text, partitions_def=partitions_def)(
            QUALITY_CHECKS[name]
        )
        for name, text in checks
    ]
