"""Pipelines from the operator's folder, the CLI (--pipeline-file, --pipeline, pipelines,
export) and the inbox (a plate's pipeline.txt names a loaded pipeline, never defines one)."""

import json
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from imaging_assets.cli import main
from imaging_assets.components.pipeline import load_pipelines, pipelines_of, refused_pipelines
from imaging_assets.location import LOCATION
from platform_core.inbox import MARKER
from tests.imaging.support import exit_code
from tests.support import store as data_store
from tests.support import tick

USER_PIPELINE = """\
name: {name}
steps:
  - name: blobs
    func: tests.imaging.pipeline_steps:bright_blobs
    kwargs: {{channel: 1}}
    materialize: true
  - name: objects
    func: tests.imaging.pipeline_steps:count_labels
    kwargs: {{labels: blobs}}
"""


@pytest.fixture
def operator_folder(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    monkeypatch.setenv("IMAGING_PIPELINES_DIR", str(folder))
    monkeypatch.setenv("PLATFORM_STEP_MODULES", "tests.imaging")
    return folder


def test_the_operator_folder_loads_and_a_bad_file_is_refused_alone(operator_folder: Path):
    (operator_folder / "good.yaml").write_text(USER_PIPELINE.format(name="lab_blobs"))
    (operator_folder / "bad_name.yaml").write_text(USER_PIPELINE.format(name="lab-blobs"))
    (operator_folder / "bad_key.yaml").write_text(
        USER_PIPELINE.format(name="other") + "    materialise: true\n"
    )
    component = "type: imaging_assets.components.ImagingPipeline\nattributes:\n" + "".join(
        f"  {line}\n" for line in USER_PIPELINE.format(name="as_component").splitlines()
    )
    (operator_folder / "component.yaml").write_text(component)
    (operator_folder / "bad_types.yaml").write_text(
        USER_PIPELINE.format(name="typed") + "    reads: 5\n"
    )
    (operator_folder / "bad_flag.yaml").write_text(
        USER_PIPELINE.format(name="flagged").replace("materialize: true", "materialize: 'no'")
    )
    defs = load_pipelines()
    assert {"lab_blobs", "as_component"} <= set(pipelines_of(defs))
    assert (
        "reads must be a name or a list of names"
        in refused_pipelines(defs)[str(operator_folder / "bad_types.yaml")]
    )
    assert (
        "materialize must be true or false"
        in refused_pipelines(defs)[str(operator_folder / "bad_flag.yaml")]
    )
    refused = refused_pipelines(defs)
    assert "invalid pipeline name 'lab-blobs'" in refused[str(operator_folder / "bad_name.yaml")]
    assert "line 10: unknown key 'materialise'" in refused[str(operator_folder / "bad_key.yaml")]
    graph = LOCATION.definitions().resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"lab_blobs/blobs", "lab_blobs/objects", "lab_blobs/wells"} <= keys


def test_a_users_file_runs_from_the_cli_and_its_table_exports(make_plate, hcs_instance, tmp_path):
    plate = make_plate("cli_pipeline", wells=2)
    file = tmp_path / "mine.yaml"
    file.write_text(USER_PIPELINE.format(name="my_blobs"))
    assert main(["run", str(plate), "--pipeline-file", str(file), "--workers", "1"]) == 0
    [record] = hcs_instance.get_run_records(dg.RunsFilter(job_name="my_blobs"))
    assert record.dagster_run.tags["dagster/partition"] == "cli_pipeline"
    out = tmp_path / "objects.csv"
    args = ["export", "--plate", "cli_pipeline", "--pipeline", "my_blobs", "--step", "objects"]
    assert main([*args, "--out", str(out)]) == 0
    objects = pd.read_csv(out)
    assert list(objects.columns[:3]) == ["well", "site", "object_id"]
    assert set(objects["well"]) == {"A01", "A02"} and set(objects["site"]) == set(range(1, 10))
    summary = tmp_path / "wells.parquet"
    assert (
        main(["export", "--plate", "cli_pipeline", "--pipeline", "my_blobs", "--out", str(summary)])
        == 0
    )
    wells = pd.read_parquet(summary).set_index("well")
    assert wells["objects"].to_dict() == objects.groupby("well").size().to_dict()


