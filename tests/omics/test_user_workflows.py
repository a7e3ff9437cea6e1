"""Workflows users write themselves: their own names and steps (``func``), the operator's
workflows folder (what the UI, daemon and inbox load), the contract of a step function, and
the Python API."""

import json
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from omics_assets.api import execute_domain_workflow, execute_workflow, workflow_status
from omics_assets.cli import main
from omics_assets.components.loader import workflows_folder
from omics_assets.components.workflow import refused_workflows, workflows_of
from omics_assets.location import LOCATION
from platform_core import cli
from tests.support import store

pytestmark = pytest.mark.slow

LAB = '''
import sys

def count(ctx):
    """Count the lines of domain_specific.text."""
    lines = open(ctx.domain_specific["text"]).read().splitlines()
    table = "line\\tchars\\n" + "".join(f"{i}\\t{len(t)}\\n" for i, t in enumerate(lines))
    (ctx.out / "counts.tsv").write_text(table)
    ctx.run([sys.executable, "-c", "pass"])
    return {"status": "completed", "output": {"files": {"counts": "counts.tsv"},
            "metrics": {"lines": len(lines)}}, "errors": [], "warnings": [], "metadata": {}}

def total(ctx):
    """Sum the characters counted."""
    chars = sum(int(r.split("\\t")[1]) for r in
                ctx.input_file("count", "counts").read_text().splitlines()[1:])
    (ctx.out / "total.tsv").write_text(f"chars\\n{chars}\\n")
    (ctx.out / "report.md").write_text(f"# Tally\\n\\n{chars} characters")
    return {"status": "completed", "output": {"files": {"total": "total.tsv"},
            "metrics": {"chars": chars}}, "errors": [], "warnings": [], "metadata": {},
            "checks": {"nonempty": {"passed": chars > 0, "description": f"{chars} chars"}}}

def wrong_shape(ctx):
    (ctx.out / "half.tsv").write_text("x\\n")
    return {"status": "done", "output": {"files": {"half": "half.tsv"}}}

def raises(ctx):
    return 1 / 0

def two_arguments(ctx, extra):
    return {}
'''


