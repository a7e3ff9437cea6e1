"""The config hierarchy: each layer, their precedence, and errors that name the key and where
it was set (file and line, variable or argument)."""

import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from omics_assets.components.workflow import refused_workflows, workflows_of
from omics_assets.config import DEFAULTS_DIR, ConfigError, yaml_line
from omics_assets.definitions import defs
from omics_assets.workflows import resolve_run, workflow

WORKFLOWS = workflows_of(defs)  # read from the loaded Definitions, as the CLI reads them


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    user = write(
        tmp_path / "mine.yaml",
        """
        name: gwas
        threads: 3
        steps:
          qc:
            config: {maf: 0.05, geno: 0.2}
        """,
    )
    env = {
        "OMICS_THREADS": "4",
        "OMICS_GWAS__STEPS__QC__CONFIG__MAF": "0.02",
        "OMICS_GWAS__STEPS__QC__CONFIG__HWE": "1e-8",
        "OMICS_RNASEQ__THREADS": "9",  # another domain's: not gwas's
        "GWAS_THREADS": "x",  # another program's: never read
    }
    params = ["steps.qc.config.geno=0.3"]
    defaults_only = resolve_run(WORKFLOWS, "gwas", environ={}).config
    assert defaults_only["threads"] == 2  # the definition
    assert defaults_only["steps"]["qc"]["config"] == {
        "maf": 0.01,
        "geno": 0.1,
        "hwe": 1e-6,
        "mind": 0.1,
    }  # defaults/gwas.yaml
    assert defaults_only["domain_specific"]["genotypes"].endswith("mouse_hs1940")
    with_env = resolve_run(WORKFLOWS, "gwas", environ=env).config
    assert with_env["threads"] == 4 and with_env["steps"]["qc"]["config"]["hwe"] == 1e-8
    resolved = resolve_run(WORKFLOWS, "gwas", user, params, environ=env)
    qc = resolved.config["steps"]["qc"]["config"]
    assert resolved.config["threads"] == 3  # the file over OMICS_THREADS
    assert qc == {"maf": 0.05, "geno": 0.3, "hwe": 1e-8, "mind": 0.1}  # --param over the file
    assert resolved.origins[("threads",)] == f"{user} line 2"
    assert resolved.origins[("steps", "qc", "config", "hwe")] == (
        "environment variable OMICS_GWAS__STEPS__QC__CONFIG__HWE"
    )
    assert resolved.origins[("steps", "qc", "config", "geno")] == "--param steps.qc.config.geno=0.3"
    defaults_file = DEFAULTS_DIR / "gwas.yaml"
    assert resolved.origins[("steps", "qc", "config", "mind")] == f"{defaults_file} line 13"


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("name: gwas\nthraeds: 2\n", "thraeds", 2),
        ("name: gwas\ndomain_specific:\n  genotype: x\n", "domain_specific.genotype", 3),
        ("name: gwas\nsteps:\n  qc:\n    config:\n      mafx: 0.1\n", "steps.qc.config.mafx", 5),
        ("name: gwas\nsteps:\n  qcc: {enabled: false}\n", "steps.qcc", 3),
        ("name: gwas\nsteps:\n  qc: {enabeld: false}\n", "steps.qc.enabeld", 3),
    ],
)
def test_an_unknown_key_is_refused_at_every_level(
    tmp_path: Path, text: str, key: str, line: int
) -> None:
    user = write(tmp_path / "typo.yaml", text)
    with pytest.raises(ConfigError) as error:
        resolve_run(WORKFLOWS, None, user, environ={})
    assert f"{key}: unknown key ({user} line {line})" in str(error.value)
    assert "known there:" in str(error.value)


def test_wrong_types_and_ranges_name_where_they_were_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    user = write(
        tmp_path / "bad.yaml",
        """
        name: gwas
        steps:
          qc:
            config: {maf: lots}
          pca:
            config: {components: 0}
        """,
    )
    with pytest.raises(ConfigError) as error:
        resolve_run(WORKFLOWS, None, user, environ={})
    message = str(error.value)
    assert f"steps.qc.config.maf = 'lots' ({user} line 4)" in message
    assert f"steps.pca.config.components = 0 ({user} line 6)" in message
    with pytest.raises(ConfigError, match="environment variable OMICS_THREADS"):
        resolve_run(WORKFLOWS, "gwas", environ={"OMICS_THREADS": "many"})
    with pytest.raises(ConfigError, match=r"unknown key \(environment"):
        resolve_run(WORKFLOWS, "gwas", environ={"OMICS_GWAS__THREDS": "2"})
    with caplog.at_level("WARNING"):
        typo = resolve_run(WORKFLOWS, "gwas", environ={"OMICS_THREDS": "7"}).config
    assert typo["threads"] == 2  # a stray variable breaks no run; the operator is told
    assert "environment variable OMICS_THREDS ignored: not an omics config key" in caplog.text