def test_unknown_pipeline_names_are_refused(make_plate, hcs_instance, tmp_path, capsys):
    plate = make_plate("cli_unknown", wells=1)
    assert exit_code(["run", str(plate), "--pipeline", "no_such_pipeline"]) == 2
    assert "not a loaded pipeline (loaded: stitch" in capsys.readouterr().err
    file = tmp_path / "broken.yaml"
    file.write_text(USER_PIPELINE.format(name="broken").replace("count_labels", "count_label"))
    assert exit_code(["run", str(plate), "--pipeline-file", str(file)]) == 2
    assert "step 'objects'" in capsys.readouterr().err
    assert main(["pipelines", "--json"]) == 0
    assert "stitch" in json.loads(capsys.readouterr().out)["pipelines"]


def test_a_dropped_plate_runs_the_pipeline_its_file_names(
    make_plate, hcs_instance, operator_folder: Path
):
    (operator_folder / "lab.yaml").write_text(USER_PIPELINE.format(name="lab_count"))
    defs = LOCATION.definitions()
    inbox = data_store("imaging").inbox()
    inbox.mkdir(parents=True, exist_ok=True)
    source = make_plate("dropped_source", wells=1)
    chosen, unknown, coded = inbox / "chosen_plate", inbox / "unknown_plate", inbox / "coded_plate"
    linked = inbox / "linked_plate"
    for folder, text in [
        (chosen, "lab_count\n"),
        (unknown, "lab_counts"),
        (coded, "lab_count"),
        (linked, None),
    ]:
        shutil.copytree(source, folder)
        if text is None:  # a link to a file outside the plate: never read
            outside = operator_folder.parent / "secret.txt"
            outside.write_text("lab_count")
            (folder / "pipeline.txt").symlink_to(outside)
        else:
            (folder / "pipeline.txt").write_text(text)
        (folder / MARKER).touch()
    (coded / "steps.yaml").write_text("steps:\n  - name: x\n    func: os:system\n")
    result = tick(defs, "plate_inbox_sensor", hcs_instance)
    [request] = result.run_requests
    assert (request.partition_key, request.job_name) == ("chosen_plate", "lab_count")
    rejected = inbox / "rejected"
    reason = (rejected / "unknown_plate.error.txt").read_text()
    assert "names 'lab_counts', which is not a loaded pipeline" in reason
    assert "never defines steps" in (rejected / "coded_plate.error.txt").read_text()
    assert "pipeline.txt" in (rejected / "linked_plate.error.txt").read_text()


def test_a_pipeline_yaml_is_a_dagster_component(tmp_path: Path, monkeypatch) -> None:
    """The same YAML, as a component of a dg project, builds the same assets and job."""
    package = tmp_path / "lab_project"
    (package / "defs" / "count").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "defs" / "count" / "defs.yaml").write_text(
        "type: imaging_assets.components.ImagingPipeline\nattributes:\n"
        + "".join(f"  {line}\n" for line in USER_PIPELINE.format(name="dg_blobs").splitlines())
    )
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "lab_project"\nversion = "0"\n[tool.dg]\ndirectory_type = '
        '"project"\n[tool.dg.project]\nroot_module = "lab_project"\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PLATFORM_STEP_MODULES", "tests.imaging")
    defs = dg.load_from_defs_folder(path_within_project=tmp_path)
    keys = {k.to_user_string() for a in defs.assets or [] for k in a.keys}
    assert keys == {"dg_blobs/blobs", "dg_blobs/objects", "dg_blobs/wells"}
    assert [j.name for j in defs.jobs or []] == ["dg_blobs"]
