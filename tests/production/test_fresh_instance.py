"""A fresh Postgres instance served by the daemon, and no command run before: the graph alone
must classify. Two FASTAs dropped into the ECOD inbox at once become classified batches (their
runs build the location's reference library once, between them), and a batch registered
with ``ecod submit`` (register only) and launched from the UI's Materialize dialog, in a real
browser, succeeds."""

import re
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from playwright.sync_api import expect

from ecod_assets.cli import main as ecod
from ecod_assets.demo import demo_batch
from tests.production.conftest import CHROMIUM, browser_page, wait_for_runs, wait_until

DEPLOYED_LOCATIONS = ("ecod",)  # the deployment serves only this location (conftest)
expect.set_options(timeout=180_000)


def _write_batch(folder: Path, name: str, chains: int, seed: int) -> Path:
    fasta, truth = demo_batch(chains, seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.truth.tsv").write_text(truth.to_csv(sep="\t", index=False))
    path = folder / f"{name}.fasta"
    path.write_text(fasta)
    return path


def _sensor_runs(inst: dg.DagsterInstance) -> list[dg.RunRecord]:
    return list(
        inst.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": "ecod_inbox_sensor"}))
    )


def _accuracy(inst: dg.DagsterInstance, batch: str) -> dict:
    records = inst.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("classification"), asset_partitions=[batch]),
        limit=1,
    ).records
    assert records, f"batch {batch} was not classified"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is installed by run.sh")
def test_inbox_and_ui_classify_on_a_fresh_instance_with_no_cli_run(production) -> None:
    root, env = production
    inst = dg.DagsterInstance.get()
    assert type(inst.run_storage).__name__ == "PostgresRunStorage"
    reference = dg.AssetKey("reference_library")
    assert inst.get_latest_materialization_event(reference) is None  # nothing built yet

    # two FASTAs land at once: two sensor runs, side by side (the run queue allows two)
    stage, inbox = root / "stage", root / "data" / "ecod" / "inbox"
    inbox.mkdir(parents=True)
    for name, seed in (("first", 31), ("second", 32)):
        fasta = _write_batch(stage, name, 6, seed)
        fasta.rename(inbox / fasta.name)
    wait_until(lambda: len(_sensor_runs(inst)) == 2, 240, "the inbox sensor's two runs")
    runs = wait_for_runs(inst, [r.dagster_run.run_id for r in _sensor_runs(inst)], 1200)
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in runs) == ["first", "second"]
    assert {r.dagster_run.job_name for r in runs} == {"ecod_full"}
    for batch in ("first", "second"):
        assert _accuracy(inst, batch)["domains"] > 0

    # the library was built once, by one of the two runs, and recorded as reference_library
    built = inst.fetch_materializations(reference, limit=10).records
    assert len(built) == 1 and built[0].run_id in {r.dagster_run.run_id for r in runs}
    metadata = built[0].asset_materialization.metadata
    assert metadata["source"].value == "demo" and metadata["built_by_batch_run"].value is True
    folders = (root / "data" / "ecod" / "reference").iterdir()
    libraries = [p.name for p in folders if re.fullmatch(r"[0-9a-f]{32}", p.name)]
    assert libraries == [Path(metadata["library"].value).name]  # one library, complete
    assert (Path(metadata["library"].value) / "complete").exists()

    # a batch registered only (no run), then launched from the UI's Materialize dialog
    fasta = _write_batch(stage, "from_ui", 6, 33)
    assert ecod(["submit", str(fasta)]) == 0
    assert not inst.get_run_records(dg.RunsFilter(tags={"dagster/partition": "from_ui"}))
    url = f"http://127.0.0.1:{env['DAGSTER_WEB_PORT']}"
    with browser_page() as page:
        page.goto(f"{url}/locations/ecod/asset-groups/ecod")
        materialize = page.get_by_role("button").filter(has_text=re.compile(r"^Materialize all"))
        materialize.click()
        # no "upstream not materialized" warning: the batch runs recorded reference_library
        dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
        expect(dialog).to_be_visible()
        dialog.get_by_text("Select a partition or create one").click()
        page.keyboard.type("from_ui")
        page.get_by_role("menuitem").filter(has_text=re.compile(r"^from_ui")).first.click()
        expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
        dialog.get_by_role("button", name="Launch 1 run").click()
        expect(page.get_by_text(re.compile(r"Launched run"))).to_be_visible()
    wait_until(
        lambda: inst.get_run_records(dg.RunsFilter(tags={"dagster/partition": "from_ui"})),
        120,
        "the run the UI launched",
    )
    [ui_run] = inst.get_run_records(dg.RunsFilter(tags={"dagster/partition": "from_ui"}))
    assert ui_run.dagster_run.tags.get("dagster/from_ui") == "true"
    wait_for_runs(inst, [ui_run.dagster_run.run_id], 1200)
    classified = _accuracy(inst, "from_ui")
    assert classified["boundary_accuracy"] >= 0.8  # its truth came with the submitted FASTA
    table = pd.read_parquet(root / "data" / "ecod" / "classification" / "from_ui.parquet")
    assert len(table) == classified["domains"] > 0
    assert len(inst.fetch_materializations(reference, limit=10).records) == 1  # not rebuilt
