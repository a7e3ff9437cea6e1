"""Remote-homolog benchmark sets: a release and a query batch with its true domains.

- ``divergent_set``: synthetic families under a divergence model not tuned to this pipeline:
  5 X x 2 H x 2 T x 1-2 F-groups, each rooted on a 70-170 residue window of a real protein
  (Debian's ``mmseqs2-examples``) with a conserved core of 25 % of its positions; 6 library
  members per F-group (core 5 % substituted, the rest 65 %, then 3 % indels) and query domains
  drawn from the root, never from a member (core 12 %, the rest 92 %, then 3 % indels): about
  20-28 % identical to any member. A residue is replaced as BLOSUM62's target frequencies
  say (the matrix and background Debian's ``mmseqs2-examples`` ships), not by this
  project's own similarity groups.
- ``pfam_holdout_set``: real Pfam seed families (Debian's ``hmmer-examples``). The members
  least like the rest of their family (at most ``max_identity`` identical to any member left
  in the library, by the seed alignment's own columns) are held out as query domains; the
  library is the rest.
- ``uniprot_family_set``: real protein families of Debian's ``mmseqs2-examples``, clustered
  as ``mmseqs cluster -c 0.8`` would: each query protein of ``QUERY.fasta`` with the
  ``DB.fasta`` proteins BLAST aligns to it over >= 80 % of both lengths at E <= 1e-5. The
  family's library members are only those at most 40 % identical to the query, which is held
  out whole as one query domain; a family sharing a member or a hit with a family kept before
  is skipped, so F-groups are unrelated.

Query chains carry 1-3 domains joined by 5-20 residue linkers; 15 % carry an unassigned
60-120 residue tail and 10 % are decoys with no domain. Tails and decoys are windows of real
proteins unrelated to the families (divergent set) or residue-shuffled windows (Pfam set,
whose families may occur in any real protein), so they must stay unassigned.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecod_assets.demo import (
    SOURCE_PROTEINS,
    STANDARD,
    TRUTH_COLUMNS,
    DemoLibrary,
    Substitution,
    mutate,
    random_peptide,
    unrelated_windows,
    write_release,
)
from ecod_assets.science.blast import blastp_argv, makeblastdb_argv, parse_hits
from ecod_assets.science.fasta import format_fasta, parse_fasta
from ecod_assets.science.reference import ReleaseDomain
from ecod_assets.science.stockholm import GAP_CHARACTERS, GAPS, read_alignment
from platform_core.tools import require_program, run_tool

DIVERGENT_SEED = 20261206
CORE_FRACTION, MEMBERS = 0.25, 6
MEMBER_RATES, QUERY_RATES, INDEL = (0.05, 0.65), (0.12, 0.92), 0.03
TAIL_SHARE, TAIL_LENGTH, DECOY_SHARE = 0.15, (60, 120), 0.10
HMMER_EXAMPLES = Path("/usr/share/doc/hmmer/examples")
PFAM_SEEDS = (
    HMMER_EXAMPLES / "tutorial" / "fn3.sto",
    HMMER_EXAMPLES / "tutorial" / "Pkinase.sto",
    HMMER_EXAMPLES / "testsuite" / "RRM_1.sto.gz",
    HMMER_EXAMPLES / "testsuite" / "SMC_N.sto.gz",
    HMMER_EXAMPLES / "testsuite" / "LuxC.sto.gz",
    HMMER_EXAMPLES / "testsuite" / "Patched.sto.gz",
    HMMER_EXAMPLES / "testsuite" / "Caudal_act.sto.gz",
    HMMER_EXAMPLES / "easel" / "demotic" / "examples" / "example.sto.gz",
)

BLOSUM62 = Path("/usr/share/doc/mmseqs2/example-data/blosum62.out")
Domain = tuple[str, str]  # (f_id, sequence)


@dataclass(frozen=True)
class HomologSet:
    library: DemoLibrary
    fasta: str
    truth: pd.DataFrame


def _names(f_id: str, family: str) -> tuple[str, str, str, str]:
    x, h, t, _ = f_id.split(".")
    return (f"fold {x}", f"homology {x}.{h}", f"topology {x}.{h}.{t}", family)


def query_chains(
    rng: np.random.Generator, chains: Sequence[Sequence[Domain]], fillers: Sequence[str]
) -> tuple[str, pd.DataFrame]:
    """(FASTA, truth) of chains of the given domains (an empty one is a decoy: a filler),
    linkers of 5-20 random residues, and at ``TAIL_SHARE`` an unassigned tail cut from a
    filler at either end."""
    records, truth = [], []
    for number, domains in enumerate(chains, start=1):
        chain_id = f"chain_{number:04d}"
        filler = fillers[int(rng.integers(len(fillers)))]
        if not domains:
            records.append((chain_id, filler))
            truth.append([chain_id, pd.NA, pd.NA, pd.NA, pd.NA])
            continue
        tail = ""
        if rng.random() < TAIL_SHARE:
            length = min(len(filler), int(rng.integers(TAIL_LENGTH[0], TAIL_LENGTH[1] + 1)))
            tail = filler[:length]
        n_tail = tail if tail and rng.random() < 0.5 else ""
        sequence = n_tail + random_peptide(rng, 0, 10)
        for domain_number, (f_id, domain) in enumerate(domains, start=1):
            truth.append(
                [chain_id, domain_number, len(sequence) + 1, len(sequence) + len(domain), f_id]
            )
            sequence += domain + random_peptide(rng, 5, 20)
        sequence += "" if n_tail else tail
        records.append((chain_id, sequence))
    return format_fasta(records), pd.DataFrame(truth, columns=TRUTH_COLUMNS)


def _domains_per_chain(rng: np.random.Generator, n_chains: int) -> list[int]:
    """0 (a decoy) at DECOY_SHARE, else 1-3 domains."""
    return [
        0 if rng.random() < DECOY_SHARE else int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
        for _ in range(n_chains)
    ]


def divergent_set(out_dir: Path, n_chains: int = 60, seed: int = DIVERGENT_SEED) -> HomologSet:
    """The divergent synthetic set (module docstring); its release written into ``out_dir``."""
    rng = np.random.default_rng(seed)
    blosum = blosum_substitution()
    f_ids = [
        f"{x}.{h}.{t}.{f}"
        for x in range(1, 6)
        for h in (1, 2)
        for t in (1, 2)
        for f in range(1, int(rng.integers(1, 3)) + 1)
    ]
    n_fillers = 30
    windows = unrelated_windows(rng, len(f_ids) + n_fillers, 70, 170, candidates=300)
    ancestors, fillers = windows[: len(f_ids)], windows[len(f_ids) :]
    cores = [rng.random(len(a)) < CORE_FRACTION for a in ancestors]
    release = []
    for f_id, ancestor, core in zip(f_ids, ancestors, cores, strict=True):
        rates = np.where(core, *MEMBER_RATES)
        for member in range(MEMBERS):
            sequence = mutate(rng, ancestor, rates, indel=INDEL, substitute=blosum)
            release.append(
                [ReleaseDomain(f_id, _names(f_id, f"family {f_id}"), sequence, member == 0)]
            )
    chains = []
    for count in _domains_per_chain(rng, n_chains):
        drawn = []
        for _ in range(count):
            k = int(rng.integers(len(f_ids)))
            domain = mutate(
                rng, ancestors[k], np.where(cores[k], *QUERY_RATES), indel=INDEL, substitute=blosum
            )
            drawn.append((f_ids[k], domain))
        chains.append(drawn)
    fasta, truth = query_chains(rng, chains, fillers)
    comments = [f"divergent remote-homolog set, seed {seed} (ecod_assets.homolog_sets)"]
    return HomologSet(write_release(out_dir, release, comments), fasta, truth)


def blosum_substitution(path: Path = BLOSUM62) -> Substitution:
    """Replacement of residue a by b != a with probability proportional to the matrix's
    target frequency p_a p_b exp(lambda S_ab) (an MMseqs2 matrix file: background
    frequencies and lambda in its header, half-bit scores)."""
    lines = path.read_text().splitlines()
    background = [float(v) for v in lines[1].split(":", 1)[1].split()]
    scale = float(lines[2].split(":", 1)[1])
    letters = lines[3].split()
    scores = np.array(
        [[float(v) for v in line.split()[1:]] for line in lines[4 : 4 + len(letters)]]
    )
    standard = [i for i, a in enumerate(letters) if a in STANDARD]
    p = np.array(background)[standard]
    target = p[:, None] * p[None, :] * np.exp(scale * scores[np.ix_(standard, standard)])
    np.fill_diagonal(target, 0.0)
    target /= target.sum(axis=1, keepdims=True)
    names = "".join(letters[i] for i in standard)
    rows = {a: target[i] for i, a in enumerate(names)}

    def substitute(rng: np.random.Generator, residue: str) -> str:
        row = rows.get(residue)
        return residue if row is None else names[int(rng.choice(len(names), p=row))]

    return substitute


def identity(a: str, b: str) -> float:
    """Identity of two rows of one alignment over the columns where both have a residue."""
    pairs = [
        (x, y)
        for x, y in zip(a.upper(), b.upper(), strict=True)
        if x not in GAP_CHARACTERS and y not in GAP_CHARACTERS
    ]
    return sum(x == y for x, y in pairs) / len(pairs) if pairs else 0.0


def hold_out(rows: Sequence[tuple[str, str]], max_identity: float, share: float) -> list[int]:
    """Indices of the rows held out as queries: the least redundant first, each at most
    ``max_identity`` identical to every row left, at most ``share`` of the rows, and at
    least three rows left."""
    n = len(rows)
    table = np.array(
        [[identity(rows[i][1], rows[j][1]) if i != j else 0.0 for j in range(n)] for i in range(n)]
    )
    held: list[int] = []
    for i in np.argsort(table.max(axis=1), kind="stable"):
        left = [j for j in range(n) if j != i and j not in held]
        if len(held) + 1 > share * n or len(left) < 3:
            break
        if table[i, left].max() <= max_identity:
            held.append(int(i))
    return held


def pfam_holdout_set(
    out_dir: Path,
    seeds: Sequence[Path] = PFAM_SEEDS,
    max_identity: float = 0.4,
    share: float = 0.34,
    max_members: int = 60,
    seed: int = DIVERGENT_SEED,
) -> HomologSet:
    """The Pfam hold-out set (module docstring): each seed is one F-group (X-group = its
    position), its first ``max_members`` rows considered; release written into ``out_dir``."""
    release, queries = [], []
    for number, path in enumerate(seeds, start=1):
        rows = read_alignment(path)[:max_members]
        f_id, family = f"{number}.1.1.1", path.name.split(".")[0]
        held = set(hold_out(rows, max_identity, share))
        kept = [row.translate(GAPS).upper() for i, (_, row) in enumerate(rows) if i not in held]
        release += [
            [ReleaseDomain(f_id, _names(f_id, family), s, k == 0)] for k, s in enumerate(kept)
        ]
        queries += [(f_id, rows[i][1].translate(GAPS).upper()) for i in sorted(held)]
    comment = "Pfam seed families held out (hmmer-examples): " + ", ".join(p.name for p in seeds)
    return _assembled(release, queries, comment, out_dir, seed)


def _assembled(
    release: list[list[ReleaseDomain]],
    queries: list[Domain],
    comment: str,
    out_dir: Path,
    seed: int,
) -> HomologSet:
    """The set of a release and its held-out query domains, 1-3 per chain in random order,
    with tails and decoys of residue-shuffled query sequence (homologous to nothing)."""
    rng = np.random.default_rng(seed)
    order = [queries[i] for i in rng.permutation(len(queries))]
    chains: list[list[Domain]] = []
    for count in _domains_per_chain(rng, 10 * len(order)):
        if not order:
            break
        chains.append([order.pop() for _ in range(min(count, len(order)))])
    sources = [s for _, s in queries] or ["ACDEFGHIKLMNPQRSTVWY" * 6]
    fillers = ["".join(rng.permutation(list(s + s)))[: TAIL_LENGTH[1]] for s in sources]
    fasta, truth = query_chains(rng, chains, fillers)
    return HomologSet(write_release(out_dir, release, [comment]), fasta, truth)


UNIPROT_QUERIES = SOURCE_PROTEINS.with_name("QUERY.fasta.gz")
CLUSTER_EVALUE, CLUSTER_COVERAGE, REMOTE_IDENTITY = 1e-5, 0.8, 0.4


def _proteins(path: Path, low: int, high: int, prefix: str) -> list[tuple[str, str]]:
    """(``<prefix><number>``, sequence) of the standard-alphabet proteins of ``low``-``high``
    residues, numbered in file order (ids BLAST's -parse_seqids leaves alone)."""
    records = parse_fasta(gzip.decompress(path.read_bytes()).decode(), str(path))
    return [
        (f"{prefix}{number}", r.sequence)
        for number, r in enumerate(records)
        if low <= len(r.sequence) <= high and set(r.sequence) <= set(STANDARD)
    ]


def uniprot_family_set(
    out_dir: Path, queries: int = 200, max_families: int = 30, seed: int = DIVERGENT_SEED
) -> HomologSet:
    """The clustered UniProt family set (module docstring) of the first ``queries`` query
    proteins of 80-800 residues; release written into ``out_dir``."""
    candidates = _proteins(UNIPROT_QUERIES, 80, 800, "query")[:queries]
    database = dict(_proteins(SOURCE_PROTEINS, 30, 10_000, "db"))
    with tempfile.TemporaryDirectory() as tmp:
        fasta, db = Path(tmp) / "db.fasta", Path(tmp) / "db"
        fasta.write_text(format_fasta(list(database.items())))
        run_tool(makeblastdb_argv(require_program("makeblastdb"), fasta, db, "uniprot"), 600)
        query = Path(tmp) / "queries.fasta"
        query.write_text(format_fasta(candidates))
        argv = blastp_argv(require_program("blastp"), query, db, threads=2)
        hits = parse_hits(run_tool(argv, 3600).stdout)
    hits = hits[hits["evalue"] <= CLUSTER_EVALUE]
    spans = np.minimum(
        (hits["q_end"] - hits["q_start"] + 1) / hits["query_length"],
        (hits["t_end"] - hits["t_start"] + 1) / hits["target_length"],
    )
    members = hits[(spans >= CLUSTER_COVERAGE) & (hits["identity"] <= REMOTE_IDENTITY)]
    related = hits.groupby("chain_id")["target"].agg(set)
    release, held, used = [], [], set()
    for accession, sequence in candidates:
        family = list(dict.fromkeys(members.loc[members["chain_id"] == accession, "target"]))[:8]
        hit = related.get(accession, set())
        if len(family) < 3 or hit & used:
            continue
        used |= hit | {accession}
        f_id = f"{len(held) + 1}.1.1.1"
        names = _names(f_id, f"UniProt family of QUERY.fasta {accession}")
        release += [[ReleaseDomain(f_id, names, database[m], k == 0)] for k, m in enumerate(family)]
        held.append((f_id, sequence))
        if len(held) == max_families:
            break
    comment = "clustered UniProt families (mmseqs2-examples)"
    return _assembled(release, held, comment, out_dir, seed)
