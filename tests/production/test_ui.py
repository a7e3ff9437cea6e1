"""The web UI in a real browser (Debian chromium, driven by Playwright): every code location
loaded, each asset graph drawn, a partition materialized from the UI, a CLI run opened, a
user's saved omics workflow shown after a Reload.
Screenshots go to test-artifacts/ui/."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml
from playwright.sync_api import expect

from cardio_assets.demo import make_study
from imaging_assets.cli import main as hcs
from tests.production.conftest import CHROMIUM, ROOT, browser_page, wait_for_runs, wait_until

# Playwright's expect() waits 5 s by default; a loaded 2-core machine serves the UI's first
# pages (and loads three code locations) far slower. Conditions, so no cost when it is quick.
expect.set_options(timeout=180_000)
ARTIFACTS = ROOT / "test-artifacts" / "ui"
UI_PARTITION = ("economic_data", "2018-06-01")
# a week of data: what the daemon does with a backfill, without years of warm-up on Postgres
BACKFILL_ARGS = ["run", "--pipeline", "data", "--start", "2018-06-04", "--end", "2018-06-08"]


def _groups() -> dict[str, list[str]]:
    """location -> its asset groups, from workspace.yaml and each location's definitions."""
    import importlib

    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    groups = {}
    for entry in workspace["load_from"]:
        module = importlib.import_module(entry["python_module"]["module_name"])
        graph = module.defs.resolve_asset_graph()
        names = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
        groups[entry["python_module"]["location_name"]] = sorted(names)
    return groups


def _wait_for_run(inst: dg.DagsterInstance, tags: dict[str, str], timeout: float) -> dg.RunRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = inst.get_run_records(dg.RunsFilter(tags=tags), limit=1)
        if records and records[0].dagster_run.status in (
            dg.DagsterRunStatus.SUCCESS,
            dg.DagsterRunStatus.FAILURE,
        ):
            return records[0]
        time.sleep(2)
    raise AssertionError(f"no finished run with {tags} within {timeout}s")


