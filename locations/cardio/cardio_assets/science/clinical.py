"""Clinical metadata, multimodal fusion and risk: the study's metadata checked and normalised,
echo and ECG features combined, CHA2DS2-VASc when an irregular rhythm is flagged, and demo
flags that are labelled non-clinical."""

from __future__ import annotations

from typing import Any

COMORBIDITIES = (
    "hypertension",
    "diabetes",
    "prior_stroke_tia",
    "vascular_disease",
    "heart_failure",
)
KNOWN_KEYS = {"age", "sex", *COMORBIDITIES}


class MetadataError(ValueError):
    """Metadata that cannot be used (the message says which field and why)."""


def normalize_metadata(raw: dict[str, Any]) -> dict[str, Any]:
    """Age (years, 0-120), sex (``female`` / ``male``) and the comorbidities (booleans);
    unknown keys and out-of-range values are refused, missing ones listed."""
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise MetadataError(f"unknown keys {unknown}; allowed: {sorted(KNOWN_KEYS)}")
    out: dict[str, Any] = {}
    if "age" in raw:
        age = raw["age"]
        if isinstance(age, bool) or not isinstance(age, int | float) or not 0 <= age <= 120:
            raise MetadataError(f"age {age!r} is not a number of years between 0 and 120")
        out["age"] = float(age)
    if "sex" in raw:
        sex = str(raw["sex"]).strip().lower()
        sex = {"f": "female", "m": "male"}.get(sex, sex)
        if sex not in ("female", "male"):
            raise MetadataError(f"sex {raw['sex']!r} is not female / male (F / M)")
        out["sex"] = sex
    for key in COMORBIDITIES:
        if key in raw:
            if not isinstance(raw[key], bool):
                raise MetadataError(f"{key} {raw[key]!r} is not true / false")
            out[key] = raw[key]
    out["missing"] = [k for k in ("age", "sex", *COMORBIDITIES) if k not in out]
    return out


def cha2ds2_vasc(metadata: dict[str, Any]) -> dict[str, Any]:
    """CHA2DS2-VASc from normalised metadata: C heart failure 1, H hypertension 1, A2 age >= 75
    2, D diabetes 1, S2 prior stroke / TIA 2, V vascular disease 1, A age 65-74 1, Sc female 1.
    Missing items score 0, so the score is then a lower bound (``lower_bound`` and
    ``missing`` say so)."""
    age = metadata.get("age")
    points = {
        "C": int(bool(metadata.get("heart_failure"))),
        "H": int(bool(metadata.get("hypertension"))),
        "A2": 2 if age is not None and age >= 75 else 0,
        "D": int(bool(metadata.get("diabetes"))),
        "S2": 2 if metadata.get("prior_stroke_tia") else 0,
        "V": int(bool(metadata.get("vascular_disease"))),
        "A": 1 if age is not None and 65 <= age < 75 else 0,
        "Sc": int(metadata.get("sex") == "female"),
    }
    missing = list(metadata.get("missing", []))
    return {
        "score": sum(points.values()),
        "points": points,
        "lower_bound": bool(missing),
        "missing": missing,
    }


def ef_category(ef_percent: float) -> str:
    """Heart-failure EF bands: reduced < 40 %, mildly reduced 40-49 %, preserved >= 50 %."""
    if ef_percent < 40:
        return "reduced"
    return "mildly reduced" if ef_percent < 50 else "preserved"


def fuse(ecg: dict | None, echo: dict | None, tolerance: float) -> dict[str, Any]:
    """ECG and echo features side by side, and whether the echo's cycle length agrees with
    the ECG's mean RR within ``tolerance`` (a fraction): the two recordings describe the same
    heart rhythm only then."""
    fused: dict[str, Any] = {"ecg": ecg, "echo": echo}
    cycle = (echo or {}).get("cycle_length_s")
    rr_ms = (ecg or {}).get("mean_nn_ms")
    if cycle and rr_ms:
        difference = abs(cycle - rr_ms / 1000.0) / (rr_ms / 1000.0)
        fused["cycle_vs_rr"] = {
            "echo_cycle_s": cycle,
            "ecg_rr_s": rr_ms / 1000.0,
            "relative_difference": difference,
            "consistent": difference <= tolerance,
        }
    return fused


def risk(fused: dict[str, Any], metadata: dict[str, Any] | None, qtc_limits: dict) -> dict:
    """CHA2DS2-VASc when the ECG flags an irregular rhythm (stroke-risk context, not a
    diagnosis), and demo flags labelled non-clinical: EF category, heart-rate band, QTc."""
    ecg, echo = fused.get("ecg") or {}, fused.get("echo") or {}
    out: dict[str, Any] = {"label": "demo flags, non-clinical; not for diagnosis"}
    if "irregular rhythm, review" in ecg.get("flags", []):
        out["cha2ds2_vasc"] = cha2ds2_vasc(metadata or {"missing": ["age", "sex", *COMORBIDITIES]})
    flags = []
    if echo.get("ef_percent") is not None:
        flags.append(f"EF {ef_category(echo['ef_percent'])}")
    hr = ecg.get("heart_rate_bpm")
    if hr is not None:
        band = "low" if hr < 60 else "high" if hr > 100 else "normal"
        flags.append(f"heart rate {band}")
    qtc = ecg.get("qtc_bazett_ms")
    sex = (metadata or {}).get("sex")
    if qtc is not None and qtc == qtc:
        limit = qtc_limits["female" if sex == "female" else "male"]
        flags.append("QTc prolonged" if qtc > limit else "QTc normal")
    out["demo_flags"] = flags
    return out
