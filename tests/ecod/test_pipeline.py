"""The ECOD pipeline end to end through the ``ecod`` CLI, with the real tools."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ecod_assets.cli import main
from ecod_assets.inputs import batch_fasta
from ecod_assets.location import LOCATION
from ecod_assets.resources import EcodTools, OrchestrationConfig
from ecod_assets.science.accuracy import score
from ecod_assets.science.classify import EXPORT_COLUMNS
from ecod_assets.science.evidence import EVIDENCE_TYPES
from tests.ecod.support import write_demo_batch
from tests.support import data_root, latest_metadata, store

pytestmark = pytest.mark.slow  # real tools or a year of data: minutes (README: test tiers)

TOOL_STAGES = ["blast_chain_hits", "blast_domain_hits", "hhsearch_profiles", "hhsearch_hits"]


@pytest.fixture(scope="module")
def full_batch(ecod_home: Path) -> str:
    """A 40-chain demo batch submitted and run in FULL mode."""
    fasta = write_demo_batch(ecod_home, "demo40", 40, seed=3)
    assert main(["submit", str(fasta)]) == 0
    assert main(["run", "--batch", "demo40", "--mode", "full"]) == 0
    return "demo40"


def test_full_run_classifies_against_ground_truth(
    full_batch: str, ecod_instance, tmp_path: Path
) -> None:
    meta = latest_metadata(ecod_instance, "classification", full_batch)
    assert meta["boundary_accuracy"] >= 0.95 and meta["f_group_accuracy"] >= 0.97
    # The exported table is what the accuracy says: recompute it from the TSV and the truth.
    out = tmp_path / "domains.tsv"
    assert main(["export", "--batch", full_batch, "--out", str(out)]) == 0
    exported = pd.read_csv(out, sep="\t")
    assert list(exported.columns) == EXPORT_COLUMNS
    ranges = exported["range"].str.split("-", expand=True).astype(int)
    predicted = exported.assign(start=ranges[0], end=ranges[1])
    truth = pd.read_csv(data_root() / "ecod" / "inputs" / full_batch / "truth.tsv", sep="\t")
    accuracy = score(predicted, truth)
    assert accuracy.boundary == pytest.approx(meta["boundary_accuracy"], abs=1e-4)
    assert accuracy.found == meta["domains_found"] > 0
    assert set(exported["evidence_type"]) <= set(EVIDENCE_TYPES)


def test_full_run_records_stage_items_and_hhsearch_only_below_coverage(
    full_batch: str, ecod_instance
) -> None:
    blast = latest_metadata(ecod_instance, "blast_domain_hits", full_batch)
    assert (blast["items_total"], blast["items_failed"]) == (40, 0)
    profiles = latest_metadata(ecod_instance, "hhsearch_profiles", full_batch)
    assert profiles["chains_needing_hhsearch"] + profiles["chains_covered_by_blast"] == 40
    assert 0 < profiles["chains_needing_hhsearch"] < 40
    hits = latest_metadata(ecod_instance, "hhsearch_hits", full_batch)
    assert hits["items_total"] == profiles["chains_needing_hhsearch"]
    assert hits["tool_cpu_seconds"] > 0
    hmmscan = latest_metadata(ecod_instance, "hmmscan_hits", full_batch)
    assert hmmscan["items_total"] == profiles["chains_needing_hhsearch"]
    assert hmmscan["db_profiles"] == 16_000 and "3." in hmmscan["hmmscan_version"]
    summary = latest_metadata(ecod_instance, "domain_summary", full_batch)
    assert summary["profile_evidence_used"] is True and summary["evidence_hhsearch"] > 0


def test_status_reports_every_stage_completed(
    full_batch: str, capsys: pytest.CaptureFixture
) -> None:
    capsys.readouterr()
    assert main(["status", "--batch", full_batch, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["batch"] == full_batch and status["active_run"] is None
    assert status["last_run"]["status"] == "SUCCESS"
    for stage, info in status["stages"].items():
        assert info["completed"] and not info["failed"] and not info["in_progress"], stage
    assert status["stages"]["blast_chain_hits"]["stats"]["items_processed"] == 40


def test_rerun_with_nothing_changed_runs_no_tool(full_batch: str, ecod_instance) -> None:
    before = {
        s: latest_metadata(ecod_instance, s, full_batch)["input_fingerprint"] for s in TOOL_STAGES
    }
    assert main(["run", "--batch", full_batch]) == 0
    for stage in TOOL_STAGES:
        meta = latest_metadata(ecod_instance, stage, full_batch)
        assert meta["reused"] is True and meta["tool_cpu_seconds"] == 0, stage
        assert meta["input_fingerprint"] == before[stage]


def test_force_restart_runs_the_tools_again(full_batch: str, ecod_instance) -> None:
    assert main(["run", "--batch", full_batch, "--force-restart"]) == 0
    meta = latest_metadata(ecod_instance, "blast_chain_hits", full_batch)
    assert meta["reused"] is False and meta["tool_cpu_seconds"] > 0


def test_blast_only_mode_uses_no_hhsearch_evidence(ecod_home: Path, ecod_instance) -> None:
    fasta = write_demo_batch(ecod_home, "blastonly", 20, seed=4)
    assert main(["submit", str(fasta)]) == 0
    assert main(["run", "--batch", "blastonly", "--mode", "blast-only"]) == 0
    summary = latest_metadata(ecod_instance, "domain_summary", "blastonly")
    assert summary["profile_evidence_used"] is False and "evidence_hhsearch" not in summary
    assert summary["evidence_domain_blast"] > 0
    materialized = ecod_instance.get_materialized_partitions(dg.AssetKey("hhsearch_hits"))
    assert "blastonly" not in materialized
    assert latest_metadata(ecod_instance, "classification", "blastonly")["domains"] > 0
    # analysis-only then works from the stored BLAST evidence
    assert main(["run", "--batch", "blastonly", "--mode", "analysis-only"]) == 0


def test_analysis_only_without_evidence_fails_clearly(
    ecod_home: Path, capsys: pytest.CaptureFixture
) -> None:
    fasta = write_demo_batch(ecod_home, "noevidence", 5, seed=6)
    assert main(["submit", str(fasta)]) == 0
    capsys.readouterr()
    assert main(["run", "--batch", "noevidence", "--mode", "analysis-only"]) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "has not been materialized" in err and "noevidence" in err


def run_with_fake_tool(
    instance: dg.DagsterInstance,
    folder: Path,
    tool: str,
    script: str,
    settings: OrchestrationConfig,
    job: str,
    batch: str,
) -> tuple[dg.ExecuteInProcessResult, list[dg.DagsterEvent]]:
    """A failing run of ``job`` on ``batch`` with ``tool`` replaced by a shell ``script``:
    the result and its step failures."""
    fake = folder / tool
    fake.write_text(script)
    fake.chmod(0o755)
    result = (
        LOCATION.definitions(orchestration=settings)
        .resolve_job_def(job)
        .execute_in_process(
            instance=instance,
            partition_key=batch,
            resources={"ecod_tools": EcodTools(**{tool: str(fake)})},
            raise_on_error=False,
        )
    )
    assert not result.success
    return result, [e for e in result.all_events if e.is_step_failure]


def test_crashing_tool_fails_the_stage_with_its_stderr_then_resume_finishes(
    ecod_home: Path, ecod_instance, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    fasta = write_demo_batch(ecod_home, "crashy", 12, seed=8)
    assert main(["submit", str(fasta)]) == 0
    done = write_demo_batch(ecod_home, "untouched", 6, seed=9)
    assert main(["submit", str(done)]) == 0
    assert main(["run", "--batch", "untouched"]) == 0
    kept = (data_root() / "ecod" / "classification" / "untouched.parquet").read_bytes()

    # every chain goes to HHsearch (threshold above any coverage), and hhsearch crashes
    crash = "#!/bin/sh\necho 'hhsearch: segmentation fault in HMM load' >&2\nexit 139\n"
    settings = OrchestrationConfig(
        tool_retries=1, retry_backoff_seconds=0.01, hhsearch_coverage_threshold=1.01
    )
    result, failures = run_with_fake_tool(
        ecod_instance, tmp_path, "hhsearch", crash, settings, "ecod_full", "crashy"
    )
    failure = failures[0]
    assert failure.step_key == "hhsearch_hits"
    message = failure.step_failure_data.error.message
    assert "chains failed" in message and "segmentation fault in HMM load" in message
    assert "exited with status 139" in message and "after 2 attempt(s)" in message
    # nothing downstream was written for the failed batch; the earlier batch is intact
    assert "crashy" not in ecod_instance.get_materialized_partitions(dg.AssetKey("classification"))
    assert (data_root() / "ecod" / "classification" / "untouched.parquet").read_bytes() == kept

    capsys.readouterr()
    assert main(["resume", "--batch", "crashy"]) == 0
    resumed = ecod_instance.get_runs(dg.RunsFilter(tags={"dagster/partition": "crashy"}), limit=1)[
        0
    ]
    assert resumed.parent_run_id == result.run_id
    steps = {s.step_key for s in ecod_instance.get_run_step_stats(resumed.run_id)}
    assert "hhsearch_hits" in steps and "blast_hits" not in steps
    assert latest_metadata(ecod_instance, "classification", "crashy")["boundary_accuracy"] >= 0.9
    assert batch_fasta(store("ecod"), "crashy").exists()


def test_an_unreadable_hmmscan_table_fails_its_stage_saying_where(
    ecod_home: Path, ecod_instance, tmp_path: Path
) -> None:
    fasta = write_demo_batch(ecod_home, "badtable", 6, seed=17)
    assert main(["submit", str(fasta)]) == 0
    truncated = (  # exits 0 but writes a truncated domain table
        '#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = --domtblout ] && '
        'echo "fn3 - 86 chain_0001" > "$2"; shift; done\nexit 0\n'
    )
    settings = OrchestrationConfig(hhsearch_coverage_threshold=1.01)  # every chain profiled
    _, failures = run_with_fake_tool(
        ecod_instance, tmp_path, "hmmscan", truncated, settings, "ecod_full", "badtable"
    )
    failure = failures[0]
    assert failure.step_key == "hmmscan_hits"
    message = failure.step_failure_data.error.message
    assert "6 of 6 chains failed" in message and "hmmscan: domtblout line 1: 4 columns" in message
    for asset in ("hmmscan_hits", "remainder_hits", "domain_summary", "classification"):
        assert "badtable" not in ecod_instance.get_materialized_partitions(dg.AssetKey(asset))


def test_hanging_tool_is_killed_retried_and_fails_the_stage(
    ecod_home: Path, ecod_instance, tmp_path: Path
) -> None:
    fasta = write_demo_batch(ecod_home, "hangs", 4, seed=15)
    assert main(["submit", str(fasta)]) == 0
    hang = "#!/bin/sh\necho 'blastp: waiting for a lock' >&2\nexec sleep 60\n"
    settings = OrchestrationConfig(stage_timeout=1, tool_retries=1, retry_backoff_seconds=0.01)
    _, failures = run_with_fake_tool(
        ecod_instance, tmp_path, "blastp", hang, settings, "ecod_blast_only", "hangs"
    )
    assert [e.step_key for e in failures] == ["blast_hits"]  # chain and domain BLAST: one step
    message = failures[0].step_failure_data.error.message
    assert "timed out after 1 s" in message and "after 2 attempt(s)" in message
    assert "blastp: waiting for a lock" in message
    for asset in ("blast_chain_hits", "blast_domain_hits"):
        assert "hangs" not in ecod_instance.get_materialized_partitions(dg.AssetKey(asset))


def test_hhblits_query_profiles(ecod_home: Path, ecod_instance) -> None:
    fasta = write_demo_batch(ecod_home, "viahhblits", 8, seed=16)
    assert main(["submit", str(fasta)]) == 0
    settings = OrchestrationConfig(query_profile="hhblits", hhsearch_coverage_threshold=1.01)
    job = LOCATION.definitions(orchestration=settings).resolve_job_def("ecod_full")
    result = job.execute_in_process(instance=ecod_instance, partition_key="viahhblits")
    assert result.success
    profiles = latest_metadata(ecod_instance, "hhsearch_profiles", "viahhblits")
    assert profiles["profile_source"] == "hhblits" and profiles["items_processed"] == 8
    assert profiles["tool_cpu_seconds"] > 0
    stored = pd.read_parquet(data_root() / "ecod" / "hhsearch_profiles" / "viahhblits.parquet")
    # hhblits found family members for the chains that have domains: more than the query row
    assert (stored["n_sequences"] > 1).sum() >= 5
    meta = latest_metadata(ecod_instance, "classification", "viahhblits")
    assert meta["boundary_accuracy"] >= 0.9 and meta["f_group_accuracy"] >= 0.97


def test_a_user_reference_library_is_used_by_later_runs(
    ecod_home: Path, ecod_instance, tmp_path: Path
) -> None:
    demo = json.loads((data_root() / "ecod" / "reference_library" / "__all__.json").read_text())
    lines = Path(demo["domains_path"]).read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    kept = [line for line in lines if not line.startswith("#") and "\t1." in line]  # X-group 1
    domains = tmp_path / "ecod.subset.domains.txt"
    domains.write_text("\n".join(header + kept) + "\n")
    try:
        assert main(["reference", "--domains", str(domains), "--fasta", demo["fasta_path"]]) == 0
        library = json.loads(
            (data_root() / "ecod" / "reference_library" / "__all__.json").read_text()
        )
        assert library["source"] == "recorded" and library["domains"] == len(kept)
        assert library["root"] != demo["root"] and Path(demo["root"], "complete").exists()
        fasta = write_demo_batch(ecod_home, "subsetlib", 20, seed=17)
        assert main(["submit", str(fasta)]) == 0
        assert main(["run", "--batch", "subsetlib"]) == 0
        table = pd.read_parquet(data_root() / "ecod" / "classification" / "subsetlib.parquet")
        assert len(table) > 0 and table["f_id"].str.startswith("1.").all()
    finally:
        assert main(["reference"]) == 0  # back to the demo library for the other tests