def _cli(env: dict[str, str], module: str, *args: str) -> str:
    """A location CLI's stdout (it must succeed)."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is installed by run.sh")
def test_ui_shows_locations_graphs_and_runs(production) -> None:
    root, env = production
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{env['DAGSTER_WEB_PORT']}"
    inst = dg.DagsterInstance.get()
    plate = root / "plates"
    assert (
        hcs(["demo", "--out", str(plate), "--name", "ui_plate", "--wells", "1", "--tile", "256"])
        == 0
    )
    # a daemon serves this instance: the command's run goes through it (a backfill's run)
    assert hcs(["run", str(plate / "ui_plate"), "--workers", "1"]) == 0
    partition = dg.RunsFilter(tags={"dagster/partition": "ui_plate"})
    cli_run = inst.get_run_records(partition, limit=1)[0].dagster_run
    assert cli_run.tags["platform/cli"] == "hcs run" and "dagster/backfill" in cli_run.tags
    groups = _groups()

    with browser_page() as page:
        page.goto(f"{url}/locations")
        expect(page.get_by_text(f"{len(groups)} code locations")).to_be_visible()
        expect(page.get_by_text("Loaded", exact=True)).to_have_count(len(groups))
        page.screenshot(path=ARTIFACTS / "locations.png")

        for location, names in groups.items():
            for group in names:
                page.goto(f"{url}/locations/{location}/asset-groups/{group}")
                names = _assets_of(location, group)
                shortest = min(names, key=len)  # long names are shortened in the graph
                expect(page.get_by_text(shortest, exact=True).first).to_be_visible()
                page.wait_for_load_state("networkidle")
                text = page.inner_text("body")
                # every node is drawn (long names are shortened in the middle: "hhse…_registration")
                missing = [
                    n for n in names if n not in text and not (n[:4] in text and n[-10:] in text)
                ]
                assert not missing, f"{location}/{group}: nodes not drawn: {missing}"
                page.screenshot(path=ARTIFACTS / f"graph_{location}_{group}.png")

        asset, partition = UI_PARTITION
        page.goto(f"{url}/assets/{asset}")
        page.get_by_role("button", name="Materialize…").click()
        dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
        expect(dialog).to_be_visible()
        # the dialog first offers the last 90 days; the partition is older
        dialog.get_by_role("button", name="Show all partitions").click()
        expect(dialog.get_by_text("All time")).to_be_visible()
        box = dialog.locator("input[type=text]").first
        box.fill(partition)
        box.press("Enter")
        expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
        page.screenshot(path=ARTIFACTS / "launch_dialog.png")
        dialog.get_by_role("button", name=re.compile(r"^Launch 1 run")).click()
        expect(page.get_by_text(re.compile(r"Launched run"))).to_be_visible()

        ui_run = _wait_for_run(
            inst, {"dagster/from_ui": "true", "dagster/partition": partition}, 600
        )
        wait_for_runs(inst, [ui_run.dagster_run.run_id], 0)  # succeeded, or says why not
        materialized = inst.get_materialized_partitions(dg.AssetKey(asset))
        assert partition in materialized

        page.goto(f"{url}/runs/{cli_run.run_id}")
        expect(page.get_by_text(cli_run.run_id[:8]).first).to_be_visible()
        expect(page.get_by_text("Success", exact=True).first).to_be_visible()
        expect(page.get_by_text("Loading run logs…")).to_have_count(0)
        expect(page.get_by_text("stitched_plate").first).to_be_visible()
        expect(page.get_by_text("RUN_SUCCESS", exact=True)).to_be_visible()
        page.screenshot(path=ARTIFACTS / "cli_run.png")

        # with a daemon serving the instance, `cardio run A B`, `omics run` and `tetra run`
        # over a range (as `tetra backfill`) each submit a Dagster backfill (tetra's last: the
        # daemon works on all three in the same loops); the Backfills page lists them
        folders = [root / "studies" / f"ui-study-{i}" for i in range(2)]
        for i, folder in enumerate(folders):
            make_study(folder, echo=False, seed=40 + i)
        cardio = _cli(env, "cardio_assets.cli", "run", *map(str, folders), "--no-wait")
        cardio_backfill = cardio.strip()  # --no-wait prints what it submitted
        omics = json.loads(
            _cli(env, "omics_assets.cli", "run", "--workflow", "gwas", "--no-wait", "--json")
        )
        (omics_key,), omics_backfill = omics["keys"], omics["backfill"]
        tetra = _cli(env, "tetra_assets.cli", *BACKFILL_ARGS, "--json", "--quiet")
        report = json.loads(tetra[tetra.index("{") :])
        assert report["status"] == "COMPLETED_SUCCESS"  # its runs made every partition
        done = ("COMPLETED_SUCCESS", "COMPLETED")  # the daemon says so on its next loop
        wait_until(lambda: inst.get_backfill(report["backfill"]).status.value in done, 120, "it")
        backfill = inst.get_backfill(report["backfill"])
        runs = inst.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
        assert len(runs) == 1  # the data assets' single-run backfill policy
        assert runs[0].dagster_run.status == dg.DagsterRunStatus.SUCCESS
        week = {"2018-06-04", "2018-06-05", "2018-06-06", "2018-06-07", "2018-06-08"}
        assert week <= inst.get_materialized_partitions(dg.AssetKey("market_events"))
        page.goto(f"{url}/overview/backfills")
        for listed in (backfill.backfill_id, cardio_backfill):
            expect(page.get_by_text(listed).first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "backfills.png")

        # one run per study partition; the UI shows the ECG strip of a study as an image
        for i in range(2):
            tags = {"dagster/backfill": cardio_backfill, "dagster/partition": f"ui-study-{i}"}
            assert _wait_for_run(inst, tags, 600).dagster_run.status == dg.DagsterRunStatus.SUCCESS
        page.goto(f"{url}/assets/ecg_features?partition=ui-study-1")
        page.get_by_text("[Show Markdown]").first.click()
        strip = page.get_by_role("dialog").locator("img[src^='data:image/png']")
        expect(strip).to_be_visible()
        assert strip.evaluate("image => image.naturalWidth") > 300  # a decoded PNG, not a stub
        page.screenshot(path=ARTIFACTS / "cardio_ecg_strip.png")

        # the omics workflow (a component) submitted above as a backfill, run by the daemon's
        # run worker; its report's Manhattan and QQ plots open in the UI
        tags = {"dagster/backfill": omics_backfill, "dagster/partition": omics_key}
        assert _wait_for_run(inst, tags, 600).dagster_run.status == dg.DagsterRunStatus.SUCCESS
        page.goto(f"{url}/assets/gwas/report?partition={omics_key}")
        page.get_by_text("[Show Markdown]").first.click()
        plots = page.get_by_role("dialog").locator("img[src^='data:image/png']")
        expect(plots).to_have_count(2)
        assert plots.first.evaluate("image => image.naturalWidth") > 300
        page.screenshot(path=ARTIFACTS / "omics_gwas_report.png")

        # a workflow of the user's own, saved into the operator's workflows folder: the UI
        # shows its assets once the locations reload (the Reload all button), no restart
        study = root / "ui_study.yaml"
        study.write_text("name: ui_study\ndomain: simulation\n")
        _cli(env, "omics_assets.cli", "submit", "--config", str(study), "--save")
        page.goto(f"{url}/locations")
        page.get_by_role("button", name="Reload all").click()

        def shows_the_saved_workflow() -> bool:
            page.goto(f"{url}/locations/omics/asset-groups/ui_study")
            page.wait_for_load_state("networkidle")
            return page.get_by_text("tree_sequence", exact=True).count() > 0

        wait_until(shows_the_saved_workflow, 180, "the saved workflow's assets in the UI", 2)
        page.screenshot(path=ARTIFACTS / "omics_user_workflow.png")


def _assets_of(location: str, group: str) -> list[str]:
    import importlib

    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    module_name = next(
        e["python_module"]["module_name"]
        for e in workspace["load_from"]
        if e["python_module"]["location_name"] == location
    )
    graph = importlib.import_module(module_name).defs.resolve_asset_graph()
    # a node shows the last part of its key (omics: gwas/qc -> "qc")
    return sorted(
        k.path[-1] for k in graph.get_all_asset_keys() if graph.get(k).group_name == group
    )