def test_param_must_name_an_existing_key() -> None:
    with pytest.raises(ConfigError, match=r"steps\.qc\.config has no key 'maff'"):
        resolve_run(WORKFLOWS, "gwas", params=["steps.qc.config.maff=0.1"], environ={})
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        resolve_run(WORKFLOWS, "gwas", params=["threads"], environ={})
    resolved = resolve_run(WORKFLOWS, "gwas", params=["steps.pca.enabled=false"], environ={})
    assert resolved.config["steps"]["pca"]["enabled"] is False


def test_a_run_config_cannot_change_the_workflow_or_enable_an_unbuilt_step(
    tmp_path: Path,
) -> None:
    other = write(tmp_path / "other.yaml", "name: gwas\ndomain: rnaseq\n")
    with pytest.raises(ConfigError, match="line 2: domain 'rnaseq' differs"):
        resolve_run(WORKFLOWS, None, other, environ={})
    with pytest.raises(ConfigError, match="no workflow named 'nope'"):
        resolve_run(WORKFLOWS, "nope", environ={})
    with pytest.raises(ConfigError, match="name the workflow"):
        resolve_run(WORKFLOWS, None, write(tmp_path / "anon.yaml", "threads: 2\n"), environ={})
    enable = write(
        tmp_path / "enable.yaml", "name: rnaseq_counts\nsteps:\n  quantify: {enabled: true}\n"
    )
    with pytest.raises(ConfigError, match="quantify are disabled in workflow rnaseq_counts"):
        resolve_run(WORKFLOWS, None, enable, environ={})
    for text, problem in (("name: [\n", "not valid YAML"), ("- a\n", "a YAML mapping")):
        with pytest.raises(ConfigError, match=problem):
            resolve_run(WORKFLOWS, None, write(tmp_path / "broken.yaml", text), environ={})


def test_relative_paths_are_relative_to_the_file_that_sets_them(tmp_path: Path) -> None:
    (tmp_path / "inputs").mkdir()
    user = write(
        tmp_path / "inputs" / "run.yaml",
        """
        name: gwas
        domain_specific: {genotypes: geno/mice, phenotype: ../traits.tsv, trait: weight}
        """,
    )
    spec = resolve_run(WORKFLOWS, None, user, environ={}).config["domain_specific"]
    assert spec["genotypes"] == str(tmp_path / "inputs" / "geno" / "mice")
    assert spec["phenotype"] == str(tmp_path / "traits.tsv")
    assert spec["trait"] == "weight"  # not a path
    shipped = resolve_run(WORKFLOWS, "rnaseq_counts", environ={}).config["domain_specific"]
    assert Path(shipped["counts"]).is_file()  # ../../data/Li_sum.txt.gz from its defs.yaml


def _load_project(tmp_path: Path, attributes: str) -> dg.Definitions:
    """A throw-away dg project whose defs folder holds one OmicsWorkflow YAML."""
    package = tmp_path / "trial_project"
    (package / "defs" / "flow").mkdir(parents=True, exist_ok=True)
    for init in (package / "__init__.py", package / "defs" / "__init__.py"):
        init.write_text("")
    (package / "defs" / "flow" / "defs.yaml").write_text(
        "type: omics_assets.components.OmicsWorkflow\nattributes:\n"
        + textwrap.indent(textwrap.dedent(attributes).lstrip(), "  ")
    )
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\n'
        'root_module = "trial_project"\n'
    )
    sys.path.insert(0, str(tmp_path))
    try:
        return dg.load_from_defs_folder(project_root=tmp_path)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("trial_project")]:
            del sys.modules[name]


def _load_error(tmp_path: Path, attributes: str) -> str:
    """The messages of the exception chain that loading the project raises."""
    with pytest.raises(Exception) as raised:
        _load_project(tmp_path, attributes)
    messages, error = [], raised.value
    while error is not None:
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(messages)


