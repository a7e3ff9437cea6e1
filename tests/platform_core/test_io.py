import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from platform_core.datastore import DataStore
from platform_core.io import (
    AssetStorageIOManager,
    FrameSlices,
    atomic_write,
    atomic_write_bytes,
    frames_to_tables,
    parquet_bytes,
    read_table,
)
from platform_core.keys import InvalidKeyError, validate_partition_key


def write_frame(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, parquet_bytes(frames_to_tables([frame])[0]))


def test_atomic_write_failure_keeps_previous_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "asset" / "2018-01-02.parquet"
    write_frame(target, pd.DataFrame({"x": [1, 2, 3]}))

    def crash(tmp: Path) -> None:
        tmp.write_bytes(b"PAR1 half written")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, crash)
    with pytest.raises(TypeError):  # the in-memory variant fails mid-write the same way
        atomic_write_bytes(target, 12345)  # type: ignore[arg-type]
    assert pd.read_parquet(target)["x"].tolist() == [1, 2, 3]
    assert sorted(p.name for p in target.parent.iterdir()) == ["2018-01-02.parquet"]


@pytest.mark.parametrize(
    "key", ["../etc", "a/b", "..", "", ".hidden", "a\\b", "x" * 129, "a b", "nul\0"]
)
def test_hostile_partition_keys_are_rejected(key: str) -> None:
    with pytest.raises(InvalidKeyError, match="invalid key"):
        validate_partition_key(key)


def test_safe_keys_pass() -> None:
    assert validate_partition_key("2018-01-02") == "2018-01-02"
    assert validate_partition_key("batch_7.v2") == "batch_7.v2"


def test_frames_are_parquet_records_are_json_never_pickle(tmp_path: Path) -> None:
    daily = dg.DailyPartitionsDefinition(start_date="2018-01-01")

    @dg.asset(partitions_def=daily, backfill_policy=dg.BackfillPolicy.single_run())
    def frames(context: dg.AssetExecutionContext):
        return {
            k: pd.DataFrame({"day": [k], "v": [i]}) for i, k in enumerate(context.partition_keys)
        }

    @dg.asset(partitions_def=daily)
    def record(frames: pd.DataFrame) -> dict:
        return {"rows": len(frames)}

    io = AssetStorageIOManager(store=DataStore(root=str(tmp_path), location="test"))
    dg.materialize(
        [frames],
        resources={"io_manager": io},
        tags={
            "dagster/asset_partition_range_start": "2018-01-01",
            "dagster/asset_partition_range_end": "2018-01-03",
        },
    )
    dg.materialize(
        [frames, record],
        resources={"io_manager": io},
        partition_key="2018-01-02",
        selection=[record],
    )
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == [
        "test/frames/2018-01-01.parquet",
        "test/frames/2018-01-02.parquet",
        "test/frames/2018-01-03.parquet",
        "test/record/2018-01-02.json",
    ]
    assert (tmp_path / "test/frames/2018-01-03.parquet").read_bytes()[:4] == b"PAR1"
    assert json.loads((tmp_path / "test/record/2018-01-02.json").read_text()) == {"rows": 1}
    assert pd.read_parquet(tmp_path / "test/frames/2018-01-03.parquet")["v"].tolist() == [2]


def test_loading_a_missing_partition_names_it(tmp_path: Path) -> None:
    io = AssetStorageIOManager(store=DataStore(root=str(tmp_path), location="test"))
    assert io.read_partition(dg.AssetKey("frames"), "2018-01-05") is None
    with pytest.raises(dg.Failure, match=r"frames partition 2018-01-05 has not been materialized"):
        io._load_one(dg.AssetKey("frames"), "2018-01-05")


def test_frames_of_one_schema_are_converted_together_and_read_back_alike(tmp_path: Path) -> None:
    """A backfill's partitions share one Arrow conversion (sliced); each file still holds
    exactly its own frame, and a frame of another schema is converted on its own."""
    same = [
        pd.DataFrame({"day": pd.to_datetime([f"2018-01-0{i}"] * i), "v": list(range(i))})
        for i in (1, 2, 3)
    ]
    empty = pd.DataFrame({"day": pd.Series([], dtype=object), "v": pd.Series([], dtype=object)})
    tables = frames_to_tables(same)
    assert [t.num_rows for t in tables] == [1, 2, 3]
    assert tables[2].to_pandas()["v"].tolist() == [0, 1, 2]
    for frames in (same, [*same, empty]):
        for i, table in enumerate(frames_to_tables(frames)):
            path = tmp_path / f"{len(frames)}" / f"{i}.parquet"
            path.parent.mkdir(exist_ok=True)
            atomic_write_bytes(path, parquet_bytes(table))
            pd.testing.assert_frame_equal(pd.read_parquet(path), frames[i])


