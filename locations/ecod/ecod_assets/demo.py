"""Deterministic demo data: a small ECOD-format reference library and query batches with truth.

Sequences are real proteins from Debian's ``mmseqs2-examples`` (UniProt entries in
``/usr/share/doc/mmseqs2/example-data/DB.fasta.gz``). The hierarchy is a clearly labelled demo:
48 families ("demo family X.H.T.F") under 4 X-groups x 2 H-groups x 2 T-groups x 3 F-groups.
Each family's root is a 60-180 residue window of a different protein, chosen so that no two
roots (nor the decoys used for domain-less chains) are BLAST-detectable homologs of each other.
Each family has 4 reference domains: the root (the representative) and copies with 15, 25 and
30% substitutions, packed 1-3 domains per reference chain.

A query batch has chains of 1-4 domains: copies of reference domains with 5-35% substitutions
(a quarter: 70-80%, remote homologs) and occasional 1-3 residue indels, joined by 5-20 residue
linkers, plus 10% chains made of a decoy protein (no known domain). The truth table gives each
domain's boundaries and f_id.

The ``remote`` tier is the regime profiles exist for: each family is a conserved core (30% of
the positions) in a freely varying rest, with 6 members ~39% identical to each other and with
indels (2% per residue); every query domain descends from the family's ancestor (never in the
library) and is ~25% identical to any single member (position identity, measured without
indels).
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ecod_assets.science.blast import blastp_argv, makeblastdb_argv, parse_hits
from ecod_assets.science.fasta import format_fasta, parse_fasta
from ecod_assets.science.reference import ReleaseDomain, format_release
from ecod_assets.science.stockholm import read_stockholm
from platform_core.tools import require_program, run_tool

SOURCE_PROTEINS = Path("/usr/share/doc/mmseqs2/example-data/DB.fasta.gz")
STANDARD = "ACDEFGHIKLMNPQRSTVWY"
HIERARCHY = (4, 2, 2, 3)  # X, H per X, T per H, F per T
MEMBER_DIVERGENCE = (0.0, 0.15, 0.25, 0.30)
DEMO_SEED = 20261123
# Evolution model: a family keeps a third of its positions (core) five times better than the
# rest, and most substitutions stay within a physico-chemical group.
CONSERVED_FRACTION, CONSERVED_RATE = 0.35, 0.2
_GROUPS = ("ILMV", "FWY", "KRH", "DE", "NQ", "ST", "AG", "C", "P")
_GROUP_OF = {a: g for g in _GROUPS for a in g}
# Query domains: most are close copies (BLAST finds them); a quarter are remote homologs, which
# pairwise search often misses and family profiles (HHsearch) still recognise.
CLOSE, REMOTE, REMOTE_SHARE = (0.05, 0.35), (0.70, 0.80), 0.25
TRUTH_COLUMNS = ["chain_id", "domain_number", "start", "end", "f_id"]
Tier = Literal["standard", "remote"]
Substitution = Callable[[np.random.Generator, str], str]  # a residue's replacement
TIERS: tuple[Tier, ...] = ("standard", "remote")
# Remote tier: substitution rates (core, rest) of library members and of query domains.
REMOTE_CORE_FRACTION, REMOTE_MEMBERS = 0.3, 6
REMOTE_MEMBER_RATES, REMOTE_QUERY_RATES = (0.25, 0.6), (0.6, 0.97)
REMOTE_MEMBER_INDEL, REMOTE_QUERY_INDEL = 0.02, 0.01


@dataclass(frozen=True)
class DemoLibrary:
    domains_path: Path
    fasta_path: Path


@cache
def _source_sequences(limit: int = 4000) -> list[str]:
    """The first ``limit`` standard-alphabet proteins of at least 200 residues."""
    text = gzip.decompress(SOURCE_PROTEINS.read_bytes()).decode()
    sequences = [r.sequence for r in parse_fasta(text, str(SOURCE_PROTEINS))]
    usable = [s for s in sequences if len(s) >= 200 and set(s) <= set(STANDARD)]
    return usable[:limit]


def _window(rng: np.random.Generator, sequence: str, low: int, high: int) -> str:
    length = int(rng.integers(low, high + 1))
    start = int(rng.integers(0, len(sequence) - length + 1))
    return sequence[start : start + length]


def _complex_enough(sequence: str) -> bool:
    counts = np.unique(list(sequence), return_counts=True)[1]
    return counts.max() / len(sequence) < 0.15 and len(counts) >= 15


def _unrelated(windows: list[str], needed: int, workdir: Path) -> list[str]:
    """The first ``needed`` windows (in order) with no BLAST hit (E <= 1e-3) to an earlier
    kept one. Runs makeblastdb + blastp once, all against all."""
    fasta = workdir / "candidates.fasta"
    fasta.write_text(format_fasta([(f"c{i}", s) for i, s in enumerate(windows)]))
    database = workdir / "candidates"
    run_tool(makeblastdb_argv(require_program("makeblastdb"), fasta, database, "demo"), 300)
    result = run_tool(blastp_argv(require_program("blastp"), fasta, database, threads=2), 600)
    hits = parse_hits(result.stdout)
    hits = hits[(hits["evalue"] <= 1e-3) & (hits["chain_id"] != hits["target"])]
    related: dict[int, set[int]] = {}
    for query, target in zip(hits["chain_id"], hits["target"], strict=True):
        a, b = int(query[1:]), int(target[1:])
        related.setdefault(a, set()).add(b)
        related.setdefault(b, set()).add(a)
    kept: list[int] = []
    for index in range(len(windows)):
        if not related.get(index, set()) & set(kept):
            kept.append(index)
        if len(kept) == needed:
            return [windows[i] for i in kept]
    raise RuntimeError(f"only {len(kept)} unrelated demo sequences, {needed} needed")


def unrelated_windows(
    rng: np.random.Generator, needed: int, low: int, high: int, candidates: int = 200
) -> list[str]:
    """``needed`` windows of ``low``-``high`` residues of different source proteins, of
    varied composition, none a BLAST-detectable homolog of another."""
    sources = _source_sequences()
    windows = []
    for index in rng.permutation(len(sources)):
        window = _window(rng, sources[index], low, high)
        if _complex_enough(window):
            windows.append(window)
        if len(windows) == candidates:
            break
    with tempfile.TemporaryDirectory() as tmp:
        return _unrelated(windows, needed, Path(tmp))


def conservation_mask(rng: np.random.Generator, length: int) -> np.ndarray:
    """Positions a family keeps (its "core"): CONSERVED_FRACTION of them, at random."""
    return rng.random(length) < CONSERVED_FRACTION


def _substitute(rng: np.random.Generator, residue: str) -> str:
    """A similar amino acid (same physico-chemical group) with probability 0.6, else any."""
    group = _GROUP_OF.get(residue, "")
    pool = (
        group.replace(residue, "")
        if group and rng.random() < 0.6
        else STANDARD.replace(residue, "")
    )
    return pool[int(rng.integers(len(pool)))] if pool else residue


def mutate(
    rng: np.random.Generator,
    sequence: str,
    substitution: float | np.ndarray,
    indel: float = 0.0,
    conserved: np.ndarray | None = None,
    substitute: Substitution | None = None,
) -> str:
    """A homolog of ``sequence``: an average fraction ``substitution`` of residues replaced
    (conserved positions ``CONSERVED_RATE`` times as often as the others, replacements mostly
    by similar amino acids), and at rate ``indel`` per residue 1-3 residues inserted or
    deleted. An array ``substitution`` gives the rate of each position of ``sequence``;
    ``substitute`` picks a replacement (default: a similar amino acid 60 % of the time)."""
    rates = np.broadcast_to(np.asarray(substitution, dtype=float), (len(sequence),))
    if conserved is not None:
        variable = substitution / (1 - CONSERVED_FRACTION * (1 - CONSERVED_RATE))
        rates = np.where(conserved[: len(sequence)], variable * CONSERVED_RATE, min(variable, 0.97))
    out: list[str] = []
    i = 0
    while i < len(sequence):
        if indel and rng.random() < indel:
            size = int(rng.integers(1, 4))
            if rng.random() < 0.5:
                out.append(random_peptide(rng, size, size))
            else:
                i += size
                continue
        residue = sequence[i]
        out.append(
            (substitute or _substitute)(rng, residue) if rng.random() < rates[i] else residue
        )
        i += 1
    return "".join(out)


def random_peptide(rng: np.random.Generator, low: int, high: int) -> str:
    size = int(rng.integers(low, high + 1))
    return "".join(STANDARD[i] for i in rng.integers(0, len(STANDARD), size))


@dataclass(frozen=True)
class _Family:
    f_id: str
    names: tuple[str, str, str, str]
    members: tuple[str, ...]
    conserved: np.ndarray
    ancestor: str = ""  # remote tier: the sequence query domains descend from


@cache
def _families_and_decoys(seed: int) -> tuple[list[_Family], list[str]]:
    rng = np.random.default_rng(seed)
    n_families = int(np.prod(HIERARCHY))
    n_decoys = 40
    kept = unrelated_windows(rng, n_families + n_decoys, 60, 180)
    families = []
    ids = [
        (x, h, t, f)
        for x in range(1, HIERARCHY[0] + 1)
        for h in range(1, HIERARCHY[1] + 1)
        for t in range(1, HIERARCHY[2] + 1)
        for f in range(1, HIERARCHY[3] + 1)
    ]
    for (x, h, t, f), root in zip(ids, kept[:n_families], strict=True):
        conserved = conservation_mask(rng, len(root))
        members = tuple(mutate(rng, root, d, conserved=conserved) for d in MEMBER_DIVERGENCE)
        names = (
            f"demo fold {x}",
            f"demo homology {x}.{h}",
            f"demo topology {x}.{h}.{t}",
            f"demo family {x}.{h}.{t}.{f}",
        )
        families.append(_Family(f"{x}.{h}.{t}.{f}", names, members, conserved))
    return families, kept[n_families:]


def _remote_families(seed: int) -> list[_Family]:
    """The remote tier: the standard families' roots as ancestors of core-conserved families."""
    rng = np.random.default_rng(seed + 2)
    families = []
    for family in _families_and_decoys(seed)[0]:
        ancestor = family.members[0]
        core = rng.random(len(ancestor)) < REMOTE_CORE_FRACTION
        rates = np.where(core, *REMOTE_MEMBER_RATES)
        members = tuple(
            mutate(rng, ancestor, rates, indel=REMOTE_MEMBER_INDEL) for _ in range(REMOTE_MEMBERS)
        )
        families.append(_Family(family.f_id, family.names, members, core, ancestor))
    return families


