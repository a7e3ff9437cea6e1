"""Fusion, scoring and the report: the seed's stage-output JSON with the results, built from
the materializations of the study (checkpoints) and the events of the runs that made them."""

import dagster as dg

from cardio_assets import stage_work
from cardio_assets.defs.assets.common import (
    hard_stop,
    in_worker,
    models,
    recoverable,
    stage_timer,
)
from cardio_assets.partitions import STUDY_ASSET
from cardio_assets.resources import CardioConfig
from cardio_assets.science import clinical
from platform_core.checkpoint import latest_materialization

# Seed state -> the assets that implement it; checkpoints are the seed's checkpointed stages.
STATES: dict[str, tuple[str, ...]] = {
    "RECEIPT": ("study_receipt",),
    "VALIDATION": ("validated_study",),
    "PREPROCESSING": ("ecg_preprocessed", "echo_preprocessed", "metadata_normalized"),
    "DETECTION": ("echo_lv_detection",),
    "ANALYSIS": ("ecg_features", "echo_function"),
    "FUSION": ("fused_features",),
    "SCORING": ("risk_score",),
    "FORMATTING": ("cardio_report",),
}
CHECKPOINTS = (
    "validated_study",
    "ecg_preprocessed",
    "echo_preprocessed",
    "metadata_normalized",
    "echo_lv_detection",
    "ecg_features",
    "echo_function",
)


def _analysed(result: dict) -> bool:
    return result.get("status") == "ok"


@dg.asset(
    **STUDY_ASSET,
    code_version="1",
    kinds={"json"},
    description="FUSION: ECG and echo features together, with the echo cycle length checked "
    "against the ECG's RR (within the tolerance). If fusion fails, the per-modality results "
    "are kept and the failure named. A study where no modality could be analysed stops "
    "(E_HARD_001).",
)
def fused_features(
    context: dg.AssetExecutionContext,
    ecg_features: dict,
    echo_function: dict,
    cardio: CardioConfig,
) -> dict:
    with stage_timer(context) as meta, recoverable(context, cardio):
        ecg = ecg_features if _analysed(ecg_features) else None
        echo = echo_function if _analysed(echo_function) else None
        if ecg is None and echo is None:
            reasons = [r.get("reason") or r["status"] for r in (ecg_features, echo_function)]
            raise hard_stop(
                "E_HARD_001",
                f"study {context.partition_key}: no modality could be analysed "
                f"(ECG: {reasons[0]}; echo: {reasons[1]})",
            )
        tolerance = models(cardio)["thresholds"]["fusion"]["cycle_tolerance"]
        fused = in_worker(context, cardio, stage_work.fuse, ecg, echo, tolerance)
        meta["status"] = fused["status"]
        if "cycle_vs_rr" in fused:
            meta["cycle_vs_rr_consistent"] = fused["cycle_vs_rr"]["consistent"]
    return fused


@dg.asset(
    **STUDY_ASSET,
    code_version="1",
    kinds={"json"},
    description="SCORING: CHA2DS2-VASc when the ECG flags an irregular rhythm (a lower bound "
    "when comorbidities are missing, listed), plus demo flags (EF category, HR band, QTc) "
    "labelled non-clinical.",
)
def risk_score(
    context: dg.AssetExecutionContext,
    fused_features: dict,
    metadata_normalized: dict,
    cardio: CardioConfig,
) -> dict:
    with stage_timer(context) as meta, recoverable(context, cardio):
        limits = models(cardio)["thresholds"]["risk"]["qtc_limit_ms"]
        metadata = metadata_normalized if metadata_normalized["status"] == "ok" else None
        result = in_worker(context, cardio, clinical.risk, fused_features, metadata, limits)
        meta["demo_flags"] = ", ".join(result["demo_flags"]) or "none"
        if "cha2ds2_vasc" in result:
            meta["cha2ds2_vasc"] = result["cha2ds2_vasc"]["score"]
    return result


def _mode(ecg: dict, echo: dict) -> str:
    if _analysed(ecg) and _analysed(echo):
        return "full"
    return "ecg-only" if _analysed(ecg) else "echo-only"


@dg.asset(
    **STUDY_ASSET,
    code_version="1",
    kinds={"json"},
    description="FORMATTING: the seed's stage-output JSON: mode (full, ecg-only, echo-only), "
    "degradations with reasons, states traversed, branches executed, checkpoints, retries "
    "performed (from the runs' events), stage timings in ms, and the results.",
)
def cardio_report(
    context: dg.AssetExecutionContext,
    validated_study: dict,
    ecg_features: dict,
    echo_function: dict,
    metadata_normalized: dict,
    fused_features: dict,
    risk_score: dict,
) -> dict:
    records = {
        a: latest_materialization(context.instance, dg.AssetKey(a), context.partition_key)
        for states in STATES.values()
        for a in states
        if a != "cardio_report"
    }
    timings, runs = {}, {context.run_id}
    for state, assets in STATES.items():
        found = [records[a] for a in assets if records.get(a) is not None]
        runs.update(r.run_id for r in found)
        timings[state] = round(
            sum(
                float(r.asset_materialization.metadata["elapsed_ms"].value)
                for r in found
                if "elapsed_ms" in r.asset_materialization.metadata
            )
        )
    retries = sum(
        len(context.instance.all_logs(run, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY))
        for run in sorted(runs)
    )
    branches = [
        m
        for m, r in (
            ("echo", echo_function),
            ("ecg", ecg_features),
            ("metadata", metadata_normalized),
        )
        if r["status"] != "absent"
    ]
    degradations = [
        {"branch": name, "status": r["status"], "reason": r.get("reason", "")}
        for name, r in (("echo", echo_function), ("ecg", ecg_features), ("fusion", fused_features))
        if r["status"] in ("failed", "skipped")
    ]
    states = [s for s in STATES if s != "DETECTION" or "echo" in validated_study["modalities"]]
    report = {
        "study": context.partition_key,
        "mode": _mode(ecg_features, echo_function),
        "degradations": degradations,
        "stage_complete": "ORCHESTRATION",
        "pipeline_execution": {
            "states_traversed": [*states, "COMPLETE"],
            "branches_executed": branches,
            "checkpoints_saved": sum(records[a] is not None for a in CHECKPOINTS),
            "retries_performed": retries,
            "total_time_ms": sum(timings.values()),
        },
        "stage_timings": timings,
        "results": {
            "ecg": ecg_features if _analysed(ecg_features) else None,
            "echo": echo_function if _analysed(echo_function) else None,
            "metadata": metadata_normalized if metadata_normalized["status"] == "ok" else None,
            "fusion": {k: v for k, v in fused_features.items() if k not in ("ecg", "echo")},
            "risk": risk_score,
        },
        "error": None,
    }
    context.add_output_metadata(
        {
            "mode": report["mode"],
            "degradations": len(degradations),
            "retries_performed": retries,
            "report": dg.MetadataValue.json({k: v for k, v in report.items() if k != "results"}),
        }
    )
    return report