def test_a_component_yaml_error_names_its_file_and_line(tmp_path: Path) -> None:
    defs_file = tmp_path / "trial_project" / "defs" / "flow" / "defs.yaml"
    typo = _load_error(tmp_path, "name: flow\ndomain: gwas\nthreads: 2\nthraeds: 2\n")
    assert f"attributes.thraeds at {defs_file}:6" in typo
    inner = _load_project(tmp_path, "name: flow\ndomain: gwas\ndomain_specific:\n  genotype: x\n")
    assert not workflows_of(inner)  # refused; the location loads
    why = refused_workflows(inner)[str(defs_file)]
    assert f"domain_specific.genotype: unknown key ({defs_file} line 6)" in why
    defs = _load_project(
        tmp_path, "name: flow\ndomain: simulation\nsteps:\n  vcf: {enabled: false}\n"
    )
    keys = {k.to_user_string() for asset in defs.assets or [] for k in asset.keys}
    assert keys == {"flow/tree_sequence", "flow/phenotype"}


@pytest.mark.parametrize("name", ["../flow", "a/b", "2fast", "my-study"])
def test_a_name_that_breaks_dagsters_rule_is_refused_and_the_location_loads(
    tmp_path: Path, name: str
) -> None:
    defs = _load_project(tmp_path, f"name: {name!r}\ndomain: simulation\n")
    assert not defs.assets and not workflows_of(defs)
    [(file, why)] = refused_workflows(defs).items()
    assert file.endswith("flow/defs.yaml")
    assert f"invalid workflow name {name!r}" in why and "^[A-Za-z_][A-Za-z0-9_]*$" in why


def test_a_daemon_loaded_workflow_imports_no_unregistered_step_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workflow in the folder the code server loads may not name ``os:system`` or a module
    the operator did not register: refused before import (the module's import would touch a
    sentinel), and the location loads."""
    sentinel = tmp_path / "imported"
    (tmp_path / "wiper.py").write_text(f"open({str(sentinel)!r}, 'w').close()\ndef run(c): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PLATFORM_STEP_MODULES", raising=False)
    for func in ("os:system", "wiper:run"):
        defs = _load_project(
            tmp_path,
            f"name: flow\ndomain: simulation\nsteps:\n  wipe:\n    func: '{func}'\n",
        )
        assert not workflows_of(defs)
        [why] = refused_workflows(defs).values()
        assert "step 'wipe'" in why and f"func {func!r} refused before import" in why
        assert "PLATFORM_STEP_MODULES (registered: none)" in why
    assert not sentinel.exists() and "wiper" not in sys.modules


def test_yaml_line_finds_nested_keys() -> None:
    file = workflow(WORKFLOWS, "rnaseq").file
    assert yaml_line(file, ("attributes", "steps", "simulate_reads", "config")) == 19


def test_a_view_read_from_a_workflow_is_an_input_and_a_read_of_the_views_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omics_assets.workflows import input_signatures, load_definition

    (tmp_path / "m.tsv").write_text("sample\tx\ns1\t1\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    attributes = {
        "name": "mo",
        "domain": "multiomics",
        "domain_specific": {
            "views": {
                "rna": {"workflow": "rnaseq", "step": "gene_counts"},
                "meth": {"path": "m.tsv"},
                "home": {"path": "~/m.tsv"},
            }
        },
    }
    definition, specs = load_definition(attributes, tmp_path / "mo.yaml", prefix=())
    assert definition.inputs == {"rnaseq": "latest"}
    assert next(s for s in specs if s.name == "views").needs[-1] == "rnaseq.gene_counts"
    config = resolve_run({"mo": definition}, "mo").config
    views = config["domain_specific"]["views"]
    assert views["meth"]["path"] == views["home"]["path"] == str(tmp_path / "m.tsv")
    # only declared paths are signed: a view's workflow name is not a file of the cwd
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rnaseq.yaml").write_text("")
    signed = input_signatures("multiomics", config["domain_specific"])
    assert set(signed) == {"views.meth.path", "views.home.path"}  # metadata: null
    # two views of one workflow must read the same run
    attributes["domain_specific"]["views"]["meth"] = {
        "workflow": "rnaseq",
        "step": "report",
        "run": "run-1",
    }
    with pytest.raises(ConfigError, match="reads run run-1 of workflow rnaseq, but another"):
        load_definition(attributes, tmp_path / "mo.yaml", prefix=())