def _tier_families(tier: Tier, seed: int) -> list[_Family]:
    if tier not in TIERS:
        raise ValueError(f"unknown demo tier {tier!r}; one of {', '.join(TIERS)}")
    return _families_and_decoys(seed)[0] if tier == "standard" else _remote_families(seed)


def write_demo_library(
    out_dir: Path, seed: int = DEMO_SEED, tier: Tier = "standard"
) -> DemoLibrary:
    """Write ``demo.domains.txt`` and ``demo.fasta`` (ECOD formats) of a tier into ``out_dir``."""
    rng = np.random.default_rng(seed + 1)
    domains = [
        ReleaseDomain(family.f_id, family.names, sequence, representative=member == 0)
        for family in _tier_families(tier, seed)
        for member, sequence in enumerate(family.members)
    ]
    order = rng.permutation(len(domains))
    chains, position = [], 0
    while position < len(order):
        size = int(rng.integers(1, 4))
        chains.append([domains[i] for i in order[position : position + size]])
        position += size
    comments = [
        "ECOD demo release: real UniProt sequences (Debian mmseqs2-examples), demo hierarchy",
        f"generated by ecod_assets.demo, tier {tier}, seed {seed}",
    ]
    return write_release(out_dir, chains, comments)


def write_release(
    out_dir: Path, chains: list[list[ReleaseDomain]], comments: list[str]
) -> DemoLibrary:
    """``demo.domains.txt`` and ``demo.fasta`` of a release (``format_release``) in ``out_dir``."""
    text, fasta = format_release(chains, comments)
    out_dir.mkdir(parents=True, exist_ok=True)
    domains_path, fasta_path = out_dir / "demo.domains.txt", out_dir / "demo.fasta"
    domains_path.write_text(text)
    fasta_path.write_text(format_fasta(fasta))
    return DemoLibrary(domains_path, fasta_path)