def test_a_rewritten_partition_is_read_anew_not_from_the_table_cache(tmp_path: Path) -> None:
    path = tmp_path / "asset" / "2018-01-02.parquet"
    write_frame(path, pd.DataFrame({"x": [1, 2, 3]}))
    assert read_table(path).to_pandas()["x"].tolist() == [1, 2, 3]
    assert read_table(path) is read_table(path)  # unchanged: served from memory
    write_frame(path, pd.DataFrame({"x": [4, 5, 6]}))  # same size, atomically replaced
    assert read_table(path).to_pandas()["x"].tolist() == [4, 5, 6]


def _ranged(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def test_arrow_frames_slices_and_a_format_switch(tmp_path: Path) -> None:
    """``frame_format="arrow"`` writes Arrow IPC files that any Arrow reader opens; a
    FrameSlices result stores each partition's rows; a partition rewritten in the other
    format leaves no stale file behind, and reads come back from the newest."""
    daily = dg.DailyPartitionsDefinition(start_date="2018-01-01")
    rows = pd.DataFrame({"day": ["2018-01-01", "2018-01-01", "2018-01-03"], "v": [5, 6, 7]})

    @dg.asset(partitions_def=daily, backfill_policy=dg.BackfillPolicy.single_run())
    def frames(context: dg.AssetExecutionContext):
        keys = context.partition_keys
        mine = rows[rows["day"].isin(keys)].reset_index(drop=True)
        return FrameSlices(mine, {k: int((mine["day"] <= k).sum()) for k in keys})

    @dg.asset(partitions_def=daily, backfill_policy=dg.BackfillPolicy.single_run())
    def total(context: dg.AssetExecutionContext, frames: pd.DataFrame) -> dict:
        return {k: {"v": int(frames["v"].sum())} for k in context.partition_keys}

    arrow = AssetStorageIOManager(
        store=DataStore(root=str(tmp_path), location="t"), frame_format="arrow"
    )
    result = dg.materialize(
        [frames, total], resources={"io_manager": arrow}, tags=_ranged("2018-01-01", "2018-01-03")
    )
    folder = tmp_path / "t" / "frames"
    assert sorted(p.name for p in folder.iterdir()) == [
        "2018-01-01.arrow",
        "2018-01-02.arrow",
        "2018-01-03.arrow",
    ]
    assert pd.read_feather(folder / "2018-01-01.arrow")["v"].tolist() == [5, 6]
    assert pd.read_feather(folder / "2018-01-02.arrow").empty
    assert json.loads((tmp_path / "t/total/2018-01-02.json").read_text()) == {"v": 18}
    metadata = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("frames")
    ]
    assert len(metadata) == 3 and not any("dagster/row_count" in m for m in metadata)
    assert {(m["run_row_count"].value, m["run_partition_count"].value) for m in metadata} == {
        (3, 3)  # the run's totals, named as such: no partition claims 3 rows of its own
    }

    parquet = AssetStorageIOManager(store=DataStore(root=str(tmp_path), location="t"))
    one = dg.materialize(
        [frames], resources={"io_manager": parquet}, partition_key="2018-01-03", selection=[frames]
    )
    [event] = one.get_asset_materialization_events()
    assert event.materialization.metadata["dagster/row_count"].value == 1  # its own rows
    assert sorted(p.name for p in folder.glob("2018-01-03.*")) == ["2018-01-03.parquet"]
    assert arrow.read_partition(dg.AssetKey("frames"), "2018-01-03")["v"].tolist() == [7]
    assert arrow.read_partition(dg.AssetKey("frames"), "2018-01-01")["v"].tolist() == [5, 6]


def test_existing_paths_of_a_range_agree_with_one_lookup_each(tmp_path: Path) -> None:
    """The one-listing lookup of a range input finds what the per-partition lookup finds:
    the manager's own format first, then the other, then JSON; None when absent."""
    folder = tmp_path / "t" / "a"
    folder.mkdir(parents=True)
    for name in ("d1.arrow", "d1.parquet", "d2.parquet", "d3.json", ".d4.arrow.x.tmp"):
        (folder / name).write_bytes(b"")
    keys = ["d1", "d2", "d3", "d4"]
    for frame_format, d1 in (("arrow", "d1.arrow"), ("parquet", "d1.parquet")):
        storage = AssetStorageIOManager(
            store=DataStore(root=str(tmp_path), location="t"), frame_format=frame_format
        )
        found = storage.existing_paths(dg.AssetKey("a"), keys)
        assert found == {k: storage.existing_path(dg.AssetKey("a"), k) for k in keys}
        assert [p.name if p else None for p in found.values()] == [
            d1,
            "d2.parquet",
            "d3.json",
            None,  # only a temp file of an unfinished write
        ]
    assert AssetStorageIOManager(store=DataStore(root=str(tmp_path), location="t")).existing_paths(
        dg.AssetKey("never"), ["d1"]
    ) == {"d1": None}
