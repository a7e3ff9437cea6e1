"""The omics location end to end through the ``omics`` CLI: the step standard on every
materialization, reuse, run-time skips, the simulation -> gwas round trip (inputs:), the config
layers, export, resume and the config inbox."""

import json
import os
import re
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from omics_assets.cli import main
from omics_assets.components.workflow import workflows_of
from omics_assets.definitions import defs
from omics_assets.workflows import workflow
from platform_core import cli
from tests.support import last_partition_run, store

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def materialization(inst: dg.DagsterInstance, asset: str, run: str) -> dict | None:
    """The metadata of the latest materialization of ``<workflow>/<step>`` for one run."""
    records = inst.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey.from_user_string(asset), asset_partitions=[run]
        ),
        limit=1,
    ).records
    if not records:
        return None
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def check_evaluation(inst: dg.DagsterInstance, asset: str, name: str) -> Any:
    """The latest evaluation of the check ``name`` of ``<workflow>/<step>``."""
    key = dg.AssetCheckKey(dg.AssetKey.from_user_string(asset), name)
    record = inst.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    return record.event.dagster_event.event_specific_data


def run_key(capsys: pytest.CaptureFixture[str]) -> str:
    """The run key the last ``omics run`` printed ("workflow W run KEY: succeeded ...")."""
    out = capsys.readouterr().out
    return next(m[1] for m in re.finditer(r"^workflow \S+ run (\S+): ", out, re.MULTILINE))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_gwas_demo_records_the_step_standard_and_reuses_unchanged_steps(
    omics_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--workflow", "gwas", "--quiet"]) == 0
    key = run_key(capsys)
    inst = cli.instance()
    steps = ["genotypes", "qc", "pca", "association", "hits", "report"]
    first = {s: materialization(inst, f"gwas/{s}", key) for s in steps}
    for step, meta in first.items():
        result = meta["step_result"]
        assert result["status"] == "completed", step
        assert result["errors"] == [] and isinstance(result["warnings"], list)
        assert result["output"]["files_created"], step
        assert result["metadata"]["execution_time"] > 0 and result["metadata"]["memory_used"] > 0
        assert meta["config"]["name"] == "gwas" and meta["config"]["threads"] == 2
        assert Path(meta["output_dir"], "result.json").is_file()
    assert "PLINK v2" in first["qc"]["tool_versions"]["plink2"]
    assert first["association"]["metric/variants_tested"] > 8000
    assert first["hits"]["metric/top_chrom"] == "17"
    assert first["report"]["report"].count("data:image/png;base64,") == 2  # Manhattan, QQ
    # related mice: the shipped workflow's LOCO mixed model; the inflation check is its own
    assert first["association"]["metric/model"] == "loco"
    lam = first["association"]["metric/lambda_gc"]
    inflation = check_evaluation(inst, "gwas/association", "genomic_inflation")
    assert inflation.passed == (0.9 <= lam <= 1.1)
    assert inflation.severity == dg.AssetCheckSeverity.WARN
    assert inflation.description.startswith(f"lambda GC {lam:.3f} (LOCO LMM)")
    # the same config again: every step reused, nothing recomputed
    assert main(["run", "--workflow", "gwas", "--quiet"]) == 0
    assert run_key(capsys) == key
    again = {s: materialization(inst, f"gwas/{s}", key) for s in steps}
    assert {m["status"] for m in again.values()} == {"reused"}
    assert again["association"]["input_fingerprint"] == first["association"]["input_fingerprint"]
    # a changed hits threshold: a new run; the steps before hits are reused
    assert (
        main(
            [
                "run",
                "--workflow",
                "gwas",
                "--quiet",
                "--param",
                "steps.hits.config.p_threshold=1e-20",
            ]
        )
        == 0
    )
    changed = run_key(capsys)
    assert changed != key
    status = {s: materialization(inst, f"gwas/{s}", changed)["status"] for s in steps}
    assert status == {
        "genotypes": "reused",
        "qc": "reused",
        "pca": "reused",
        "association": "reused",
        "hits": "completed",
        "report": "completed",
    }
    assert materialization(inst, "gwas/hits", changed)["metric/loci"] < first["hits"]["metric/loci"]


def test_export_writes_the_association_table(
    omics_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["run", "--workflow", "gwas", "--quiet"]) == 0
    out = tmp_path / "association.tsv"
    assert main(["export", "--workflow", "gwas", "--step", "association", "--out", str(out)]) == 0
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == ["snp", "chrom", "pos", "beta", "p"]
    assert len(table) > 8000 and table["p"].between(0, 1).all()
    assert table.loc[table["p"].idxmin(), "chrom"] == 17


def test_a_run_time_skip_succeeds_and_skips_what_follows(
    omics_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """One lane per condition: DESeq2 cannot estimate dispersions, so the step skips with a
    WARN check; the report after it does not run; the run succeeds."""
    sheet = write(tmp_path / "two.tsv", "sample\tcondition\nlane1\tmock\nlane5\tdht\n")
    config = write(
        tmp_path / "two_lanes.yaml",
        f"name: rnaseq_counts\ndomain_specific:\n  samplesheet: {sheet}\n",
    )
    assert main(["run", "--config", str(config), "--quiet"]) == 0
    output = capsys.readouterr().out
    key = re.search(r"^workflow rnaseq_counts run (\S+): ", output, re.MULTILINE)[1]
    assert "skipped rnaseq_counts/differential_expression: DESeq2 needs two conditions" in output
    inst = cli.instance()
    assert materialization(inst, "rnaseq_counts/samplesheet", key) is not None
    assert materialization(inst, "rnaseq_counts/differential_expression", key) is None
    assert materialization(inst, "rnaseq_counts/report", key) is None
    evaluation = check_evaluation(inst, "rnaseq_counts/differential_expression", "step_status")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["status"].value == "skipped"
    # a step disabled by a run's config is skipped the same way
    assert (
        main(["run", "--workflow", "gwas", "--quiet", "--param", "steps.hits.enabled=false"]) == 0
    )
    assert "gwas/hits: step hits is disabled by the run's config" in capsys.readouterr().out


def test_simulation_round_trip_finds_the_causal_variants(
    omics_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """gwas_simulated reads the latest run of the simulation workflow (inputs: latest), and
    its run records which one."""
    assert main(["run", "--workflow", "gwas_simulated", "--quiet"]) == 1  # no simulation yet
    captured = capsys.readouterr()
    assert "workflow simulation has no run with them yet" in captured.out + captured.err
    assert main(["run", "--workflow", "simulation", "--quiet"]) == 0
    simulated = run_key(capsys)
    assert main(["run", "--workflow", "gwas_simulated", "--quiet"]) == 0
    key = run_key(capsys)
    inst = cli.instance()
    genotypes = materialization(inst, "gwas_simulated/genotypes", key)
    assert genotypes["upstream_runs"] == {"simulation": simulated}
    causal = pd.read_csv(
        Path(materialization(inst, "simulation/phenotype", simulated)["output_dir"]) / "causal.tsv",
        sep="\t",
    )
    hits = pd.read_csv(
        Path(materialization(inst, "gwas_simulated/hits", key)["output_dir"]) / "hits.tsv", sep="\t"
    )
    assert len(causal) == 3
    for position in causal["pos"]:
        assert (abs(hits["pos"] - position) <= 500_000).any(), (position, hits)
    assert (hits["p"] < 5e-8).all()
    # the plan of the same config now reuses every step, and says which simulation it reads
    assert main(["steps", "--workflow", "gwas_simulated", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [p["action"] for p in plan] == ["reuse"] * 6
    assert f"reads simulation run {simulated}" in plan[0]["why"]
    # a newer simulation is what "latest" reads next: its genotypes step runs again
    param = "steps.tree_sequence.config.seed=2"
    assert main(["run", "--workflow", "simulation", "--quiet", "--param", param]) == 0
    newer = run_key(capsys)
    assert main(["steps", "--workflow", "gwas_simulated", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan[0]["action"] == "run" and f"reads simulation run {newer}" in plan[0]["why"]
    # a run key instead of latest: the first simulation, read again (reused)
    pinned = f"inputs.simulation={simulated}"
    assert main(["run", "--workflow", "gwas_simulated", "--quiet", "--param", pinned]) == 0
    again = run_key(capsys)
    assert materialization(inst, "gwas_simulated/genotypes", again)["upstream_runs"] == {
        "simulation": simulated
    }
    assert materialization(inst, "gwas_simulated/genotypes", again)["status"] == "reused"
    bad = ["run", "--workflow", "gwas_simulated", "--param", "inputs.simulation=../x"]
    with pytest.raises(SystemExit):
        main(bad)
    assert "inputs.simulation (--param inputs.simulation=../x): invalid key" in (
        capsys.readouterr().err
    )


def test_a_users_config_runs_with_all_four_layers(
    omics_home: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMICS_THREADS", "1")
    monkeypatch.setenv("OMICS_GWAS__STEPS__PCA__CONFIG__COMPONENTS", "3")
    monkeypatch.setenv("OMICS_RNASEQ__STEPS__PCA__CONFIG__COMPONENTS", "x")  # not gwas's
    config = write(
        tmp_path / "mice.yaml",
        "name: gwas\nsteps:\n  pca:\n    config: {components: 4}\n  qc:\n    config: {maf: 0.05}\n",
    )
    assert (
        main(
            [
                "run",
                "--config",
                str(config),
                "--quiet",
                "--param",
                "steps.hits.config.window_kb=2000",
            ]
        )
        == 0
    )
    key = run_key(capsys)
    assert key.startswith("mice-")
    meta = materialization(cli.instance(), "gwas/hits", key)
    assert meta["config"]["threads"] == 1  # environment
    assert meta["config"]["steps"]["pca"]["config"]["components"] == 4  # file over environment
    assert meta["config"]["steps"]["qc"]["config"]["maf"] == 0.05  # file
    assert meta["config"]["steps"]["hits"]["config"]["window_kb"] == 2000  # --param
    assert meta["config"]["steps"]["qc"]["config"]["hwe"] == 1e-6  # defaults


def test_resume_reruns_only_the_failed_step_and_after(
    omics_home: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A broken GEMMA first on PATH fails the association step; once it is gone, resume
    re-runs association and what follows, not the steps that completed."""
    tools = tmp_path / "bin"
    tools.mkdir()
    broken = write(
        tools / "gemma", "#!/bin/sh\necho 'gemma: libgsl.so.27: cannot open' >&2\nexit 127\n"
    )
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    config = write(
        tmp_path / "lmm.yaml", "name: gwas\nsteps:\n  association:\n    config: {model: lmm}\n"
    )
    assert main(["run", "--config", str(config), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert "gwas__association: gwas/association: gemma exited with status 127" in error
    assert "libgsl.so.27: cannot open" in error  # the tool's stderr tail
    monkeypatch.undo()
    inst = cli.instance()
    key = re.search(r"^workflow gwas run (lmm-\S+): FAILED", error, re.MULTILINE)[1]
    failed = last_partition_run(inst, key, ["gwas"])
    assert main(["resume", "--workflow", "gwas", "--run", key]) == 0
    resumed = last_partition_run(inst, key, ["gwas"])
    assert resumed.dagster_run.parent_run_id == failed.dagster_run.run_id
    executed = {s.step_key for s in inst.get_run_step_stats(resumed.dagster_run.run_id)}
    assert executed == {
        "gwas__association",
        "gwas__association_genomic_inflation",
        "gwas__hits",
        "gwas__report",
    }
    # one kinship matrix that holds the tested variant deflates: the LMM's check says so
    assert materialization(inst, "gwas/association", key)["metric/lambda_gc"] < 0.9
    inflation = check_evaluation(inst, "gwas/association", "genomic_inflation")
    assert not inflation.passed and "(LMM) < 0.9: deflated" in inflation.description
    assert "model: loco" in inflation.description


def test_the_config_inbox_registers_and_rejects(omics_home: Path, tmp_path: Path) -> None:
    """One inbox for every workflow: each config's name: picks its workflow and job."""
    inbox = store("omics").inbox()
    inbox.mkdir(parents=True)
    write(inbox / "strict.yaml", "name: gwas\nsteps:\n  qc:\n    config: {maf: 0.05}\n")
    write(
        inbox / "bigger.yaml",
        "name: simulation\nsteps:\n  tree_sequence:\n    config: {samples: 600}\n",
    )
    write(inbox / "typo.yaml", "name: gwas\nsteps:\n  qc:\n    config:\n      mafx: 1\n")
    write(inbox / "nameless.yaml", "threads: 2\n")
    for name in ("strict.yaml", "bigger.yaml", "typo.yaml", "nameless.yaml"):
        write(inbox / f"{name}.complete", "")
    sensor = defs.resolve_sensor_def("omics_config_inbox")
    inst = cli.instance()
    resources = {"storage": store("omics")}
    with dg.build_sensor_context(instance=inst, definitions=defs, resources=resources) as context:
        result = sensor(context)
    requested = {r.job_name: r.partition_key for r in result.run_requests}
    assert sorted(requested) == ["gwas", "simulation"]
    assert requested["gwas"].startswith("strict-") and requested["simulation"].startswith("bigger-")
    added = {r.partitions_def_name: r.partition_keys for r in result.dynamic_partitions_requests}
    assert added == {
        "omics_gwas": [requested["gwas"]],
        "omics_simulation": [requested["simulation"]],
    }
    assert (inbox / "processed" / "strict.yaml").exists()
    error = (inbox / "rejected" / "typo.yaml.error.txt").read_text()
    assert "steps.qc.config.mafx: unknown key" in error and "typo.yaml line 5" in error
    assert "name the workflow" in (inbox / "rejected" / "nameless.yaml.error.txt").read_text()


def test_rnaseq_demo_reports_mapping_and_differential_expression(
    omics_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--workflow", "rnaseq", "--quiet"]) == 0
    key = run_key(capsys)
    inst = cli.instance()
    quantify = materialization(inst, "rnaseq/quantify", key)
    assert quantify["metric/mean_mapping_rate"] > 95
    assert "kallisto" in quantify["tool_versions"]["kallisto"]
    mapped = check_evaluation(inst, "rnaseq/quantify", "mapping_rate")
    assert mapped.passed and mapped.description.startswith("every sample maps >= 50 %")
    de = materialization(inst, "rnaseq/differential_expression", key)
    assert de["metric/significant"] >= 2
    report = materialization(inst, "rnaseq/report", key)["report"]
    assert "Mapping rates" in report and "data:image/png;base64," in report
    assert json.loads(json.dumps(de["step_result"]))["status"] == "completed"
    assert workflow(workflows_of(defs), "rnaseq").file.is_file()
