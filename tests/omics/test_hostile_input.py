"""Hostile drops into the omics config inbox: each is refused with a clear message, nothing is
executed, read or written outside the data root, and the shipped workflows still register."""

import gzip
import json
from pathlib import Path

import dagster as dg
import pytest

from omics_assets.cli import main
from omics_assets.definitions import defs
from omics_assets.inputs import UNTRUSTED, check_untrusted_paths
from omics_assets.location import LOCATION
from platform_core import cli
from platform_core.confine import ConfinementError
from tests.support import data_root, failure_messages, outside_untouched, store, tick

pytestmark = pytest.mark.slow


def drop(name: str, text: str) -> Path:
    inbox = store("omics").inbox()
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / name).write_text(text)
    (inbox / f"{name}.complete").write_text("")
    return inbox / name


def refusal(name: str) -> str:
    """One tick of the config inbox; ``name`` must be rejected and nothing requested."""
    result = tick(defs, "omics_config_inbox", cli.instance())
    assert not result.run_requests and not result.dynamic_partitions_requests
    rejected = store("omics").inbox() / "rejected"
    assert (rejected / name).exists() and not (store("omics").inbox() / name).exists()
    return (rejected / f"{name}.error.txt").read_text()


@pytest.mark.parametrize(
    "work_dir",
    ["/etc/x", "../../..", "~/x", "OUTSIDE/w", "inbox/w", "../ecod/inbox/w"],
)
def test_a_work_dir_outside_the_data_root_or_in_an_inbox_is_refused(
    omics_home: Path, tmp_path: Path, work_dir: str
) -> None:
    with outside_untouched(tmp_path) as outside:
        work_dir = work_dir.replace("OUTSIDE", str(outside))
        name = f"escape-{sum(map(ord, work_dir))}.yaml"  # one per case: rejected/ is shared
        drop(name, f"name: simulation\nwork_dir: {work_dir}\n")
        error = refusal(name)
    if "inbox" in work_dir:  # inside the data root, but the dropper could swap it for a link
        assert "work_dir" in error and "inside an inbox, which anyone who drops" in error
    else:
        assert "work_dir" in error and "outside the allowed roots" in error
        assert str(data_root()) in error  # names the root it must stay in


