"""Pipelines of user steps: the four function patterns, compile-time refusals, a well that
fails alone and is redone alone, and labels stored under the image they segment."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import zarr

from imaging_assets.engine.apply import TILES, PlateContext, StepResult, apply_step
from imaging_assets.engine.compile import compile_pipeline, compile_pipelines
from imaging_assets.engine.spec import read_pipeline_file
from imaging_assets.pipelines import FunctionStep, Pipeline, PipelineError, definitions_with, run
from imaging_assets.science import omezarr
from platform_core.steps import StepNotAllowedError
from tests.support import store as data_store

STEPS = "tests.imaging.pipeline_steps"
CONTEXT = PlateContext({1: "DAPI"}, None, pd.DataFrame(), (10.0, 10.0))


def planes(wells=("A01",), sites=(1, 2), channels=(1, 2), zs=(1,)) -> StepResult:
    rng = np.random.default_rng(0)
    return StepResult(
        "image",
        {
            (w, s, c, z): rng.random((8, 8)).astype(np.float32)
            for w in wells
            for s in sites
            for c in channels
            for z in zs
        },
    )


def apply(step: FunctionStep, source: StepResult) -> StepResult:
    compiled = compile_pipeline(Pipeline([step], name="p"), user_code=True).steps[0]
    return apply_step(compiled, {TILES: source}, CONTEXT)


def test_the_four_function_patterns() -> None:
    source = planes()
    key = ("A01", 1, 2, 1)
    single = apply(FunctionStep("s", f"{STEPS}:scale"), source)
    np.testing.assert_allclose(single.planes[key], source.planes[key] * 2)
    with_kwargs = apply(FunctionStep("s", [f"{STEPS}:offset", {"by": 5}]), source)
    np.testing.assert_allclose(with_kwargs.planes[key], source.planes[key] + 5)
    chain = apply(FunctionStep("s", [f"{STEPS}:scale", [f"{STEPS}:offset", {"by": 1}]]), source)
    np.testing.assert_allclose(chain.planes[key], source.planes[key] * 2 + 1)
    per_channel = apply(
        FunctionStep(
            "s", {1: f"{STEPS}:scale", 2: [f"{STEPS}:offset", {"by": 3}]}, group_by="channel"
        ),
        source,
    )
    one = ("A01", 2, 1, 1)
    np.testing.assert_allclose(per_channel.planes[one], source.planes[one] * 2)
    np.testing.assert_allclose(per_channel.planes[key], source.planes[key] + 3)
    # a kwarg named after a component the function does not take selects the planes
    selected = apply(FunctionStep("s", f"{STEPS}:scale", {"channel": 2}), source)
    assert {k[2] for k in selected.planes} == {2}


def test_labels_and_tables_flow_between_steps() -> None:
    pipeline = Pipeline(
        [
            FunctionStep("blobs", f"{STEPS}:bright_blobs", {"channel": 1}),
            FunctionStep("objects", f"{STEPS}:count_labels", {"labels": "blobs"}),
        ],
        name="p",
    )
    blobs, objects = compile_pipeline(pipeline, user_code=True).steps
    assert objects.input is None  # the stack is the plate's planes, the labels a kwarg
    source = planes()
    outputs = {TILES: source}
    outputs[blobs.key] = apply_step(blobs, outputs, CONTEXT)
    assert set(outputs[blobs.key].planes) == {("A01", 1, None, 1), ("A01", 2, None, 1)}
    table = apply_step(objects, outputs, CONTEXT).table
    assert list(table.columns[:3]) == ["well", "site", "object_id"]
    labels = outputs[blobs.key].planes[("A01", 2, None, 1)]
    ids = np.unique(labels[labels > 0])
    site2 = table[table["site"] == 2]
    expected = [source.planes[("A01", 2, 2, 1)][labels == i].mean() for i in ids]
    np.testing.assert_allclose(site2["mean_intensity_ch2"], expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("step", "says"),
    [
        (FunctionStep("s", f"{STEPS}:no_such_function"), "cannot be imported"),
        (FunctionStep("s", "no_such_module.steps:f"), "cannot be imported"),
        (FunctionStep("s", f"{STEPS}:scale", {"factr": 3}), "takes no parameter 'factr'"),
        (FunctionStep("s", f"{STEPS}:count_labels"), "needs 'labels'"),
        (FunctionStep("s", f"{STEPS}:scale", reads=["earlier"]), "reads 'earlier', which is not"),
        (FunctionStep("s", "segment_nucleus"), "neither a shipped step"),
    ],
)
def test_a_step_that_cannot_run_is_refused_at_compile(step: FunctionStep, says: str) -> None:
    with pytest.raises((PipelineError, StepNotAllowedError), match="step 's'") as error:
        compile_pipeline(Pipeline([step], name="p"), user_code=True)
    assert says in str(error.value)


def test_group_by_makes_one_call_per_value() -> None:
    source = planes()
    step = FunctionStep(
        "s", f"{STEPS}:one_channel_only", variable_components=["site", "channel"], group_by="z"
    )
    with pytest.raises(Exception, match="one call saw channels"):
        apply(step, source)  # z held fixed, site and channel vary: both channels in a call
    by_channel = FunctionStep(
        "s", f"{STEPS}:one_channel_only", variable_components=["site"], group_by="channel"
    )
    assert len(apply(by_channel, source).planes) == len(source.planes)
    both = FunctionStep("s", f"{STEPS}:scale", variable_components=["channel"], group_by="channel")
    with pytest.raises(PipelineError, match="cannot also vary inside a call"):
        compile_pipeline(Pipeline([both], name="p"), user_code=True)


def test_selectors_are_the_steps_and_must_match_a_plane() -> None:
    inside = FunctionStep("s", [f"{STEPS}:scale", {"channel": 2}])
    with pytest.raises(PipelineError, match="'channel' selects planes; give it in the step"):
        compile_pipeline(Pipeline([inside], name="p"), user_code=True)
    with pytest.raises(Exception, match=r"selects \{'channel': \(7,\)\}, which no plane"):
        apply(FunctionStep("s", f"{STEPS}:scale", {"channel": 7}), planes())


def test_labels_of_two_channels_are_refused() -> None:
    with pytest.raises(Exception, match="a labels step sees one channel per plane"):
        apply(FunctionStep("s", f"{STEPS}:bright_blobs"), planes())


def test_a_reading_pipeline_is_redone_when_what_it_reads_changes() -> None:
    def reader() -> Pipeline:
        step = FunctionStep("n", f"{STEPS}:count_labels", {"labels": "a.b"}, reads=["a.b"])
        return Pipeline([step], name="reader")

    fingerprints = []
    for quantile in (0.99, 0.9):
        blobs = FunctionStep("b", f"{STEPS}:bright_blobs", {"quantile": quantile}, materialize=True)
        _, read = compile_pipelines([Pipeline([blobs], name="a"), reader()], user_code=True)
        fingerprints.append(read.steps[0].fingerprint)
    assert fingerprints[0] != fingerprints[1]
    table = FunctionStep(
        "t", f"{STEPS}:count_labels", {"labels": "b"}, reads=["b"], materialize=True
    )
    blobs = FunctionStep("b", f"{STEPS}:bright_blobs", materialize=True)
    tables = Pipeline([FunctionStep("x", f"{STEPS}:scale", reads=["a.t"])], name="reader")
    with pytest.raises(PipelineError, match=r"reads 'a\.t', a table"):
        compile_pipelines([Pipeline([blobs, table], name="a"), tables], user_code=True)


def test_what_the_daemon_loads_names_only_registered_modules(monkeypatch) -> None:
    monkeypatch.delenv("PLATFORM_STEP_MODULES", raising=False)
    pipeline = Pipeline([FunctionStep("s", f"{STEPS}:scale")], name="p")
    with pytest.raises(StepNotAllowedError, match="refused before import"):
        compile_pipeline(pipeline, user_code=False)
    monkeypatch.setenv("PLATFORM_STEP_MODULES", "tests.imaging")
    assert compile_pipeline(pipeline, user_code=False).steps[0].name == "s"


def test_a_yaml_pipeline_names_unknown_keys_with_file_and_line(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text("name: p\nsteps:\n  - name: a\n    func: flat_field\n    kwarg: {}\n")
    with pytest.raises(PipelineError, match=rf"{file} line 5: unknown key 'kwarg'"):
        read_pipeline_file(file)
    file.write_text("name: 2bad\nsteps:\n  - name: a\n    func: flat_field\n")
    with pytest.raises(PipelineError, match="invalid pipeline name '2bad'"):
        compile_pipeline(read_pipeline_file(file))


def failing_blobs(name: str) -> Pipeline:
    """Blobs of channel 1 and their table, after a step that fails in $FAIL_WELLS."""
    return Pipeline(
        [
            FunctionStep("checked", f"{STEPS}:fails_where_told"),
            FunctionStep("blobs", f"{STEPS}:bright_blobs", {"channel": 1}, materialize=True),
            FunctionStep("objects", f"{STEPS}:count_labels", {"labels": "blobs"}, reads=["blobs"]),
        ],
        name=name,
    )


def _summary(result: dict, name: str) -> pd.DataFrame:
    return result[name].set_index("well")


def test_a_failing_well_fails_alone_and_is_redone_alone(make_plate, hcs_instance, monkeypatch):
    plate = make_plate("user_steps", wells=3)
    pipeline = failing_blobs("user_blobs")
    monkeypatch.setenv("FAIL_WELLS", "A02")
    first = _summary(run([pipeline], plate, workers=2), "user_blobs")
    assert first["status"].to_dict() == {"A01": "ran", "A02": "failed", "A03": "ran"}
    error = first.loc["A02", "error"]
    assert "step 'user_blobs.checked'" in error and "fails_where_told" in error
    assert "well A02" in error and "ZeroDivisionError" in error
    assert first.loc["A01", "objects"] > 0

    # labels sit under the image they segment: a field per site, labels/blobs beside it
    store = _store("user_blobs", "blobs", "user_steps")
    field = zarr.open_group(omezarr.well_path(store, "A", 1) / "4", mode="r")
    image = omezarr.read_well(store, "A", 1, field="4")
    labels = omezarr.read_well(store, "A", 1, field="4", labels="blobs")
    assert image.shape[0] == 2 and labels.shape[-2:] == image.shape[-2:]
    assert "labels" in field and field.attrs["asset_platform"]["site"] == 5
    assert not (omezarr.well_path(store, "A", 2) / "0").exists()  # a failed well: no field

    # the data fixed, a re-run redoes only the failed well
    monkeypatch.setenv("FAIL_WELLS", "")
    second = _summary(run([pipeline], plate, workers=2), "user_blobs")
    assert second["status"].to_dict() == {"A01": "reused", "A02": "ran", "A03": "reused"}
    assert second.loc["A01", "objects"] == first.loc["A01", "objects"]
    assert (omezarr.well_path(store, "A", 2) / "4" / "labels" / "blobs").exists()


def _store(pipeline: str, step: str, plate: str) -> Path:
    return data_store("imaging").value_path(dg.AssetKey([pipeline, step]), plate, "ome.zarr")


def test_a_run_failing_past_its_threshold_changes_no_asset_and_keeps_its_wells(
    make_plate, hcs_instance, monkeypatch
):
    plate = make_plate("past_threshold", wells=3)
    pipeline = failing_blobs("threshold_blobs")
    monkeypatch.setenv("FAIL_WELLS", "")
    first = _summary(run([pipeline], plate), "threshold_blobs")
    store = _store("threshold_blobs", "blobs", "past_threshold")
    before = {p: p.stat().st_mtime_ns for p in store.rglob("zarr.json")}
    changed = Pipeline(  # other kwargs: every well redone, and two of three fail
        [
            pipeline.steps[0],
            FunctionStep(
                "blobs", f"{STEPS}:bright_blobs", {"channel": 1, "quantile": 0.9}, materialize=True
            ),
            pipeline.steps[2],
        ],
        name="threshold_blobs",
    )
    monkeypatch.setenv("FAIL_WELLS", "A01,A02")
    with pytest.raises(Exception, match="2 of 3 wells failed pipeline threshold_blobs"):
        run([changed], plate)
    assert {p: p.stat().st_mtime_ns for p in store.rglob("zarr.json")} == before
    stored = definitions_with([pipeline]).load_asset_value(
        ["threshold_blobs", "wells"], partition_key="past_threshold", instance=hcs_instance
    )
    pd.testing.assert_frame_equal(stored.set_index("well"), first)
    # fixed, the changed pipeline takes A03 from the failed run and computes A01 and A02
    monkeypatch.setenv("FAIL_WELLS", "")
    third = _summary(run([changed], plate), "threshold_blobs")
    assert third["status"].to_dict() == {"A01": "ran", "A02": "ran", "A03": "reused"}
    assert third.loc["A03", "objects"] > first.loc["A03", "objects"]  # quantile 0.9: more blobs


def test_a_plate_step_sees_every_well_whichever_wells_run(make_plate, hcs_instance):
    plate = make_plate("plate_scope", wells=3)
    pipeline = Pipeline(
        [FunctionStep("seen", f"{STEPS}:planes_seen", materialize=True)], name="seen_planes"
    )
    run([pipeline], plate, wells=["A02"])
    value = omezarr.read_well(_store("seen_planes", "seen", "plate_scope"), "A", 2)
    assert np.all(value == 3 * 9)  # one channel's sites of all three wells, not A02's 9


def test_labels_unlike_their_image_fail_and_keep_what_was_stored(make_plate, hcs_instance):
    plate = make_plate("bad_labels", wells=2)
    good = Pipeline(
        [FunctionStep("blobs", f"{STEPS}:bright_blobs", {"channel": 1}, materialize=True)],
        name="labels_check",
    )
    stored = _summary(run([good], plate), "labels_check")
    assert set(stored["status"]) == {"ran"}
    bad = Pipeline(
        [FunctionStep("blobs", f"{STEPS}:cropped_labels", {"channel": 1}, materialize=True)],
        name="labels_check",
    )
    with pytest.raises(Exception, match="2 of 2 wells failed") as failure:
        run([bad], plate)
    assert "not the shape of the image they segment" in str(failure.value)
    # the failed run stored nothing: the summary is the earlier one
    value = definitions_with([good]).load_asset_value(
        ["labels_check", "wells"], partition_key="bad_labels", instance=hcs_instance
    )
    pd.testing.assert_frame_equal(value.set_index("well"), stored)


def test_a_pipeline_reads_the_materialized_steps_of_one_before_it(make_plate, hcs_instance):
    plate = make_plate("two_pipelines", wells=2)
    first = Pipeline(
        [FunctionStep("blobs", f"{STEPS}:bright_blobs", {"channel": 1}, materialize=True)],
        name="segmenting",
    )
    second = Pipeline(
        [
            FunctionStep(
                "objects",
                f"{STEPS}:count_labels",
                {"labels": "segmenting.blobs"},
                reads=["segmenting.blobs"],
            )
        ],
        name="measuring",
    )
    summaries = run([first, second], plate)
    store = data_store("imaging").value_path(
        dg.AssetKey(["segmenting", "blobs"]), "two_pipelines", "ome.zarr"
    )
    stored = sum(
        len(np.unique(omezarr.read_well(store, "A", 1, field=str(f), labels="blobs"))) - 1
        for f in range(9)
    )
    assert summaries["measuring"].set_index("well").loc["A01", "objects"] == stored > 0
    unread = Pipeline(
        [FunctionStep("objects", f"{STEPS}:count_labels", {"labels": "x.y"}, reads=["x.y"])],
        name="measuring_nothing",
    )
    with pytest.raises(PipelineError, match=r"reads 'x\.y', which is not a step before it"):
        run([unread], plate)
