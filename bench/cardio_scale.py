"""Benchmark: one partition per study at hospital scale. N cheap ECG-only study folders (one
real-length 10-s 12-lead WFDB record, hard-linked into each folder, with the completion
marker) in the cardio inbox of a fresh SQLite instance, then:

    .venv/bin/python bench/cardio_scale.py [--studies 10000] [--repeats 2]

1. the inbox sensor, evaluated as the daemon does (same function, same instance): the tick
   that registers every study (partitions added, one run request each; the runs are not
   launched) and a steady tick after it (nothing new), with the size of its cursor;
2. every study's ``study_receipt`` reported materialized (runless events, as if each study
   had been received), then ``cardio status --json`` over every study and ``cardio status
   --study S``, through the real CLI;
3. the web UI (webserver and daemon on the instance) in Debian chromium: the partitions
   page of ``study_receipt`` until it shows every partition materialized (first load, then
   warm).
"""

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.production import CHROMIUM, Deployment  # noqa: E402
from cardio_assets.demo import make_study  # noqa: E402
from platform_core.datastore import DataStore  # noqa: E402
from platform_core.inbox import MARKER  # noqa: E402


def fill_inbox(inbox: Path, studies: int) -> list[str]:
    """``studies`` folders, each with hard links to one ECG record and a marker."""
    template = inbox.parent / "template"
    make_study(template, echo=False, seed=0)
    names = [f"scale-{i:06d}" for i in range(studies)]
    for name in names:
        folder = inbox / name
        folder.mkdir(parents=True)
        for file in template.iterdir():
            os.link(file, folder / file.name)
        (folder / MARKER).touch()
    return names


def sensor_ticks(inst: dg.DagsterInstance) -> list[tuple[float, int, int]]:
    """(seconds, run requests, cursor bytes) of two ticks of the inbox sensor; the first
    tick's partitions are added to the instance as the daemon does."""
    from cardio_assets.definitions import defs
    from cardio_assets.location import LOCATION

    sensor = defs.resolve_sensor_def("study_inbox_sensor")
    resources = {"storage": LOCATION.store()}
    cursor, ticks = None, []
    for _ in range(2):
        started = time.perf_counter()
        with dg.build_sensor_context(instance=inst, cursor=cursor, resources=resources) as context:
            result = sensor(context)
        for request in result.dynamic_partitions_requests or []:
            inst.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        seconds = time.perf_counter() - started
        cursor = result.cursor
        ticks.append((seconds, len(result.run_requests or []), len(cursor or "")))
    return ticks


def cli_seconds(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cardio_assets.cli", *args],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def partitions_page(deployment: Deployment, studies: int, repeats: int) -> list[float]:
    """Seconds from navigation to "Materialized (N)" on study_receipt's partitions page."""
    from playwright.sync_api import expect, sync_playwright

    timings = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(300_000)
        page.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
        for _ in range(repeats):
            page.goto("about:blank")
            started = time.monotonic()
            page.goto(f"{deployment.url}/assets/study_receipt?view=partitions", wait_until="commit")
            expect(page.get_by_text(f"Materialized ({studies})")).to_be_visible(timeout=600_000)
            timings.append(time.monotonic() - started)
        shots = ROOT / "test-artifacts" / "bench"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=shots / f"cardio_partitions_{studies}.png")
        browser.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)  # not a line per registered study
    with tempfile.TemporaryDirectory() as tmp:
        deployment = Deployment("sqlite", Path(tmp), None, {"cardio": "cardio_assets.definitions"})
        env = {**deployment.env, "CARDIO_INBOX_SETTLE_SECONDS": "0"}
        os.environ.update(env)
        inbox = DataStore(root=str(deployment.data), location="cardio").inbox()
        started = time.perf_counter()
        names = fill_inbox(inbox, args.studies)
        print(f"{args.studies} study folders in {time.perf_counter() - started:.1f} s")
        with dg.DagsterInstance.from_config(str(deployment.home)) as inst:
            for number, (seconds, requests, cursor) in enumerate(sensor_ticks(inst), 1):
                print(
                    f"inbox sensor tick {number}: {seconds:.2f} s, {requests} run requests, "
                    f"cursor {cursor / 1024:.0f} KiB"
                )
            assert len(inst.get_dynamic_partitions("cardio_study")) == args.studies
            started = time.perf_counter()
            for name in names:
                inst.report_runless_asset_event(
                    dg.AssetMaterialization("study_receipt", partition=name)
                )
            print(f"{args.studies} receipts reported in {time.perf_counter() - started:.1f} s")
        print(f"cardio status --json, every study: {cli_seconds(env, 'status', '--json'):.1f} s")
        one = cli_seconds(env, "status", "--study", names[len(names) // 2], "--json")
        print(f"cardio status --study S: {one:.1f} s")
        with deployment:
            timings = partitions_page(deployment, args.studies, args.repeats)
        print("study_receipt partitions page: " + json.dumps([round(t, 1) for t in timings]) + " s")


if __name__ == "__main__":
    main()
