"""One job per study: the whole graph, branches side by side."""

import dagster as dg

from cardio_assets.partitions import GROUP

study_job = dg.define_asset_job(
    "cardio_study",
    selection=dg.AssetSelection.groups(GROUP),
    description="Receipt, validation, ECG / echo / metadata branches, LV detection, analysis, "
    "fusion, risk and the report of one study.",
)
