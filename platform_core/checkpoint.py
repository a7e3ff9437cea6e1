"""Skip-if-unchanged: reuse a stored result when code, parameters and inputs are unchanged.

An asset computes an input *fingerprint* (a hash of its code version, parameters and input
data) before doing expensive work. Each materialization records it as metadata and as its
data version. When the latest materialization of the same partition carries the same
fingerprint and its stored value is still there, the asset returns that value instead of
running its tools again (vanilla Dagster only marks staleness; it never skips the work).
"""

import hashlib
import json
from typing import Any

import dagster as dg
import pandas as pd

FINGERPRINT_KEY = "input_fingerprint"


def frame_digest(frame: pd.DataFrame, index: bool = False) -> str:
    """Content hash of a DataFrame: column names, dtypes and every value, in row order (and
    the index, with ``index``)."""
    digest = hashlib.sha256(
        json.dumps([list(map(str, frame.columns)), list(map(str, frame.dtypes))]).encode()
    )
    digest.update(pd.util.hash_pandas_object(frame, index=index).to_numpy().tobytes())
    return digest.hexdigest()


def fingerprint(*parts: Any, index: bool = False) -> str:
    """sha256 of the parts (DataFrames by content, with their index when ``index``;
    everything else as sorted JSON)."""
    digest = hashlib.sha256()
    for part in parts:
        text = (
            frame_digest(part, index)
            if isinstance(part, pd.DataFrame)
            else json.dumps(part, sort_keys=True, default=str)
        )
        digest.update(text.encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:32]


def latest_materialization(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str | None
) -> dg.EventLogRecord | None:
    """The latest materialization record of this asset partition (of the asset when
    ``partition`` is None), or None."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=asset_key, asset_partitions=[partition] if partition else None
        ),
        limit=1,
    ).records
    return records[0] if records and records[0].asset_materialization else None


def stored_fingerprint(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str | None
) -> str | None:
    """The fingerprint recorded by the latest materialization of this asset partition."""
    record = latest_materialization(instance, asset_key, partition)
    if record is None:
        return None
    value = record.asset_materialization.metadata.get(FINGERPRINT_KEY)
    return value.value if isinstance(value, dg.TextMetadataValue) else None
