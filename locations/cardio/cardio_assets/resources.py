"""Resources of the cardio location: storage and the limits of the seed's hard stops."""

from pathlib import Path
from typing import ClassVar

import dagster as dg
from pydantic import model_validator

from platform_core.datastore import ConfinedPaths

PACKAGED_MODELS = Path(__file__).parent / "models"
# The stages that do work, each under a time limit (the report only reads the instance).
TIMED_STAGES = (
    "study_receipt",
    "validated_study",
    "ecg_preprocessed",
    "ecg_features",
    "echo_preprocessed",
    "echo_lv_detection",
    "echo_function",
    "metadata_normalized",
    "fused_features",
    "risk_score",
)


class CardioConfig(ConfinedPaths, dg.ConfigurableResource):
    """Limits and model files.

    - ``max_input_mb``: a file larger than this is refused before it is read (E_HARD_004).
    - ``memory_limit_mb``: a study whose decoded signals (ECG samples and cine pixels, as
      declared by their headers) exceed this is stopped before decoding (E_HARD_002).
    - ``echo_batch_frames``, ``max_batch_mb``: the cine is decoded in batches of at most
      ``echo_batch_frames`` frames, as many as fit in ``max_batch_mb`` of work memory; a
      MemoryError while decoding retries the step with half the batch (the seed's "reduce
      batch size, retry" x2). A single frame over ``max_batch_mb`` raises MemoryError.
    - ``models_dir``: the thresholds and LV template files with their sha256 manifest
      (empty: the packaged ones); set in a run's config from the UI, it must lie inside the
      input roots (platform_core.datastore.ConfinedPaths); the two limits are the operator's
      (a UI run may not raise them).
    - ``stage_timeout_s``: each stage's time limit in seconds (the seed names no value: a
      generous 600 s; a demo study's slowest stage takes under 1 s), ``stage_timeouts_s``
      the limit of named stages (``{"echo_lv_detection": 120}``); 0: no limit, the stage
      runs in the run's process. A stage over its limit is killed (``stage_worker``) and
      retried 3 times, waiting ``timeout_retry_wait_s`` then twice as long each time (the
      seed's "timeout: exponential backoff, 3 attempts", first wait 1 s).
    """

    max_input_mb: int = 512
    memory_limit_mb: int = 2048
    echo_batch_frames: int = 64
    max_batch_mb: float = 256.0
    models_dir: str = ""
    stage_timeout_s: float = 600.0
    stage_timeouts_s: dict[str, float] = {}
    timeout_retry_wait_s: float = 1.0
    confined_fields: ClassVar[tuple[str, ...]] = ("models_dir",)
    operator_fields: ClassVar[tuple[str, ...]] = ("max_input_mb", "memory_limit_mb")

    @model_validator(mode="after")
    def _known_stages(self) -> "CardioConfig":
        unknown = sorted(set(self.stage_timeouts_s) - set(TIMED_STAGES))
        if unknown:
            stages = ", ".join(TIMED_STAGES)
            raise ValueError(f"stage_timeouts_s: no stage {', '.join(unknown)} (stages: {stages})")
        return self

    def time_limit_s(self, stage: str) -> float:
        """The stage's time limit, seconds (0: none)."""
        return self.stage_timeouts_s.get(stage, self.stage_timeout_s)

    def models_path(self) -> Path:
        return Path(self.models_dir) if self.models_dir else PACKAGED_MODELS
