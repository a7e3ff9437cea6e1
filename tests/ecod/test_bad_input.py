"""Bad input gets a clear error and loses nothing (submit, reference, inbox)."""

import json
from pathlib import Path

import dagster as dg
import pytest

from ecod_assets.cli import main
from ecod_assets.definitions import defs
from ecod_assets.partitions import ecod_batches
from tests.ecod.support import write_demo_batch
from tests.support import data_root, latest_metadata, store, tick


def inputs_dir() -> Path:
    return store("ecod").area("inputs")


def inbox_dir() -> Path:
    return store("ecod").inbox()


PROTEIN = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ"
BAD_FASTA = {
    "empty": ("", "empty file"),
    "not_fasta": ("chain_id,sequence\nq1,MKTAYIAKQR\n", "not a FASTA file"),
    "binary": (bytes(range(256)) * 8, "binary data"),
    "duplicate": (f">q1\n{PROTEIN}\n>q1\n{PROTEIN}\n", "duplicate chain id"),
    "letters": (f">q1\n{PROTEIN}J1\n", "non-amino-acid letter"),
    "short": (">q1\nMKTAYIAKQRQ\n", "shorter than the minimum 20"),
    "long": (">q1\n" + "MKTAYIAKQR" * 1001 + "\n", "longer than the maximum 10000"),
}


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / f"{name}.fasta"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize("case", sorted(BAD_FASTA))
def test_submit_rejects_bad_fasta_and_stores_nothing(
    case: str, ecod_instance: dg.DagsterInstance, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    content, message = BAD_FASTA[case]
    path = _write(tmp_path, case, content)
    with pytest.raises(SystemExit) as exit_info:
        main(["submit", str(path), "--batch-id", f"bad-{case}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err
    assert err.count("\n") == 1  # one line
    assert not (inputs_dir() / f"bad-{case}").exists()
    assert not ecod_instance.has_dynamic_partition(ecod_batches.name, f"bad-{case}")


@pytest.mark.parametrize("batch_id", ["a/b", "..", "../escape", ".hidden", "x" * 200, "a b"])
def test_hostile_batch_ids_are_refused(
    batch_id: str, ecod_home: Path, capsys: pytest.CaptureFixture
) -> None:
    fasta = _write(ecod_home, "hostile", f">q1\n{PROTEIN}\n")
    before = sorted(str(p) for p in data_root().rglob("*"))
    with pytest.raises(SystemExit) as exit_info:
        main(["submit", str(fasta), "--batch-id", batch_id])
    assert exit_info.value.code == 2
    assert "invalid key" in capsys.readouterr().err
    assert sorted(str(p) for p in data_root().rglob("*")) == before
    assert not (data_root().parent / "escape").exists()
    with pytest.raises(SystemExit):
        main(["status", "--batch", batch_id])


def test_a_taken_batch_id_is_never_overwritten(
    ecod_home: Path, capsys: pytest.CaptureFixture
) -> None:
    first = _write(ecod_home, "taken", f">q1\n{PROTEIN}\n")
    assert main(["submit", str(first)]) == 0
    stored = (inputs_dir() / "taken" / "chains.fasta").read_bytes()
    assert main(["submit", str(first)]) == 0  # same content again: a no-op
    other = _write(ecod_home / "..", "taken", f">q2\n{PROTEIN[::-1]}\n")
    with pytest.raises(SystemExit):
        main(["submit", str(other), "--batch-id", "taken"])
    assert "already exists with a different FASTA" in capsys.readouterr().err
    assert (inputs_dir() / "taken" / "chains.fasta").read_bytes() == stored


def test_reference_missing_domains_fails_and_keeps_the_current_library(
    ecod_home: Path,
    ecod_instance: dg.DagsterInstance,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    current = ecod_instance.get_latest_materialization_event(dg.AssetKey("reference_library"))
    library = json.loads((data_root() / "ecod" / "reference_library" / "__all__.json").read_text())
    source = Path(library["fasta_path"])
    records = source.read_text().split(">")[1:]
    truncated = tmp_path / "partial.fasta"
    truncated.write_text("".join(">" + r for r in records[: len(records) // 2]))
    with pytest.raises(SystemExit) as refused:  # bad input: refused before it is recorded
        main(["reference", "--domains", library["domains_path"], "--fasta", str(truncated)])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "domain(s) of the domains file have no sequence" in err and "partial.fasta" in err
    after = ecod_instance.get_latest_materialization_event(dg.AssetKey("reference_library"))
    assert after.run_id == current.run_id and after.timestamp == current.timestamp
    assert (
        json.loads((data_root() / "ecod" / "reference_library" / "__all__.json").read_text())
        == library
    )
    assert Path(library["root"], "complete").exists()


def test_reference_that_is_not_an_ecod_domains_file(
    tmp_path: Path, capsys: pytest.CaptureFixture, ecod_home: Path
) -> None:
    domains = tmp_path / "domains.txt"
    domains.write_text("just some text\nwithout a header\n")
    fasta = _write(tmp_path, "ref", f">e1abcA1\n{PROTEIN}\n")
    with pytest.raises(SystemExit) as refused:
        main(["reference", "--domains", str(domains), "--fasta", str(fasta)])
    assert refused.value.code == 2
    assert "not an ECOD domains file" in capsys.readouterr().err


def _tick(context_cursor: str | None, instance: dg.DagsterInstance) -> dg.SensorResult:
    return tick(defs, "ecod_inbox_sensor", instance, context_cursor)


def test_inbox_registers_each_complete_file_exactly_once(
    ecod_home: Path, ecod_instance: dg.DagsterInstance
) -> None:
    inbox = inbox_dir()
    inbox.mkdir(parents=True, exist_ok=True)
    write_demo_batch(inbox, "inboxbatch", 4, seed=12)
    (inbox / "inboxbatch.truth.tsv").unlink()
    first = _tick(None, ecod_instance)
    assert first.run_requests == []  # seen once: could still be growing
    second = _tick(first.cursor, ecod_instance)
    assert [r.partition_key for r in second.run_requests] == ["inboxbatch"]
    assert second.dynamic_partitions_requests[0].partition_keys == ["inboxbatch"]
    assert (inbox / "processed" / "inboxbatch.fasta").exists()
    assert (inputs_dir() / "inboxbatch" / "chains.fasta").exists()
    third = _tick(second.cursor, ecod_instance)
    assert third.run_requests == [] and third.dynamic_partitions_requests == []


def test_inbox_waits_for_a_file_that_is_still_growing(
    ecod_home: Path, ecod_instance: dg.DagsterInstance
) -> None:
    inbox = inbox_dir()
    inbox.mkdir(parents=True, exist_ok=True)
    growing = inbox / "growing.fasta"
    growing.write_text(f">q1\n{PROTEIN}\n")
    first = _tick(None, ecod_instance)
    with growing.open("a") as handle:
        handle.write(f">q2\n{PROTEIN}\n")
    second = _tick(first.cursor, ecod_instance)
    assert second.run_requests == []
    third = _tick(second.cursor, ecod_instance)
    assert [r.partition_key for r in third.run_requests] == ["growing"]


def test_inbox_quarantines_bad_files_with_the_reason(
    ecod_home: Path, ecod_instance: dg.DagsterInstance
) -> None:
    inbox = inbox_dir()
    inbox.mkdir(parents=True, exist_ok=True)
    _write(inbox, "nucleotides", ">q1\n" + "ACGT" * 30 + "\n")
    cursor = _tick(None, ecod_instance).cursor
    result = _tick(cursor, ecod_instance)
    assert result.run_requests == []
    assert not (inbox / "nucleotides.fasta").exists()
    reason = (inbox / "rejected" / "nucleotides.fasta.error.txt").read_text()
    assert "only nucleotide letters" in reason
    assert not ecod_instance.has_dynamic_partition(ecod_batches.name, "nucleotides")


def test_failed_batch_leaves_earlier_batches_intact(
    ecod_home: Path, ecod_instance: dg.DagsterInstance, capsys: pytest.CaptureFixture
) -> None:
    good = write_demo_batch(ecod_home, "goodbatch", 5, seed=13)
    assert main(["submit", str(good)]) == 0
    assert main(["run", "--batch", "goodbatch"]) == 0
    before = latest_metadata(ecod_instance, "classification", "goodbatch")
    stored = (data_root() / "ecod" / "classification" / "goodbatch.parquet").read_bytes()
    # a batch whose stored input was damaged after submission fails at batch_chains
    broken = write_demo_batch(ecod_home, "brokenbatch", 5, seed=14)
    assert main(["submit", str(broken)]) == 0
    (inputs_dir() / "brokenbatch" / "chains.fasta").write_bytes(b"\x00\x01garbage")
    capsys.readouterr()
    assert main(["run", "--batch", "brokenbatch"]) == 1
    err = capsys.readouterr().err
    assert "batch_chains" in err and "binary data" in err
    assert latest_metadata(ecod_instance, "classification", "goodbatch") == before
    assert (data_root() / "ecod" / "classification" / "goodbatch.parquet").read_bytes() == stored
    assert not (data_root() / "ecod" / "blast_chain_hits" / "brokenbatch.parquet").exists()


def test_a_batch_added_without_its_fasta_is_listed_and_fails_saying_so(
    ecod_instance: dg.DagsterInstance, capsys: pytest.CaptureFixture
) -> None:
    """A partition added in the UI (or left from an older install) with no registered FASTA:
    status lists it; its run fails at batch_chains naming the command that registers one."""
    ecod_instance.add_dynamic_partitions(ecod_batches.name, ["nofasta"])
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    rows = {row["batch"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["nofasta"]["chains"] is None and rows["nofasta"]["status"] == "never run"
    assert main(["run", "--batch", "nofasta"]) == 1
    err = capsys.readouterr().err
    assert "batch nofasta: FAILED" in err and "batch_chains" in err and "submit it with" in err