def test_inputs_outside_the_roots_are_refused_inside_ones_registered(
    omics_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with outside_untouched(tmp_path) as outside:
        drop("shadow.yaml", "name: gwas\ndomain_specific:\n  genotypes: /etc/shadow\n")
        assert "domain_specific.genotypes '/etc/shadow'" in refusal("shadow.yaml")
        # a link inside the data root that leads out is judged by where it leads
        link = data_root() / "omics" / "geno.bed"
        link.symlink_to(outside / "secret.txt")
        drop("linked.yaml", f"name: gwas\ndomain_specific:\n  genotypes: {link}\n")
        assert f"resolves to {outside / 'secret.txt'}" in refusal("linked.yaml")
        sheet = data_root() / "omics" / "sheet.tsv"
        sheet.write_text(f"sample\tcondition\tfastq_1\na\tx\t{outside / 'secret.txt'}\n")
        drop("reads.yaml", f"name: rnaseq\ndomain_specific:\n  samplesheet: {sheet}\n")
        assert f"samplesheet {sheet} line 2: fastq_1" in refusal("reads.yaml")
        sheet.write_text(f"sample\tcondition\t fastq_1 \na\tx\t{outside / 'secret.txt'}\n")
        drop("spaced.yaml", f"name: rnaseq\ndomain_specific:\n  samplesheet: {sheet}\n")
        assert f"samplesheet {sheet} line 2: fastq_1" in refusal("spaced.yaml")
        # an inbox is writable by whoever drops files: no input may lie there
        (store("omics").inbox() / "mine.bed").write_text("x")
        inboxed = store("omics").inbox() / "mine"
        drop("inboxed.yaml", f"name: gwas\ndomain_specific:\n  genotypes: {inboxed}\n")
        assert "inside an inbox" in refusal("inboxed.yaml")
        # the operator's roots are allowed; so is the data root
        monkeypatch.setenv("PLATFORM_INPUT_ROOTS", str(outside))
        drop("allowed.yaml", f"name: gwas\ndomain_specific:\n  genotypes: {outside}/geno\n")
        result = tick(defs, "omics_config_inbox", cli.instance())
    [request] = result.run_requests
    record = json.loads(
        (
            store("omics").area("runs", "omics_gwas") / f"{request.partition_key}.gwas.json"
        ).read_text()
    )
    assert record[UNTRUSTED] == ["domain_specific.genotypes"]


def test_the_new_domains_inputs_are_confined_nested_ones_too(
    omics_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with outside_untouched(tmp_path) as outside:
        secret = outside / "secret.txt"
        drop(
            "view.yaml",
            f"name: multiomics\ndomain_specific:\n  views:\n    m: {{path: {secret}}}\n",
        )
        assert f"domain_specific.views.m.path {str(secret)!r}" in refusal("view.yaml")
        drop("eco.yaml", f"name: ecology\ndomain_specific:\n  counts: {secret}\n")
        assert f"domain_specific.counts {str(secret)!r}" in refusal("eco.yaml")
        sheet = data_root() / "omics" / "meth.tsv"
        sheet.write_text(f"sample\tcondition\tcoverage\na\tx\t{secret}\n")
        drop("meth.yaml", f"name: epigenome\ndomain_specific:\n  samplesheet: {sheet}\n")
        assert f"samplesheet {sheet} line 2: coverage" in refusal("meth.yaml")
        # a dropped run config may not make a view read another workflow's step
        drop(
            "upstream.yaml",
            "name: multiomics\ndomain_specific:\n  views:\n"
            "    m: {workflow: gwas, step: association}\n",
        )
        assert "domain_specific.views.m reads a workflow's step" in refusal("upstream.yaml")
        monkeypatch.setenv("PLATFORM_INPUT_ROOTS", str(outside))
        drop(
            "ok.yaml", f"name: multiomics\ndomain_specific:\n  views:\n    m: {{path: {secret}}}\n"
        )
        result = tick(defs, "omics_config_inbox", cli.instance())
    [request] = result.run_requests
    record = json.loads(
        (
            store("omics").area("runs", "omics_multiomics")
            / f"{request.partition_key}.multiomics.json"
        ).read_text()
    )
    assert record[UNTRUSTED] == ["domain_specific.views.m.path"]
    assert record["domain_specific"]["views"]["m"]["path"] == str(secret)


def test_a_dropped_config_never_brings_code(omics_home: Path, tmp_path: Path) -> None:
    with outside_untouched(tmp_path) as outside:
        drop(
            "system.yaml",
            "name: simulation\nsteps:\n  tree_sequence:\n    func: 'os:system'\n"
            f"    config: {{command: 'touch {outside}/sentinel-gone; rm {outside}/sentinel'}}\n",
        )
        error = refusal("system.yaml")
        assert "step 'tree_sequence' names func 'os:system'" in error and "line 4" in error
        assert "never defines steps" in error
        drop(
            "tagged.yaml",
            f"name: simulation\nx: !!python/object/apply:os.system ['touch {outside}/pwned']\n",
        )
        assert "not valid YAML" in refusal("tagged.yaml")
        assert not (outside / "pwned").exists()


def test_a_confined_path_swapped_after_registration_or_a_gzip_bomb_fails_the_run(
    omics_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    omics = store("omics")
    counts = data_root() / "omics" / "counts.tsv.gz"
    counts.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(counts, "wb") as handle:  # 30 MB of one line: a bomb for a 1 MB limit
        handle.write(b"gene\t" + b"0" * 30_000_000 + b"\n")
    config = {"work_dir": "rnaseq_counts", "domain_specific": {"counts": str(counts)}}
    config[UNTRUSTED] = ["work_dir", "domain_specific.counts"]
    check_untrusted_paths(omics, config)  # inside the data root: fine
    with pytest.raises(ValueError, match="expands past 1 MB when decompressed"):
        check_untrusted_paths(omics, config, gzip_limit_mb=1)
    with outside_untouched(tmp_path) as outside:
        counts.unlink()
        counts.symlink_to(outside / "secret.txt")  # swapped in after registration
        with pytest.raises(ConfinementError, match="outside the allowed roots"):
            check_untrusted_paths(omics, config)
        # through Dagster: the first step of a dropped rnaseq_counts run refuses the bomb
        counts.unlink()
        with gzip.open(counts, "wb") as handle:
            handle.write(b"gene\t" + b"0" * 30_000_000 + b"\n")
        drop(
            "bomb.yaml",
            f"name: rnaseq_counts\ndomain_specific:\n  counts: {counts}\n",
        )
        [request] = tick(defs, "omics_config_inbox", cli.instance()).run_requests
        inst = cli.instance()
        inst.add_dynamic_partitions("omics_rnaseq_counts", [request.partition_key])
        job = defs.resolve_job_def("rnaseq_counts")
        raised = {"resources": {"omics": {"config": {"max_input_mb": 1e9}}}}  # from the UI
        refused = job.execute_in_process(
            instance=inst,
            partition_key=request.partition_key,
            run_config=raised,
            raise_on_error=False,
        )
        assert any(
            "run config max_input_mb: the operator's" in m for m in failure_messages(refused)
        )
        monkeypatch.setenv("OMICS_MAX_INPUT_MB", "1")  # the operator's limit
        result = (
            LOCATION.definitions()
            .resolve_job_def("rnaseq_counts")
            .execute_in_process(
                instance=inst, partition_key=request.partition_key, raise_on_error=False
            )
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "expands past 1 MB when decompressed" in failure.event_specific_data.error.message
    assert not (omics.home() / "rnaseq_counts" / "steps").exists()  # nothing half written


def test_the_cli_keeps_the_users_own_paths_and_says_where_it_writes(
    omics_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "my-work"
    config = tmp_path / "mine.yaml"
    config.write_text(f"name: simulation\nwork_dir: {mine}\n")
    assert main(["submit", "--config", str(config)]) == 0
    assert f"its steps write under {mine}/steps" in capsys.readouterr().err
    records = (store("omics").area("runs", "omics_simulation")).glob("mine-*.json")
    [record] = [json.loads(p.read_text()) for p in records]
    assert record["work_dir"] == str(mine) and UNTRUSTED not in record


def test_a_work_dir_is_recorded_as_it_resolves_at_registration(
    omics_home: Path, tmp_path: Path
) -> None:
    """A work_dir reached through a link in the inbox: recorded where it resolves, so turning
    the link elsewhere afterwards moves nothing."""
    area = data_root() / "omics" / "area"
    area.mkdir(parents=True, exist_ok=True)
    turn = store("omics").inbox() / "turn"
    turn.mkdir(parents=True, exist_ok=True)
    (turn / "link").symlink_to(area, target_is_directory=True)
    drop("turning.yaml", "name: simulation\nwork_dir: inbox/turn/link/w\n")
    [request] = tick(defs, "omics_config_inbox", cli.instance()).run_requests
    runs = store("omics").area("runs", "omics_simulation")
    record = json.loads((runs / f"{request.partition_key}.simulation.json").read_text())
    assert record["work_dir"] == str(area / "w") and record[UNTRUSTED] == ["work_dir"]


def test_nested_yaml_aliases_are_refused_at_once(omics_home: Path) -> None:
    """A few hundred bytes of nested aliases ("billion laughs") would expand to 10^9 values:
    refused before anything walks them, naming the line."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)
    ]
    drop("laughs.yaml", "name: simulation\nwork_dir:\n  " + "\n  ".join(levels) + "\n")
    error = refusal("laughs.yaml")
    assert "a YAML alias (*a0); not in a config" in error and "line 4" in error
