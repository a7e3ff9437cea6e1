"""Resources of the cardio location: storage and the limits of the seed's hard stops."""

from pathlib import Path
from typing import ClassVar

import dagster as dg

from platform_core.datastore import ConfinedPaths

PACKAGED_MODELS = Path(__file__).parent / "models"


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
    """

    max_input_mb: int = 512
    memory_limit_mb: int = 2048
    echo_batch_frames: int = 64
    max_batch_mb: float = 256.0
    models_dir: str = ""
    confined_fields: ClassVar[tuple[str, ...]] = ("models_dir",)
    operator_fields: ClassVar[tuple[str, ...]] = ("max_input_mb", "memory_limit_mb")

    def models_path(self) -> Path:
        return Path(self.models_dir) if self.models_dir else PACKAGED_MODELS
