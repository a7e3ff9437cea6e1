"""The shared inbox sensor on a toy location: complete items only, one run per content,
refused items quarantined with the reason, for files and for folders."""

import json
from pathlib import Path

import dagster as dg
import pytest

from platform_core.datastore import DataStore
from platform_core.inbox import MARKER, REJECTED, Inbox, build_inbox_sensor

items = dg.DynamicPartitionsDefinition(name="item")


@dg.asset(partitions_def=items)
def item_asset() -> None: ...


job = dg.define_asset_job("item_job", selection=[item_asset])


def _register(store: DataStore, path: Path) -> str:
    if "bad" in path.name:
        raise ValueError(f"{path.name}: not a valid item")
    return path.name.split(".")[0]


def _inbox(kind: str, after: str, register=_register) -> Inbox:
    return Inbox(
        sensor=f"{kind}_inbox",
        register=register,
        refused=(ValueError,),
        kind=kind,  # type: ignore[arg-type]
        suffixes=(".txt",),
        after=after,  # type: ignore[arg-type]
    )


def _sensor(kind: str, after: str) -> dg.SensorDefinition:
    return build_inbox_sensor(_inbox(kind, after), "toy", [job], items)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DataStore:
    """The toy location's storage owner (its inbox: ``store.inbox()``); an unmarked item is
    complete once unchanged across two ticks, however young (TOY_INBOX_SETTLE_SECONDS)."""
    monkeypatch.setenv("TOY_INBOX_SETTLE_SECONDS", "0")
    return DataStore(root=str(tmp_path), location="toy")


def _tick(
    sensor: dg.SensorDefinition, cursor: str | None, inst: dg.DagsterInstance, store: DataStore
):
    with dg.build_sensor_context(instance=inst, cursor=cursor, resources={"storage": store}) as ctx:
        return sensor(ctx)


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_inbox_runs_each_complete_item_once_and_rejects_bad_ones(
    kind: str, store: DataStore, instance: dg.DagsterInstance
) -> None:
    inbox = store.inbox()
    inbox.mkdir(parents=True)

    def drop(name: str, text: str = "x") -> Path:
        if kind == "file":
            (inbox / f"{name}.txt").write_text(text)
            return inbox / f"{name}.txt"
        (inbox / name).mkdir(exist_ok=True)
        (inbox / name / "data.txt").write_text(text)
        return inbox / name

    sensor = _sensor(kind, "move" if kind == "file" else "keep")
    drop("alpha")
    marked = drop("beta")
    (marked / MARKER if kind == "folder" else inbox / f"{marked.name}{MARKER}").touch()
    bad = drop("bad_one")
    first = _tick(sensor, None, instance, store)
    assert [r.partition_key for r in first.run_requests] == ["beta"]  # marked: complete at once
    second = _tick(sensor, first.cursor, instance, store)  # alpha unchanged across two ticks
    assert [r.partition_key for r in second.run_requests] == ["alpha"]
    assert second.dynamic_partitions_requests[0].partition_keys == ["alpha"]
    assert not bad.exists()
    reason = (inbox / REJECTED / f"{bad.name}.error.txt").read_text()
    assert "bad_one" in reason and "not a valid item" in reason
    third = _tick(sensor, second.cursor, instance, store)  # nothing new: no second run
    assert third.run_requests == []
    if kind == "folder":  # kept in place: new content of the same folder runs again
        drop("alpha", "changed")
        settling = _tick(sensor, third.cursor, instance, store).cursor
        fourth = _tick(_sensor(kind, "keep"), settling, instance, store)
        [again] = fourth.run_requests
        assert again.partition_key == "alpha" and again.run_key != second.run_requests[0].run_key
    else:
        assert (inbox / "processed" / "alpha.txt").exists()


def test_adopted_folders_leave_the_inbox_and_are_registered_where_they_land(
    store: DataStore, instance: dg.DagsterInstance
) -> None:
    """``adopt``: a complete folder moves to processed/ before it is registered there, so
    later ticks never look at it again; a second folder of a name received before, and a
    refused one, end in rejected/ with the reason."""
    inbox = store.inbox()
    registered: list[Path] = []

    def register(store: DataStore, path: Path) -> str:
        registered.append(path)
        return _register(store, path)

    sensor = build_inbox_sensor(_inbox("folder", "adopt", register), "toy", [job], items)
    for name in ("study", "bad_study"):
        (inbox / name).mkdir(parents=True)
        (inbox / name / "data.txt").write_text(name)
        (inbox / name / MARKER).touch()
    first = _tick(sensor, None, instance, store)
    assert [r.partition_key for r in first.run_requests] == ["study"]
    assert {p.name: p.parent for p in registered} == {  # registered where they now lie
        "bad_study": inbox / "processed",
        "study": inbox / "processed",
    }
    assert (inbox / "processed" / "study" / "data.txt").read_text() == "study"
    assert sorted(p.name for p in inbox.iterdir()) == ["processed", REJECTED]
    assert "not a valid item" in (inbox / REJECTED / "bad_study.error.txt").read_text()
    assert json.loads(first.cursor) == {"done": {}, "pending": {}}  # nothing to remember
    (inbox / "study").mkdir()
    (inbox / "study" / "data.txt").write_text("other content, same name")
    (inbox / "study" / MARKER).touch()
    second = _tick(sensor, first.cursor, instance, store)
    assert second.run_requests == []
    assert "received before" in (inbox / REJECTED / "study.error.txt").read_text()
    assert (inbox / "processed" / "study" / "data.txt").read_text() == "study"  # untouched
