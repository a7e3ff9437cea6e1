"""Resources of the imaging location: storage and the seed's GlobalPipelineConfig."""

import os

import dagster as dg

from imaging_assets.science.registration import RegistrationParams


class ImagingConfig(dg.ConfigurableResource):
    """How a plate is processed (the seed's GlobalPipelineConfig, as a resource).

    - ``num_workers``: wells processed at once, each in its own process (0: one per core).
    - ``wells``: only these wells (e.g. ``["A01", "B02"]``); empty: all. Results of the other
      wells from earlier runs are kept.
    - ``overlap``: fraction of a tile shared with its neighbour, when the plate's metadata
      does not say (ImageXpress, generic); Opera Phenix plates use Index.xml positions.
    - ``registration_channel``: channel the positions are computed from (maximum over z).
    - ``max_shift_px``, ``min_quality``, ``highpass_sigma``: registration (see
      science/registration.py); ``max_shift_px`` bounds the search around the stated step,
      or around the estimated step when ``estimate_overlap`` (then the stage repeatability
      found in the data bounds it, plus 2 pixels).
    - ``estimate_overlap``: estimate the overlap and the stage repeatability from the tiles
      of up to ``survey_wells`` wells (MIST-style; ``overlap`` is then only compared with it,
      and a difference over 2 % of a tile is logged as a warning).
    - ``flat_field``: divide the tiles by the plate's illumination profile (per-pixel median
      of the surveyed tiles, smoothed) before registration.
    - ``flat_field_blend``: also divide every channel's tiles by that channel's flat field
      before blending (even intensity across the mosaic; off: the stitched pixels are the
      microscope's).
    - ``worker_memory_mb``: a well needing more memory than this is not processed.
    - ``max_failed_fraction``: a step fails when more than this fraction of its wells failed;
      below it, failed wells are recorded and the rest go on.
    - ``pixel_size_um``: overrides the pixel size from the metadata (0: use the metadata).
    """

    num_workers: int = 0
    wells: list[str] = []
    overlap: float = 0.1
    registration_channel: int = 1
    max_shift_px: float = 30.0
    min_quality: float = 0.3
    highpass_sigma: float = 8.0
    estimate_overlap: bool = True
    flat_field: bool = True
    flat_field_blend: bool = False
    survey_wells: int = 8
    worker_memory_mb: float = 4096.0
    max_failed_fraction: float = 0.5
    pixel_size_um: float = 0.0

    def workers(self) -> int:
        return self.num_workers or os.cpu_count() or 1

    def registration(self) -> RegistrationParams:
        return RegistrationParams(
            max_shift=self.max_shift_px,
            min_quality=self.min_quality,
            highpass_sigma=self.highpass_sigma,
        )
