"""Benchmark: the ECOD pipeline on demo batches (real BLAST+ and HH-suite).

    .venv/bin/python bench/ecod_pipeline.py [--chains 100] [--accuracy-chains 200]
                                            [--remote-chains 100] [--quick | --homologs]
                                            [--divergent-seeds 1 2 3] [--divergent-chains 100]

In a scratch instance and data root, builds the demo reference library, then reports:
1. FULL on a fresh batch of N chains: run wall time vs the physical limit, the sum of the
   tools' CPU time (user + system, from wait4) divided by the cores, and the same science
   in a plain loop without Dagster (bench/ecod_science.py): platform / science is the cost
   of orchestration (``--quick`` stops here);
2. the same batch re-run with nothing changed: wall time and tool CPU (should be zero);
3. BLAST_ONLY on a fresh copy of the batch, side by side with FULL;
4. FULL on an M-chain batch (wall vs limit again: the fixed orchestration cost amortizes),
   and boundary and F-group accuracy of FULL and BLAST_ONLY on M-chain batches;
5. the remote tier (``ecod demo --tier remote``: its own library of conserved-core families
   with indels, queries ~25% identical to any member): library build time, then FULL and
   BLAST_ONLY side by side, wall time and accuracy;
6. remote homologs not made by the demo generator (``ecod_assets.homolog_sets``): divergent
   sets (one per seed), held-out Pfam seed families and clustered UniProt families, each
   with FULL, BLAST_ONLY and plain HMMER (mafft + hmmbuild + hmmscan -Z 16000, greedy domains
   at i-Evalue <= 1e-3) side by side: recall, precision (both ends within +-20 and the
   right F-group), tool CPU (HMMER's includes mafft and hmmbuild) and wall time; then the
   sum over all sets (``--homologs`` runs this part alone).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from bench.ecod_science import bare_batch
from ecod_assets.defs.assets.reference import record_release
from ecod_assets.defs.jobs import JOB_BY_MODE, mode_config
from ecod_assets.demo import Tier, demo_batch, write_demo_library
from ecod_assets.homolog_sets import (
    HomologSet,
    divergent_set,
    pfam_holdout_set,
    uniprot_family_set,
)
from ecod_assets.inputs import register_batch
from ecod_assets.location import LOCATION
from ecod_assets.partitions import ecod_batches
from ecod_assets.resources import EcodTools, OrchestrationConfig
from ecod_assets.science.accuracy import score
from ecod_assets.science.baseline import hmmer_baseline
from ecod_assets.science.fasta import parse_fasta
from ecod_assets.science.reference import read_release
from platform_core.cli import quiet_warnings, run_job, scratch_instance


def submit(
    instance: dg.DagsterInstance,
    folder: Path,
    batch_id: str,
    chains: int,
    seed: int,
    tier: Tier = "standard",
) -> None:
    fasta, truth = demo_batch(chains, seed, tier=tier)
    path = folder / f"{batch_id}.fasta"
    path.write_text(fasta)
    truth.to_csv(folder / f"{batch_id}.truth.tsv", sep="\t", index=False)
    register_batch(LOCATION.store(), path, batch_id)
    instance.add_dynamic_partitions(ecod_batches.name, [batch_id])


def run(
    defs: dg.Definitions, instance: dg.DagsterInstance, mode: str, batch_id: str
) -> tuple[float, float]:
    """(wall seconds of the run, tool CPU seconds its stages reported)."""
    started = time.perf_counter()
    job = defs.resolve_job_def(JOB_BY_MODE[mode])
    result = run_job(job, instance, partition_key=batch_id, run_config=mode_config(mode))
    wall = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"{mode} run of {batch_id} failed")
    cpu = 0.0
    for event in result.get_asset_materialization_events():
        metadata = event.step_materialization_data.materialization.metadata
        if "tool_cpu_seconds" in metadata:
            cpu += float(metadata["tool_cpu_seconds"].value)
    return wall, cpu


def classification_metadata(instance: dg.DagsterInstance, batch_id: str) -> dict:
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("classification"), asset_partitions=[batch_id]),
        limit=1,
    ).records[0]
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def accuracy(instance: dg.DagsterInstance, batch_id: str) -> tuple[float, float]:
    metadata = classification_metadata(instance, batch_id)
    return metadata["boundary_accuracy"], metadata["f_group_accuracy"]


def build_reference(defs: dg.Definitions, instance: dg.DagsterInstance) -> float:
    """Materialize reference_library (the location's release: the demo release unless
    ECOD_RELEASE_DOMAINS / _FASTA name one); seconds."""
    started = time.perf_counter()
    result = run_job(
        defs.resolve_implicit_global_asset_job_def(),
        instance,
        asset_selection=[dg.AssetKey("reference_library")],
    )
    if not result.success:
        raise SystemExit("building the reference library failed")
    return time.perf_counter() - started


def orchestration() -> OrchestrationConfig:
    """The orchestration settings the location reads from the environment."""
    with dg.build_resources({"o": LOCATION.definitions().resources["orchestration"]}) as built:
        return built.o


def side_by_side(
    defs: dg.Definitions, instance: dg.DagsterInstance, folder: Path, name: str, made: HomologSet
) -> dict[str, list[float]]:
    """FULL, BLAST_ONLY and plain HMMER on one set: per method [found, true, predicted-right,
    predicted, tool CPU s, wall s], printed as one line each."""
    library = made.library
    record_release(LOCATION.store(), (library.domains_path, library.fasta_path))
    build_reference(defs, instance)
    fasta = folder / f"{name}.fasta"
    fasta.write_text(made.fasta)
    rows: dict[str, list[float]] = {}
    for mode in ("full", "blast-only"):
        batch = f"{name}-{mode}"
        made.truth.to_csv(folder / f"{batch}.truth.tsv", sep="\t", index=False)
        (folder / f"{batch}.fasta").write_text(made.fasta)
        register_batch(LOCATION.store(), folder / f"{batch}.fasta", batch)
        instance.add_dynamic_partitions(ecod_batches.name, [batch])
        wall, cpu = run(defs, instance, mode, batch)
        meta = classification_metadata(instance, batch)
        table = pd.read_parquet(
            Path(os.environ["PLATFORM_DATA_ROOT"]) / "ecod" / "classification" / f"{batch}.parquet"
        )
        got = score(table, made.truth)
        assert abs(got.recall - meta["recall"]) < 1e-3  # the bench reads what the UI shows
        rows[mode.upper()] = [
            got.correct_family,
            got.true_domains,
            got.predicted_correct,
            got.predicted,
            cpu,
            wall,
        ]
    records = parse_fasta(made.fasta, name)
    chains = pd.DataFrame(
        {"chain_id": [r.id for r in records], "sequence": [r.sequence for r in records]}
    )
    release = read_release(library.domains_path, library.fasta_path)
    started = time.perf_counter()
    found, cpu = hmmer_baseline(
        release,
        chains,
        folder / f"{name}-hmmer",
        EcodTools().programs(),
        orchestration().limits(),
        orchestration().hhsearch_db_profiles,
    )
    got = score(found, made.truth)
    rows["HMMER"] = [
        got.correct_family,
        got.true_domains,
        got.predicted_correct,
        got.predicted,
        cpu,
        time.perf_counter() - started,
    ]
    for method, row in rows.items():
        report(f"{name}, {method}", row)
    return rows


def report(label: str, row: list[float]) -> None:
    found, true, right, predicted, cpu, wall = row
    print(
        f"{label}: recall {found / true:.3f} ({found:.0f}/{true:.0f}), precision "
        f"{right / max(predicted, 1):.3f} ({right:.0f}/{predicted:.0f}); tool CPU {cpu:.1f} s, "
        f"wall {wall:.1f} s"
    )


def homolog_sets(
    defs: dg.Definitions, instance: dg.DagsterInstance, folder: Path, seeds: list[int], chains: int
) -> None:
    """Section 6 of the module docstring."""
    total: dict[str, list[float]] = {}
    sets = [
        (f"divergent-{seed}", divergent_set(folder / f"divergent-{seed}", chains, seed))
        for seed in seeds
    ]
    sets.append(("pfam-holdout", pfam_holdout_set(folder / "pfam-holdout")))
    sets.append(("uniprot-families", uniprot_family_set(folder / "uniprot-families")))
    for name, made in sets:
        for method, row in side_by_side(defs, instance, folder, name, made).items():
            total[method] = [a + b for a, b in zip(total.get(method, [0.0] * 6), row, strict=True)]
    for method, row in total.items():
        report(f"all sets, {method}", row)


def main() -> None:
    quiet_warnings()
    parser = argparse.ArgumentParser()
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--accuracy-chains", type=int, default=200)
    parser.add_argument("--remote-chains", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="stop after the orchestration cost")
    parser.add_argument("--homologs", action="store_true", help="only the remote-homolog sets")
    parser.add_argument("--divergent-seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--divergent-chains", type=int, default=100)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLATFORM_DATA_ROOT"] = str(Path(tmp) / "data")
        defs = LOCATION.definitions()
        with scratch_instance(tmp) as instance:
            folder = Path(tmp)
            if args.homologs:
                homolog_sets(defs, instance, folder, args.divergent_seeds, args.divergent_chains)
                return
            print(f"reference library (demo, build): {build_reference(defs, instance):.1f} s")
            submit(instance, folder, "full", args.chains, seed=7)
            submit(instance, folder, "blast", args.chains, seed=7)
            full_wall, full_cpu = run(defs, instance, "full", "full")
            limit = full_cpu / cores
            print(
                f"FULL, {args.chains} chains: wall {full_wall:.1f} s; tool CPU {full_cpu:.1f} s "
                f"/ {cores} cores = {limit:.1f} s; wall / limit = {full_wall / limit:.2f}"
            )
            library = instance.fetch_materializations(dg.AssetKey("reference_library"), limit=1)
            root = Path(library.records[0].asset_materialization.metadata["library"].value)
            started = time.perf_counter()
            bare_batch(folder / "full.fasta", root, orchestration())
            bare = time.perf_counter() - started
            print(
                f"the same science, no Dagster: {bare:.1f} s; platform / science = "
                f"{full_wall / bare:.2f}"
            )
            if args.quick:
                return
            rerun_wall, rerun_cpu = run(defs, instance, "full", "full")
            print(
                f"FULL re-run, nothing changed: wall {rerun_wall:.1f} s, tool CPU {rerun_cpu:.1f} s"
            )
            blast_wall, blast_cpu = run(defs, instance, "blast-only", "blast")
            print(
                f"BLAST_ONLY, {args.chains} chains: wall {blast_wall:.1f} s (tool CPU "
                f"{blast_cpu:.1f} s); FULL / BLAST_ONLY = {full_wall / blast_wall:.2f}"
            )
            submit(instance, folder, "acc-full", args.accuracy_chains, seed=11)
            submit(instance, folder, "acc-blast", args.accuracy_chains, seed=11)
            big_wall, big_cpu = run(defs, instance, "full", "acc-full")
            print(
                f"FULL, {args.accuracy_chains} chains: wall {big_wall:.1f} s; tool CPU "
                f"{big_cpu:.1f} s / {cores} cores = {big_cpu / cores:.1f} s; wall / limit = "
                f"{big_wall * cores / big_cpu:.2f}"
            )
            run(defs, instance, "blast-only", "acc-blast")
            for mode, batch in (("FULL", "acc-full"), ("BLAST_ONLY", "acc-blast")):
                boundary, family = accuracy(instance, batch)
                print(
                    f"accuracy, {args.accuracy_chains} chains, {mode}: boundary {boundary:.3f}, "
                    f"F-group {family:.3f}"
                )
            library = write_demo_library(folder / "remote-library", tier="remote")
            record_release(LOCATION.store(), (library.domains_path, library.fasta_path))
            seconds = build_reference(defs, instance)
            print(f"reference library (remote tier, 48 families x 6, build): {seconds:.1f} s")
            n = args.remote_chains
            for mode, batch in (("full", "remote-full"), ("blast-only", "remote-blast")):
                submit(instance, folder, batch, n, seed=13, tier="remote")
                wall, cpu = run(defs, instance, mode, batch)
                boundary, family = accuracy(instance, batch)
                print(
                    f"remote tier, {n} chains, {mode.upper()}: wall {wall:.1f} s (tool CPU "
                    f"{cpu:.1f} s); boundary {boundary:.3f}, F-group {family:.3f}"
                )
            homolog_sets(defs, instance, folder, args.divergent_seeds, args.divergent_chains)


if __name__ == "__main__":
    main()
