"""Helpers shared by the imaging tests."""

import hashlib
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import pandas as pd


def materialization_count(inst: dg.DagsterInstance, asset: str, plate: str) -> int:
    return len(
        inst.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[plate]),
            limit=1000,
        ).records
    )


def latest_check(inst: dg.DagsterInstance, asset: str, check: str, plate: str) -> bool:
    """Whether the latest evaluation of a check on a plate passed."""
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    history = inst.event_log_storage.get_asset_check_execution_history(key, limit=100)
    records = [r for r in history if r.partition == plate]
    assert records and records[0].event, f"check {check} on {asset} not evaluated for {plate}"
    evaluation = records[0].event.dagster_event.event_specific_data
    return bool(evaluation.passed)


def folder_digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (to prove a folder was not written to)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def truth(plate_dir: Path) -> pd.DataFrame:
    return pd.read_csv(plate_dir.with_name(plate_dir.name + ".truth.csv"), dtype={"well": str})


def exit_code(argv: Sequence[str]) -> int:
    """The exit code of ``hcs argv`` (usage errors exit through SystemExit)."""
    from imaging_assets.cli import main

    try:
        return main(list(argv))
    except SystemExit as exit_:
        return int(exit_.code or 0)
