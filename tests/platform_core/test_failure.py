"""The generic parts of platform_core.failure: failure actions layered over a location's
defaults, their retry policy, per-item failures with ECOD's and Tetra's thresholds, the
last good partition, and checkpoints (atomic, isolated by fingerprint)."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from platform_core import failure
from platform_core.checkpoint import fingerprint
from platform_core.platform_models import FailureActions

SEED = FailureActions(retry_count=2, fallback="use_previous_scenarios")


def use_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    monkeypatch.setenv("PLATFORM_CONFIG", str(path))


def test_actions_layer_file_over_defaults_and_environment_over_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert failure.actions("tetra", "scenarios", SEED) == SEED  # no file: the defaults
    use_config(
        tmp_path,
        monkeypatch,
        "locations:\n  tetra:\n    pipelines:\n      scenarios:\n        failure_actions:\n"
        "          - retry_count: 4\n          - retry_delay_seconds: 12\n",
    )
    resolved = failure.actions("tetra", "scenarios", SEED)
    assert (resolved.retry_count, resolved.retry_delay_seconds) == (4, 12.0)  # the file's
    assert resolved.fallback == "use_previous_scenarios"  # a key the file leaves: the default
    assert failure.actions("tetra", "metrics", SEED) == SEED  # another group: untouched
    monkeypatch.setenv("DELAY_FOR_TEST", "0.5")
    assert failure.actions("tetra", "scenarios", SEED, "DELAY_FOR_TEST").retry_delay_seconds == 0.5


def test_retry_policy_from_actions() -> None:
    assert failure.retry_policy(FailureActions(retry_count=0)) is None
    exponential = failure.retry_policy(FailureActions(retry_count=3, retry_delay_seconds=7))
    assert (exponential.max_retries, exponential.delay) == (3, 7)
    assert (exponential.backoff, exponential.jitter) == (
        dg.Backoff.EXPONENTIAL,
        dg.Jitter.PLUS_MINUS,
    )
    fixed = failure.retry_policy(FailureActions(retry_count=1, backoff="fixed"))
    assert (fixed.max_retries, fixed.delay, fixed.backoff, fixed.jitter) == (1, 30.0, None, None)


def pieces(failing: int, total: int = 10) -> failure.ItemFailures:
    def compute(i: int) -> int:
        if i < failing:
            raise OSError(f"chain {i} timed out")
        return i * i

    return failure.run_items({f"c{i}": (lambda i=i: compute(i)) for i in range(total)})


def test_run_items_keeps_the_completed_and_lists_the_failed() -> None:
    outcome = pieces(failing=2)
    assert outcome.done == {f"c{i}": i * i for i in range(2, 10)}
    assert outcome.failed == {
        "c0": "OSError: chain 0 timed out",
        "c1": "OSError: chain 1 timed out",
    }
    assert outcome.fraction == pytest.approx(0.2)
    assert outcome.metadata("failed_chains")["failed_chains"].value == outcome.failed
    assert outcome.metadata(limit=1)[failure.FAILED_ITEMS_KEY].value == {"c0": outcome.failed["c0"]}


def test_run_items_never_swallows_a_failure_of_bad_input() -> None:
    def refuse() -> None:
        raise dg.Failure("bad input: row 3")

    with pytest.raises(dg.Failure, match="bad input: row 3"):
        failure.run_items({"ok": lambda: 1, "bad": refuse})
    with pytest.raises(KeyError):  # only the tolerated errors are collected
        failure.run_items({"k": lambda: {}["x"]}, tolerate=OSError)


@pytest.mark.parametrize(
    ("failing", "continue_on_error", "max_failed_fraction", "raises"),
    [
        (0, False, 0.0, False),  # nothing failed
        (1, True, 0.1, False),  # ECOD: 10 % failed, threshold 10 %: go on
        (2, True, 0.1, True),  # ECOD: 20 % over the threshold
        (1, False, 1.0, True),  # errors not tolerated
        (9, True, 1.0, False),  # partial recovery: any fraction while one completed
        (10, True, 1.0, True),  # nothing completed: nothing to keep
    ],
)
def test_enforce_thresholds(
    failing: int, continue_on_error: bool, max_failed_fraction: float, raises: bool
) -> None:
    outcome = pieces(failing)
    if not raises:
        outcome.enforce(continue_on_error, max_failed_fraction)
        return
    with pytest.raises(dg.Failure) as error:
        outcome.enforce(continue_on_error, max_failed_fraction)
    assert f"{failing} of 10 items failed" in error.value.description
    assert "first: c0: OSError: chain 0 timed out" in error.value.description
    assert error.value.metadata[failure.FAILED_ITEMS_KEY].value["c0"] == (
        "OSError: chain 0 timed out"
    )


def test_last_good_partition_skips_fallbacks(instance: dg.DagsterInstance) -> None:
    key = dg.AssetKey("weekly_thing")
    for week, fell_back in [("2018-01-01", False), ("2018-01-08", False), ("2018-01-15", True)]:
        meta = failure.fallback_metadata("week x" if fell_back else None, RuntimeError("e"))
        instance.report_runless_asset_event(
            dg.AssetMaterialization(key, partition=week, metadata=meta)
        )
    assert failure.last_good_partition(instance, key, "2018-01-22") == "2018-01-08"
    assert failure.last_good_partition(instance, key, "2018-01-08") == "2018-01-01"
    assert failure.last_good_partition(instance, key, "2018-01-01") is None
    assert failure.last_good_partition(instance, key, "2018-01-22", lookback=1) is None


def test_latest_metadata_reads_each_partitions_latest_and_stops_when_found(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The latest materialization of each asked partition, across pages; a partition never
    materialized costs no page (the old reader paged through every record for it)."""
    key = dg.AssetKey("daily_thing")
    for partition, times in [("b", 1), ("a", 5), ("c", 3), ("z", 4)]:
        for n in range(1, times + 1):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(key, partition=partition, metadata={"n": n})
            )
    calls: list[int] = []
    real = instance.fetch_materializations

    def counted(records_filter: dg.AssetRecordsFilter, limit: int, **kwargs):
        calls.append(limit)
        return real(records_filter, limit, **kwargs)

    monkeypatch.setattr(instance, "fetch_materializations", counted)
    monkeypatch.setattr(failure, "LATEST_BATCH", 2)
    latest = failure.latest_metadata(instance, key, ["a", "b", "never", "c", "a"])
    assert {k: failure.flag(m, "n") for k, m in latest.items()} == {"a": 5, "b": 1, "c": 3}
    # batch [a, b]: pages (a5 a4) (a3 a2) (a1 b1), then batch [c]: (c3); z is never read
    assert calls == [2, 2, 2, 1]
    assert failure.latest_metadata(instance, key, ["never"]) == {}
    assert calls == [2, 2, 2, 1]  # nothing materialized: no page at all


