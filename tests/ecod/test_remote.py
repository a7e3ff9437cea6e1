"""FULL mode where profiles matter: remote homologs of a synthetic library with indel families,
and real proteins (Pfam fn3 / Pkinase seeds, Drosophila sevenless) against HMMER's answer."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ecod_assets.cli import main
from ecod_assets.demo import write_seed_library
from ecod_assets.science.accuracy import score
from ecod_assets.science.evidence import PROFILE_EVIDENCE
from ecod_assets.science.fasta import format_fasta, read_fasta
from tests.support import data_root, isolated_home, latest_metadata

pytestmark = pytest.mark.slow  # real tools or a year of data: minutes (README: test tiers)

TUTORIAL = Path("/usr/share/doc/hmmer/examples/tutorial")
SEED_FAMILIES = {"1.1.1.1": TUTORIAL / "fn3.sto", "2.1.1.1": TUTORIAL / "Pkinase.sto"}
FAMILY_OF_MODEL = {"fn3": "1.1.1.1", "Pkinase": "2.1.1.1"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with isolated_home(tmp_path_factory.mktemp("ecod-remote")) as root:
        yield root


def run_both_modes(fasta: Path, name: str) -> dict[str, pd.DataFrame]:
    """Classification of ``fasta`` in FULL and in BLAST_ONLY (each its own batch)."""
    tables = {}
    for mode in ("full", "blast-only"):
        batch = f"{name}-{mode}"
        assert main(["submit", str(fasta), "--batch-id", batch]) == 0
        assert main(["run", "--batch", batch, "--mode", mode]) == 0
        tables[mode] = pd.read_parquet(data_root() / "ecod" / "classification" / f"{batch}.parquet")
    return tables


def with_ends(table: pd.DataFrame) -> pd.DataFrame:
    ends = table["range"].str.split("-", expand=True).astype(int)
    return table.assign(start=ends[0], end=ends[1])


@pytest.fixture(scope="module")
def remote(home: Path) -> dict:
    """The remote tier as a user gets it: `ecod demo --tier remote`, then its library."""
    fasta = home / "remote.fasta"
    demo = ["demo", "--tier", "remote", "--out", str(home), "--name", "remote", "--chains", "60"]
    assert main(demo) == 0
    library = home / "remote.library"
    domains, sequences = library / "demo.domains.txt", library / "demo.fasta"
    assert main(["reference", "--domains", str(domains), "--fasta", str(sequences)]) == 0
    truth = pd.read_csv(home / "remote.truth.tsv", sep="\t")
    return {"tables": run_both_modes(fasta, "remote"), "truth": truth, "domains": domains}


def test_a_library_with_indel_families_builds_msa_profiles(home: Path, remote: dict) -> None:
    """Members of different lengths: each family profile is one multiple alignment whose
    insertions are lower case (hhmake used to fail on them with -M first)."""
    records = read_fasta(remote["domains"].with_name("demo.fasta"))
    lengths = pd.DataFrame(
        {"f_id": [r.id.split("|")[2] for r in records], "n": [len(r.sequence) for r in records]}
    )
    assert (lengths.groupby("f_id")["n"].nunique() > 1).all()  # indels in every family
    library = Path(reference_metadata()["library"])
    a3m = sorted((library / "hh" / "a3m").glob("*.a3m"))
    assert len(a3m) == 48 and len(list((library / "hh" / "hhm").glob("*.hhm"))) == 48
    text = a3m[0].read_text()
    rows = text.split(">")[1:]
    assert len(rows) == 6  # every member of the F-group, not only BLAST-detected ones
    assert any(c.islower() for c in text.replace(">", "").split("\n", 1)[1])
    matches = {sum(1 for c in r.split("\n", 1)[1] if c.isupper() or c == "-") for r in rows}
    assert len(matches) == 1  # one match-state count: a real alignment


def reference_metadata() -> dict:
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("reference_library"))
    assert event is not None and event.asset_materialization is not None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_full_finds_remote_homologs_blast_only_misses(remote: dict) -> None:
    full = score(with_ends(remote["tables"]["full"]), remote["truth"])
    blast = score(with_ends(remote["tables"]["blast-only"]), remote["truth"])
    assert full.boundary >= 0.90 and full.family >= 0.90
    assert full.found > blast.found  # the profile stage adds domains pairwise search missed
    assert set(remote["tables"]["full"]["evidence_type"]) & set(PROFILE_EVIDENCE)


def test_release_sized_evalues_are_recorded(remote: dict) -> None:
    with dg.DagsterInstance.get() as instance:
        blast = latest_metadata(instance, "blast_domain_hits", "remote-full")
        hits = latest_metadata(instance, "hhsearch_registration", "remote-full")
        profiles = latest_metadata(instance, "hhsearch_profiles", "remote-full")
    assert blast["blast_dbsize"] == 200_000_000 and hits["hhsearch_db_profiles"] == 16_000
    # weakly covered chains reach HHsearch even where BLAST "covered" them
    assert profiles["chains_needing_hhsearch"] == 60


def sevenless() -> str:
    """Drosophila sevenless (UniProt P13368) from HMMER's tutorial file."""
    text = (TUTORIAL / "7LESS_DROME").read_text()
    block = text.split("\nSQ ")[1].split("\n", 1)[1].split("//")[0]
    return "".join(block.split()).upper()


def hmmscan_domains(tmp: Path, fasta: Path) -> pd.DataFrame:
    """Domains HMMER places with the models shipped beside the seeds (i-Evalue < 1e-3):
    start/end are the envelope, f_id the seed family's."""
    models = tmp / "models.hmm"
    models.write_text("".join((TUTORIAL / f"{m}.hmm").read_text() for m in FAMILY_OF_MODEL))
    subprocess.run(["hmmpress", "-f", str(models)], check=True, capture_output=True)
    table = tmp / "domains.tbl"
    argv = ["hmmscan", "--cpu", "1", "--domtblout", str(table), str(models), str(fasta)]
    subprocess.run(argv, check=True, capture_output=True)
    rows = [line.split() for line in table.read_text().splitlines() if not line.startswith("#")]
    found = pd.DataFrame(
        {
            "chain_id": [r[3] for r in rows],
            "f_id": [FAMILY_OF_MODEL[r[0]] for r in rows],
            "i_evalue": [float(r[12]) for r in rows],
            "start": [int(r[19]) for r in rows],
            "end": [int(r[20]) for r in rows],
        }
    )
    return found[found["i_evalue"] < 1e-3].reset_index(drop=True)


def test_real_proteins_sevenless_against_hmmer(home: Path, remote: dict) -> None:
    """Pfam fn3 and Pkinase seed members (sevenless's own entries left out) as two F-groups;
    FULL must place what HMMER places on sevenless (6 fn3 repeats and the kinase)."""
    library = write_seed_library(
        SEED_FAMILIES, home / "seeds", exclude=("7LESS_DROME/", "7LESS_DROVI/")
    )
    query = home / "sevenless.fasta"
    query.write_text(format_fasta([("sevenless", sevenless())]))
    truth = hmmscan_domains(home, query)
    assert len(truth) == 7 and (truth["f_id"] == "1.1.1.1").sum() == 6
    argv = ["reference", "--domains", str(library.domains_path), "--fasta", str(library.fasta_path)]
    assert main(argv) == 0
    tables = run_both_modes(query, "sevenless")
    full = score(with_ends(tables["full"]), truth)
    blast = score(with_ends(tables["blast-only"]), truth)
    assert full.found == 7 and full.family == 1.0
    assert full.found > blast.found