def workflow_file(path: Path, name: str, steps: str, domain: str = "custom") -> Path:
    text = f"name: {name}\ndomain: {domain}\n"
    if domain == "custom":
        text += f"domain_specific: {{text: {path.parent / 'text.txt'}}}\n"
    path.write_text(text + "steps:\n" + textwrap.indent(textwrap.dedent(steps).lstrip(), "  "))
    return path


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module of the user's own step functions, importable (a fresh name per test)."""
    module = f"lab_{tmp_path.name.replace('-', '_')[-40:]}"
    (tmp_path / f"{module}.py").write_text(LAB)
    (tmp_path / "text.txt").write_text("hello\nworld!\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield module
    sys.modules.pop(module, None)


TALLY = """
count: {{func: "{lab}:count"}}
total: {{func: "{lab}:total", reads: [count], checks: [nonempty]}}
"""


def exit_code(argv: list[str]) -> int:
    """``omics`` with ``argv``: its exit code (an error exits 2 through SystemExit)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code)


def last_run(name: str) -> dg.DagsterRun:
    [run] = cli.instance().get_runs(dg.RunsFilter(job_name=name), limit=1)
    return run


def test_a_custom_workflow_runs_is_reused_exports_and_is_saved(
    omics_home: Path, lab: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tally = workflow_file(tmp_path / "tally.yaml", "tally", TALLY.format(lab=lab))
    assert main(["run", "--config", str(tally), "--quiet", "--param", "verbose=true"]) == 0
    assert "workflow tally run tally-" in capsys.readouterr().out
    inst = cli.instance()
    verbose = [e.user_message for e in inst.all_logs(last_run("tally").run_id)]
    assert any(m.startswith("count: running " + sys.executable) for m in verbose)  # DEBUG
    assert main(["run", "--config", str(tally), "--quiet"]) == 0
    assert "succeeded" in capsys.readouterr().out
    quiet = [e.user_message for e in inst.all_logs(last_run("tally").run_id)]
    assert not any("count: running" in m for m in quiet)  # verbose: false: no DEBUG lines
    assert main(["steps", "--config", str(tally), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [(p["step"], p["action"]) for p in plan] == [("count", "reuse"), ("total", "reuse")]
    module = tmp_path / f"{lab}.py"
    module.write_text(module.read_text() + "\n# edited\n")  # new code: a new version
    assert main(["steps", "--config", str(tally), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [(p["step"], p["action"]) for p in plan] == [("count", "run"), ("total", "run")]
    key = dg.AssetCheckKey(dg.AssetKey(["tally", "total"]), "nonempty")
    check = inst.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    evaluation = check.event.dagster_event.event_specific_data
    assert evaluation.passed and evaluation.description == "11 chars"
    [total] = inst.fetch_materializations(dg.AssetKey(["tally", "total"]), limit=1).records
    report = total.asset_materialization.metadata["report"].value  # the step's report.md
    assert report.startswith("# Tally") and "11 characters" in report
    out = tmp_path / "total.csv"
    assert main(["export", "--config", str(tally), "--step", "total", "--out", str(out)]) == 0
    assert pd.read_csv(out)["chars"].tolist() == [11]
    # saved, it is a workflow of the location once it reloads: with its module registered
    assert not (workflows_folder() / "tally.yaml").exists()
    assert main(["submit", "--config", str(tally), "--save"]) == 0
    assert "the daemon will refuse it" in capsys.readouterr().err  # not registered yet
    refused = refused_workflows(LOCATION.definitions())
    assert (
        "PLATFORM_STEP_MODULES (registered: none)"
        in refused[str(workflows_folder() / "tally.yaml")]
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PLATFORM_STEP_MODULES", lab)
        reloaded = LOCATION.definitions()
    keys = {k.to_user_string() for k in reloaded.resolve_asset_graph().get_all_asset_keys()}
    assert {"tally/count", "tally/total"} <= keys and "tally" in workflows_of(reloaded)
    assert main(["status", "--config", str(tally), "--json"]) == 0
    assert {r["status"] for r in json.loads(capsys.readouterr().out)} == {"SUCCESS"}


@pytest.mark.parametrize(
    ("steps", "code", "message"),
    [
        ('half: {{func: "{lab}:wrong_shape"}}\n', 1, "not the step result standard (status:"),
        ('boom: {{func: "{lab}:raises"}}\n', 1, "ZeroDivisionError"),
        ('two: {{func: "{lab}:two_arguments"}}\n', 2, "takes one argument, the StepContext"),
        ('gone: {{func: "{lab}_absent:count"}}\n', 2, "cannot be imported"),
        ('lost: {{func: "{lab}:count", reads: [nowhere]}}\n', 2, "reads 'nowhere': no such step"),
        ('qc: {{func: "{lab}:count"}}\n', 2, "qc is a shipped step of the gwas domain"),
        (
            'one: {{func: "{lab}:count"}}\nthree: {{func: "{lab}:total", reads: [two]}}\n'
            'two: {{func: "{lab}:total", reads: [three]}}\n',
            2,
            "the reads of steps three, two form a cycle",
        ),
    ],
)
def test_a_step_that_breaks_its_contract_fails_naming_it(
    omics_home: Path,
    lab: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    steps: str,
    code: int,
    message: str,
) -> None:
    domain = "gwas" if steps.startswith("qc") else "custom"
    broken = workflow_file(tmp_path / "broken.yaml", "broken", steps.format(lab=lab), domain)
    assert exit_code(["run", "--config", str(broken), "--quiet"]) == code
    captured = capsys.readouterr()
    assert message in captured.out + captured.err
    if code == 1:  # it ran and failed: no step folder looks complete
        steps_dir = store("omics").resolve("custom") / "steps"
        assert not list(steps_dir.glob("half/*/result.json")) + list(
            steps_dir.glob("boom/*/result.json")
        )
        assert not list(steps_dir.glob("*/.*staging"))


def test_the_workflows_folder_loads_what_builds_and_reports_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    monkeypatch.setenv("OMICS_WORKFLOWS_DIR", str(folder))
    files = {
        "a_sim.yaml": "name: my_sim\ndomain: simulation\n",
        "b_dup.yaml": "name: my_sim\ndomain: simulation\n",
        "broken.yaml": "name: [\n",
        "taken.yaml": "name: rnaseq\ndomain: gwas\n",
        "runconfig.yaml": "name: gwas\ndomain: gwas\n",
        "badname.yaml": "name: my-study\ndomain: gwas\n",
        "cycle_a.yaml": "name: cycle_a\ndomain: simulation\ninputs: {cycle_b: latest}\n",
        "cycle_b.yaml": "name: cycle_b\ndomain: simulation\ninputs: {cycle_a: latest}\n",
        "orphan.yaml": "name: orphan\ndomain: simulation\ninputs: {nowhere: latest}\n",
        "badread.yaml": "name: badread\ndomain: gwas\ninputs: {my_sim: latest}\n"
        "steps:\n  genotypes: {reads: [my_sim.nostep]}\n",
        "oldinput.yaml": "name: old\ndomain: gwas\ninput: simulation\n",
        "component.yaml": "type: omics_assets.components.OmicsWorkflow\n"
        "attributes: {name: comp_sim, domain: simulation}\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    defs = LOCATION.definitions()
    loaded = set(workflows_of(defs))
    assert {"my_sim", "comp_sim", "gwas", "simulation"} <= loaded
    assert not loaded & {"cycle_a", "cycle_b", "orphan", "badread", "old"}
    refused = {Path(f).name: why for f, why in refused_workflows(defs).items()}
    expected = {
        "b_dup.yaml": f"the name 'my_sim' is taken by {folder / 'a_sim.yaml'}",
        "broken.yaml": "broken.yaml line 2: not valid YAML",
        "taken.yaml": "the shipped rnaseq workflow's; give your workflow a name of its own",
        "runconfig.yaml": "a file with its name is a run config of it",
        "badname.yaml": "invalid workflow name 'my-study'",
        "cycle_a.yaml": "a cycle between workflows",
        "cycle_b.yaml": "a cycle between workflows",
        "orphan.yaml": "inputs: 'nowhere' is not a loaded workflow",
        "badread.yaml": "reads 'my_sim.nostep': workflow my_sim has no enabled step 'nostep'",
        "oldinput.yaml": "input: is now inputs: {simulation: latest}",
    }
    assert set(refused) == set(expected)
    for name, fragment in expected.items():
        assert fragment in refused[name], (name, refused[name])


def test_the_inbox_runs_a_loaded_user_workflow_and_rejects_unknown_names(
    omics_home: Path, lab: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATFORM_STEP_MODULES", lab)
    workflows_folder().mkdir(parents=True, exist_ok=True)
    workflow_file(workflows_folder() / "tally.yaml", "tally", TALLY.format(lab=lab))
    defs = LOCATION.definitions()
    inbox = store("omics").inbox()
    inbox.mkdir(parents=True, exist_ok=True)
    drops = {
        "again.yaml": "name: tally\nsteps:\n  count: {enabled: true}\n",
        "stranger.yaml": "name: stranger\ndomain: custom\n",
        "inputs.yaml": "name: tally\ndomain_specific: {text: /etc/passwd}\n",
    }
    for name, text in drops.items():
        (inbox / name).write_text(text)
        (inbox / f"{name}.complete").write_text("")
    sensor = defs.resolve_sensor_def("omics_config_inbox")
    resources = {"storage": store("omics")}
    with dg.build_sensor_context(
        instance=cli.instance(), definitions=defs, resources=resources
    ) as context:
        result = sensor(context)
    assert [r.job_name for r in result.run_requests] == ["tally"]
    rejected = inbox / "rejected"
    stranger = (rejected / "stranger.yaml.error.txt").read_text()
    assert "no workflow named 'stranger'" in stranger and "omics run --config" in stranger
    assert "does not set domain_specific" in (rejected / "inputs.yaml.error.txt").read_text()


def test_the_api_returns_the_step_records_and_the_status(
    omics_home: Path, lab: str, tmp_path: Path
) -> None:
    config = {
        "name": "api_tally",
        "domain": "custom",
        "domain_specific": {"text": str(tmp_path / "text.txt")},
        "steps": {
            "count": {"func": f"{lab}:count"},
            "total": {"func": f"{lab}:total", "reads": ["count"]},
        },
    }
    first = execute_workflow(config)
    assert list(first) == ["count", "total"]
    assert first["total"]["status"] == "completed"
    assert first["total"]["output"]["metrics"] == {"chars": 11}
    assert first["count"]["output"]["files_created"] == ["counts.tsv"]
    file = tmp_path / "api_tally.yaml"  # the same config as a file: the same run
    file.write_text(json.dumps(config))
    again = execute_workflow(file)
    assert {r["status"] for r in again.values()} == {"reused"}
    broken = {**config, "name": "api_broken", "steps": {"boom": {"func": f"{lab}:raises"}}}
    failed = execute_workflow(broken)
    assert failed["boom"]["status"] == "failed"
    assert "ZeroDivisionError" in "\n".join(failed["boom"]["errors"])
    simulated = execute_domain_workflow(
        "simulation",
        {"steps": {"tree_sequence": {"config": {"samples": 40, "sequence_length": 2e5}}}},
        work_dir="api_simulation",
    )
    assert [r["status"] for r in simulated.values()] == ["completed"] * 3
    assert simulated["vcf"]["output"]["metrics"]["samples"] == 40
    assert (store("omics").resolve("api_simulation") / "steps" / "vcf").is_dir()
    rows = workflow_status("simulation")
    assert [r["status"] for r in rows] == ["SUCCESS"]
    [own] = workflow_status(file)  # an unsaved workflow of your own: by its file
    assert own["workflow"] == "api_tally" and own["status"] == "SUCCESS"
    with pytest.raises(ValueError, match="no workflow named 'nope'"):
        workflow_status("nope")


def test_a_users_own_gwas_runs_from_the_cli_and_keeps_its_own_assets(
    omics_home: Path, eur_subset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """my_study: the user's genotypes (bolt-lmm-example's 1000 Genomes EUR subset) as a gwas
    workflow of its own: my_study/* assets, runs of its own, saved for the UI."""
    trait = tmp_path / "trait.tsv"
    pd.read_csv(f"{eur_subset}.pheno.covars", sep=r"\s+").to_csv(trait, sep="\t", index=False)
    study = tmp_path / "my_study.yaml"
    study.write_text(
        f"name: my_study\ndomain: gwas\ndomain_specific: {{genotypes: {eur_subset}, "
        "phenotype: trait.tsv, trait: PHENO}\n"  # relative to this file
        "steps:\n  hits: {enabled: false}\n  report: {enabled: false}\n"
    )
    assert main(["run", "--config", str(study), "--quiet", "--save"]) == 0
    out = capsys.readouterr().out
    key = re.search(r"^workflow my_study run (\S+): succeeded", out, re.MULTILINE)[1]
    inst = cli.instance()
    record = inst.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(["my_study", "association"])), limit=1
    ).records[0]
    assert record.asset_materialization.partition == key
    assert record.asset_materialization.metadata["metric/variants_tested"].value > 50_000
    assert key in inst.get_dynamic_partitions("omics_my_study")
    assert key not in inst.get_dynamic_partitions("omics_gwas")
    reloaded = LOCATION.definitions()
    assets = {k.to_user_string() for k in reloaded.resolve_asset_graph().get_all_asset_keys()}
    assert {"my_study/genotypes", "my_study/qc", "my_study/pca", "my_study/association"} <= (assets)
    assert "my_study/hits" not in assets
    saved = workflows_of(reloaded)["my_study"]
    assert saved.attributes["domain_specific"]["phenotype"] == str(trait)  # made absolute
    # a new version of the saved workflow replaces it (pca off); nothing else changes
    study.write_text(study.read_text() + "  pca: {enabled: false}\n")
    assert main(["submit", "--config", str(study), "--save"]) == 0
    assert [f.name for f in workflows_folder().glob("my_study*")] == ["my_study.yaml"]
    again = LOCATION.definitions()
    assets = {k.to_user_string() for k in again.resolve_asset_graph().get_all_asset_keys()}
    assert "my_study/association" in assets and "my_study/pca" not in assets