def write_seed_library(
    families: dict[str, Path], out_dir: Path, exclude: tuple[str, ...] = ()
) -> DemoLibrary:
    """A release of real protein families: each Stockholm seed alignment (f_id -> path, e.g.
    Pfam seeds from Debian's ``hmmer-examples``) is one F-group of its members with gaps
    removed, one domain per reference chain; members whose name starts with one of
    ``exclude`` (the query's own entries) are left out. The first kept member represents."""
    chains = []
    for number, (f_id, path) in enumerate(families.items(), start=1):
        members = [m for m in read_stockholm(path) if not m[0].startswith(exclude)]
        family = path.stem
        if not members:
            raise ValueError(f"{path}: no member left of family {number} ({family})")
        names = (f"{family} fold", f"{family} homology", f"{family} topology", family)
        chains += [
            [ReleaseDomain(f_id, names, sequence, representative=k == 0)]
            for k, (_, sequence) in enumerate(members)
        ]
    comments = ["seed families: " + ", ".join(f"{p.name} as {f}" for f, p in families.items())]
    return write_release(out_dir, chains, comments)


def demo_batch(
    n_chains: int, seed: int, prefix: str = "chain", tier: Tier = "standard"
) -> tuple[str, pd.DataFrame]:
    """(FASTA text, truth table) of a query batch drawn from a tier's library families."""
    families, decoys = _tier_families(tier, DEMO_SEED), _families_and_decoys(DEMO_SEED)[1]
    rng = np.random.default_rng(seed)
    records, truth = [], []
    for number in range(1, n_chains + 1):
        chain_id = f"{prefix}_{number:04d}"
        if rng.random() < 0.10:
            decoy = decoys[int(rng.integers(len(decoys)))]
            records.append((chain_id, mutate(rng, decoy, 0.1)))
            truth.append([chain_id, pd.NA, pd.NA, pd.NA, pd.NA])
            continue
        parts = [random_peptide(rng, 0, 10)]
        position = len(parts[0])
        n_domains = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.2, 0.1]))
        for domain_number in range(1, n_domains + 1):
            family = families[int(rng.integers(len(families)))]
            if tier == "remote":
                rates = np.where(family.conserved, *REMOTE_QUERY_RATES)
                domain = mutate(rng, family.ancestor, rates, indel=REMOTE_QUERY_INDEL)
            else:
                member = family.members[int(rng.integers(len(family.members)))]
                divergence = REMOTE if rng.random() < REMOTE_SHARE else CLOSE
                rate = float(rng.uniform(*divergence))
                domain = mutate(rng, member, rate, indel=0.01, conserved=family.conserved)
            truth.append(
                [chain_id, domain_number, position + 1, position + len(domain), family.f_id]
            )
            parts.append(domain)
            position += len(domain)
            linker = (
                random_peptide(rng, 5, 20)
                if domain_number < n_domains
                else random_peptide(rng, 0, 10)
            )
            parts.append(linker)
            position += len(linker)
        records.append((chain_id, "".join(parts)))
    table = pd.DataFrame(truth, columns=TRUTH_COLUMNS)
    return format_fasta(records), table
