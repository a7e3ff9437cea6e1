"""The seed's quality gates as blocking asset checks: a study whose ECG or cine is below the
thresholds file's quality stops there, and nothing downstream runs on it."""

import dagster as dg

from cardio_assets.defs.assets.common import models
from cardio_assets.defs.assets.ecg import ecg_preprocessed
from cardio_assets.defs.assets.echo import echo_preprocessed
from cardio_assets.partitions import studies
from cardio_assets.resources import CardioConfig


@dg.asset_check(
    asset=ecg_preprocessed,
    blocking=True,
    partitions_def=studies,
    description="ECG quality gate: the R-peak detectors (neurokit2, sleepecg) agree on the "
    "rhythm lead's beats (F1) at least the threshold.",
)
def ecg_quality_gate(ecg_preprocessed: dict, cardio: CardioConfig) -> dg.AssetCheckResult:
    if ecg_preprocessed["status"] != "ok":
        return dg.AssetCheckResult(passed=True, metadata={"status": "no ECG"})
    minimum = models(cardio)["thresholds"]["ecg"]["min_quality"]
    quality = ecg_preprocessed["quality"]
    return dg.AssetCheckResult(
        passed=quality >= minimum,
        metadata={
            "quality": round(quality, 3),
            "minimum": minimum,
            "beats": len(ecg_preprocessed["peaks"]),
        },
        description=None
        if quality >= minimum
        else f"ECG quality {quality:.2f} below {minimum}: too noisy to analyse",
    )


@dg.asset_check(
    asset=echo_preprocessed,
    blocking=True,
    partitions_def=studies,
    description="Echo frame quality gate: tissue contrast and the share of blank frames.",
)
def echo_quality_gate(echo_preprocessed: dict, cardio: CardioConfig) -> dg.AssetCheckResult:
    if echo_preprocessed["status"] != "ok":
        return dg.AssetCheckResult(passed=True, metadata={"status": "no echo"})
    limits = models(cardio)["thresholds"]["echo"]
    quality = echo_preprocessed["quality"]
    problems = []
    if quality["median_contrast"] < limits["min_contrast"]:
        problems.append(f"contrast {quality['median_contrast']:.3f} < {limits['min_contrast']}")
    if quality["blank_frame_fraction"] > limits["max_blank_frame_fraction"]:
        problems.append(f"{quality['blank_frame_fraction']:.0%} blank frames")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={k: round(v, 3) for k, v in quality.items()},
        description="; ".join(problems) or None,
    )


CHECKS = [ecg_quality_gate, echo_quality_gate]
