"""Pipelines of user steps: the four function patterns, compile-time refusals, a well that
fails alone and is redone alone, and labels stored under the image they segment."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import zarr

from imaging_assets.engine.apply import TILES, PlateContext, StepResult, apply_step
from imaging_assets.engine.compile import compile_pipeline
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


def _summary(result: dict, name: str) -> pd.DataFrame:
    return result[name].set_index("well")


def test_a_failing_well_fails_alone_and_is_redone_alone(make_plate, hcs_instance, monkeypatch):
    plate = make_plate("user_steps", wells=3)
    pipeline = Pipeline(
        [
            FunctionStep("checked", f"{STEPS}:fails_in_a02"),
            FunctionStep("blobs", f"{STEPS}:bright_blobs", {"channel": 1}, materialize=True),
            FunctionStep("objects", f"{STEPS}:count_labels", {"labels": "blobs"}, reads=["blobs"]),
        ],
        name="user_blobs",
    )
    monkeypatch.setenv("FAIL_WELL", "A02")  # makes no difference: the step itself decides
    first = _summary(run([pipeline], plate, workers=2), "user_blobs")
    assert first["status"].to_dict() == {"A01": "ran", "A02": "failed", "A03": "ran"}
    error = first.loc["A02", "error"]
    assert "step 'user_blobs.checked'" in error and "fails_in_a02" in error
    assert "well A02" in error and "ZeroDivisionError" in error
    assert first.loc["A01", "objects"] > 0

    # labels sit under the image they segment: a field per site, labels/blobs beside it
    store = data_store("imaging").value_path(
        dg.AssetKey(["user_blobs", "blobs"]), "user_steps", "ome.zarr"
    )
    field = zarr.open_group(omezarr.well_path(store, "A", 1) / "4", mode="r")
    image = omezarr.read_well(store, "A", 1, field="4")
    labels = omezarr.read_well(store, "A", 1, field="4", labels="blobs")
    assert image.shape[0] == 2 and labels.shape[-2:] == image.shape[-2:]
    assert "labels" in field and field.attrs["asset_platform"]["site"] == 5
    assert not (omezarr.well_path(store, "A", 2) / "0").exists()  # a failed well: no field

    # a second run redoes only the failed well (still failing: the step is unchanged)
    second = _summary(run([pipeline], plate, workers=2), "user_blobs")
    assert second["status"].to_dict() == {"A01": "reused", "A02": "failed", "A03": "reused"}
    assert second.loc["A01", "objects"] == first.loc["A01", "objects"]


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