def test_fingerprint_follows_content() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    assert fingerprint(frame, {"w": 1}) == fingerprint(frame.copy(), {"w": 1})
    assert fingerprint(frame, {"w": 1}) != fingerprint(frame, {"w": 2})
    assert fingerprint(frame) != fingerprint(frame.assign(a=[1.0, 2.5]))
    assert fingerprint(frame) != fingerprint(frame.rename(columns={"a": "b"}))
    shifted = frame.set_axis([5, 6])  # same values, other rows (dates): only index=True tells
    assert fingerprint(frame) == fingerprint(shifted)
    assert fingerprint(frame, index=True) != fingerprint(shifted, index=True)


def test_checkpoints_reuse_pieces_of_the_same_inputs_only(tmp_path: Path) -> None:
    calls: list[str] = []

    def compute(name: str) -> pd.DataFrame:
        calls.append(name)
        return pd.DataFrame({"x": [1.5, 2.5]}, index=pd.Index(["a", "b"], name="symbol"))

    first = failure.Checkpoints(tmp_path / "step", "inputs-1")
    stored = first.piece("p1", lambda: compute("p1"))
    again = failure.Checkpoints(tmp_path / "step", "inputs-1")  # a retry: a new process
    pd.testing.assert_frame_equal(again.piece("p1", lambda: compute("p1 again")), stored)
    assert calls == ["p1"] and again.reused == ["p1"] and again.stored() == ["p1"]
    other = failure.Checkpoints(tmp_path / "step", "inputs-2")  # other inputs: not seen
    other.piece("p1", lambda: compute("p1 other inputs"))
    assert calls == ["p1", "p1 other inputs"] and other.reused == []
    other.clear()
    assert not (tmp_path / "step").exists()
    with pytest.raises(ValueError, match="not a plain file name"):
        first.piece("../escape", lambda: compute("x"))


def test_a_piece_that_fails_to_compute_or_write_leaves_nothing(tmp_path: Path) -> None:
    pieces_ = failure.Checkpoints(tmp_path / "step", "inputs")

    def broken() -> pd.DataFrame:
        raise MemoryError("out of memory")

    with pytest.raises(MemoryError):
        pieces_.piece("p1", broken)
    unwritable = pd.DataFrame({"mixed": [1, "one"]})  # parquet refuses mixed types
    with pytest.raises(ValueError, match="Conversion failed for column mixed"):
        pieces_.piece("p2", lambda: unwritable)
    assert pieces_.stored() == []
    assert not list((tmp_path / "step").rglob("*.tmp"))  # no half-written file either
