"""The dna domain: reads to variants, checked against planted truth and Debian's data.

Truth: the lambda phage genome of Debian's ``bowtie2-examples`` carrying 150 SNVs and 40
indels (1-10 bp, insertions and deletions, >= 30 bp apart, 300 bp from the ends), 150 bp
``art_illumina`` read pairs (HiSeq 2500 errors, fragments 300 +- 30 bp) at 30x, thinned by
fragment GC (coverage dips to ~5x in lambda's AT-rich stretches) with 3 % PCR duplicates,
seed 11; calls at ploidy 1 (lambda is haploid) with the shipped filters (QUAL >= 20,
DP >= 5), matched to the truth by chrom, pos, ref and alt after normalization. Targets
(issue 32): SNV recall >= 0.95 and precision >= 0.98, indel recall >= 0.80, with bwa and
with bowtie2.
"""

import gzip
import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from omics_assets.cli import main
from omics_assets.config import Layer, resolve
from omics_assets.inputs import _sheet_reads
from omics_assets.science import reads
from omics_assets.science.dna_reference import fasta_stats
from omics_assets.science.dna_truth import (
    Truth,
    random_genome,
    score_calls,
    simulate_reads,
    simulate_truth,
)
from omics_assets.science.domains import step
from omics_assets.science.steps import StepContext, execute_step
from platform_core import cli
from platform_core.confine import confine
from tests.omics.conftest import StepRunner
from tests.omics.test_pipeline import check_evaluation, materialization, run_key

pytestmark = pytest.mark.slow
EXAMPLES = Path("/usr/share/doc/bowtie2/examples")
LAMBDA = EXAMPLES / "reference" / "lambda_virus.fa.gz"
STEPS = ["reference", "reads", "index", "align", "bam", "call", "variants", "report"]
EXPORT = ["chrom", "pos", "ref", "alt", "qual", "depth"]


@pytest.fixture(scope="module")
def lambda_truth(tmp_path_factory: pytest.TempPathFactory) -> Truth:
    folder = tmp_path_factory.mktemp("truth")
    return simulate_truth(
        folder, snvs=150, indels=40, seed=11, reference=LAMBDA, gc_bias=1.0, duplicates=0.03
    )


def vcf_records(path: Path) -> pd.DataFrame:
    """chrom, pos, ref, alt, depth (INFO/DP) of a bgzipped VCF, read without bcftools."""
    rows = []
    with gzip.open(path, "rt") as handle:
        for line in handle:
            if not line.startswith("#"):
                chrom, pos, _, ref, alt, _, _, info = line.split("\t")[:8]
                depth = int(re.search(r"(?:^|;)DP=(\d+)", info)[1])
                rows += [(chrom, int(pos), ref, a, depth) for a in alt.split(",")]
    return pd.DataFrame(rows, columns=["chrom", "pos", "ref", "alt", "depth"])


def genotypes(path: Path) -> list[str]:
    """The GT of every sample of every record of a bgzipped VCF."""
    with gzip.open(path, "rt") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle if not line.startswith("#")]
    return [s.split(":")[r[8].split(":").index("GT")] for r in rows for s in r[9:]]


def test_fasta_stats_of_lambda_and_of_several_sequences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = fasta_stats(LAMBDA)
    lengths = {}
    plain = tmp_path / "lambda.fa"
    plain.write_bytes(gzip.decompress(LAMBDA.read_bytes()))
    subprocess.run(["samtools", "faidx", str(plain)], check=True)
    for line in Path(f"{plain}.fai").read_text().splitlines():
        lengths[line.split("\t")[0]] = int(line.split("\t")[1])
    assert stats["sequences"] == len(lengths) == 1
    assert stats["total_length"] == stats["n50"] == sum(lengths.values()) == 48502
    assert abs(stats["gc_fraction"] - 0.4986) < 5e-4  # NCBI's NC_001416.1: GC 49.86 %
    several = tmp_path / "several.fa.gz"
    with gzip.open(several, "wt") as handle:  # 40, 30, 20, 10 bp: half the bases by 30
        for name, seq in (("a", "GC" * 5), ("b", "AT" * 8 + "NNNN"), ("c", "ACGT" * 7 + "AC")):
            handle.write(f">{name} description\n{seq}\n")
        handle.write(">d\n" + "G" * 20 + "\n" + "A" * 20 + "\n")
    result = fasta_stats(several)
    assert result["sequences"] == 4 and result["total_length"] == 100
    assert result["n50"] == 30 and result["n_bases"] == 4
    assert result["gc_fraction"] == pytest.approx((10 + 0 + 15 + 20) / 96)
    capsys.readouterr()
    assert main(["fasta-stats", str(several), str(LAMBDA), "--json"]) == 0  # the quick command
    printed = json.loads(capsys.readouterr().out)
    assert [row["n50"] for row in printed] == [30, 48502] and printed[0]["file"] == str(several)
    with pytest.raises(SystemExit) as exit_:  # not a FASTA: exit 2, one line on stderr
        main(["fasta-stats", str(plain.with_suffix(".fa.fai"))])
    assert exit_.value.code == 2
    assert "not a FASTA file" in capsys.readouterr().err


def test_truth_is_written_as_bcftools_normalizes_it(lambda_truth: Truth, tmp_path: Path) -> None:
    truth = lambda_truth.variants
    assert (truth["type"] == "snv").sum() == 150 and (truth["type"] == "indel").sum() == 40
    sizes = (truth["ref"].str.len() - truth["alt"].str.len())[truth["type"] == "indel"]
    assert (sizes > 0).sum() == (sizes < 0).sum() == 20 and sizes.abs().max() <= 10
    normalized = tmp_path / "norm.vcf"
    reference = str(lambda_truth.reference)
    command = ["bcftools", "norm", "-f", reference, "-o", str(normalized), str(lambda_truth.vcf)]
    subprocess.run(command, check=True, capture_output=True)
    assert vcf_records_plain(normalized).equals(vcf_records_plain(lambda_truth.vcf))


def vcf_records_plain(path: Path) -> pd.DataFrame:
    lines = [line.split("\t")[:5] for line in path.read_text().splitlines() if line[0] != "#"]
    table = pd.DataFrame(lines, columns=["chrom", "pos", "id", "ref", "alt"])
    return table.astype({"pos": int}).drop(columns="id")


@pytest.mark.parametrize("aligner", ["bwa", "bowtie2"])
def test_planted_variants_are_recovered(
    lambda_truth: Truth, run_steps: StepRunner, aligner: str
) -> None:
    inputs = {
        "reference": str(lambda_truth.reference),
        "samplesheet": str(lambda_truth.samplesheet),
    }
    results = run_steps("dna", STEPS, inputs, index={"aligner": aligner}, call={"ploidy": 1})
    bam = results["bam"]["output"]["metrics"]
    assert bam["sim.mapping_rate"] > 99 and 25 < bam["sim.mean_depth"] < 35
    assert bam["sim.duplicate_rate"] == pytest.approx(100 * 0.03 / 1.03, abs=1.0)  # planted
    assert results["bam"]["checks"]["mapping_rate"]["passed"]
    kept = {p.name for step in ("align", "bam") for p in results[step]["dir"].iterdir()}
    assert kept == {
        "alignments.tsv",
        "sim.bam",
        "bam_stats.tsv",
        "depth_windows.tsv",
        "sim.bam.bai",
    }
    folder = results["variants"]["dir"]
    calls = pd.read_csv(folder / "variants.tsv", sep="\t")
    scores = score_calls(lambda_truth.variants, calls)
    snv, indel = scores["snv"], scores["indel"]
    print(
        f"\n{aligner}: SNV recall {snv['recall']:.3f} precision {snv['precision']:.3f} "
        f"({snv['true_positives']}/{snv['truth']} of {snv['called']} calls); indel recall "
        f"{indel['recall']:.3f} precision {indel['precision']:.3f} "
        f"({indel['true_positives']}/{indel['truth']} of {indel['called']} calls)"
    )
    assert snv["recall"] >= 0.95 and snv["precision"] >= 0.98
    assert indel["recall"] >= 0.80
    # the table is the VCF's records, QUAL and DP filters applied
    records = vcf_records(folder / "variants.vcf.gz")
    assert list(calls.columns[:6]) == EXPORT
    assert calls[["chrom", "pos", "ref", "alt", "depth"]].equals(records)
    assert (calls["qual"] >= 20).all() and (calls["depth"] >= 5).all()
    # ploidy 1: haploid genotypes (``1``), not diploid ones (``1/1``)
    assert set(genotypes(folder / "variants.vcf.gz")) == {"1"}
    # the genome called in one piece gives the same calls as in one piece per thread
    assert results["call"]["output"]["metrics"]["regions"] == 2
    whole = folder.parent / "call_whole"
    whole.mkdir()
    config = resolve("dna", [Layer("t", {"name": "t", "domain": "dna"})]).config
    done = {name: results[name] for name in ("reference", "bam")}
    ctx = StepContext(
        "call",
        {**config["steps"]["call"]["config"], "ploidy": 1},
        inputs,
        1,
        whole,
        inputs={k: v["output"] for k, v in done.items()},
        input_dirs={k: v["dir"] for k, v in done.items()},
    )
    assert execute_step(step("dna", "call").run, ctx)["status"] == "completed"
    split = pd.read_csv(results["call"]["dir"] / "calls.tsv", sep="\t")
    assert pd.read_csv(whole / "calls.tsv", sep="\t").equals(split) and len(split) > 150
    report = results["report"]["dir"]
    assert (report / "depth.png").stat().st_size > 1000
    assert (report / "call_quality.png").stat().st_size > 1000
    assert "| sim " in (report / "report.md").read_text()


def _bad(tmp_path: Path, name: str, domain_specific: dict) -> dict:
    """Run one dna step alone; its result record (it must fail; the core then drops its
    staging folder)."""
    out = tmp_path / name
    out.mkdir(parents=True)
    ctx = StepContext(name, {}, domain_specific, 1, out)
    result = execute_step(step("dna", name).run, ctx)
    assert result["status"] == "failed"
    return result


def test_bad_samplesheets_say_which_row_and_column(tmp_path: Path) -> None:
    reads = EXAMPLES / "reads"
    no_column = tmp_path / "no_column.tsv"
    no_column.write_text(f"sample\tfastq_1\nx\t{reads / 'reads_1.fq.gz'}\n")
    error = _bad(tmp_path, "reads", {"samplesheet": str(no_column)})["errors"][0]
    assert f"{no_column} has no column fastq_2" in error
    missing = tmp_path / "missing.tsv"
    (tmp_path / "r1.fq").write_text("@r\nACGT\n+\nIIII\n")
    missing.write_text("sample\tfastq_1\tfastq_2\nok\tr1.fq\tr1.fq\nbad\tr1.fq\tgone_2.fq\n")
    error = _bad(tmp_path / "a", "reads", {"samplesheet": str(missing)})["errors"][0]
    assert error.startswith(f"samplesheet: {missing} line 3: fastq_2 'gone_2.fq'")
    uneven = tmp_path / "uneven.tsv"
    uneven.write_text(f"sample\tfastq_1\tfastq_2\ns1\tr1.fq\t{reads / 'reads_2.fq.gz'}\n")
    error = _bad(tmp_path / "b", "reads", {"samplesheet": str(uneven)})["errors"][0]
    assert "line 2: sample s1: fastq_1 has 1 reads, fastq_2 10000" in error


def test_an_accession_is_refused_with_what_to_do(tmp_path: Path) -> None:
    for accession in ("GCF_000840245.1", "NC_001416"):
        error = _bad(tmp_path / "runs" / accession, "reference", {"reference": accession})
        message = error["errors"][0]
        assert f"{accession!r} looks like an assembly or sequence accession" in message
        assert "needs the internet" in message and "local path" in message
    missing = _bad(tmp_path / "m", "reference", {"reference": str(tmp_path / "genome.fa")})
    assert "does not exist" in missing["errors"][0]
    reads = str(EXAMPLES / "reads" / "reads_1.fq.gz")  # a FASTQ where the FASTA goes
    error = _bad(tmp_path / "q", "reference", {"reference": reads})["errors"][0]
    assert error == f"reference: {reads} line 1: sequence before the first '>' header: " + (
        "not a FASTA file"
    )


def test_demo_end_to_end_and_reads_of_another_genome(
    omics_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped demo (bowtie2-examples' lambda reads) through ``omics run`` and ``omics
    export``; then reads of another genome: a WARN check and a report that says so, not a
    failed run; then an accession as the reference: a failed run that says why."""
    assert main(["run", "--workflow", "dna", "--quiet"]) == 0
    key = run_key(capsys)
    inst = cli.instance()
    bam = materialization(inst, "dna/bam", key)
    read_bases = 0
    for mate in ("reads_1.fq.gz", "reads_2.fq.gz"):
        with gzip.open(EXAMPLES / "reads" / mate, "rt") as handle:
            read_bases += sum(len(line) - 1 for n, line in enumerate(handle) if n % 4 == 1)
    mapped = bam["metric/lambda.mapping_rate"]
    expected_depth = read_bases * mapped / 100 / 48502
    assert mapped > 90 and bam["metric/lambda.mean_depth"] == pytest.approx(expected_depth, 0.1)
    assert check_evaluation(inst, "dna/bam", "mapping_rate").passed
    gts = genotypes(
        Path(materialization(inst, "dna/variants", key)["output_dir"]) / "variants.vcf.gz"
    )
    assert len(gts) > 20 and all(gt.isdigit() for gt in gts)  # ploidy 1: "1", never "1/1"
    report = materialization(inst, "dna/report", key)["report"]
    assert report.count("data:image/png;base64,") == 2 and "| lambda " in report
    out = tmp_path / "variants.tsv"
    assert main(["export", "--workflow", "dna", "--step", "variants", "--out", str(out)]) == 0
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == EXPORT and len(table) > 20
    folder = Path(materialization(inst, "dna/variants", key)["output_dir"])
    records = vcf_records(folder / "variants.vcf.gz")
    assert table[["chrom", "pos", "ref", "alt", "depth"]].equals(records)

    other = tmp_path / "other"
    other.mkdir()
    fq1, fq2 = simulate_reads(random_genome(30_000, seed=5), other, "other", seed=5, coverage=10)
    sheet = other / "sheet.tsv"
    sheet.write_text(f"sample\tfastq_1\tfastq_2\nother\t{fq1.name}\t{fq2.name}\n")
    param = f"domain_specific.samplesheet={sheet}"
    assert main(["run", "--workflow", "dna", "--quiet", "--param", param]) == 0
    key = run_key(capsys)
    check = check_evaluation(inst, "dna/bam", "mapping_rate")
    assert not check.passed and check.severity.value == "WARN"
    assert check.description.startswith("1 of 1 samples map under 80 %: other ")
    bam = materialization(inst, "dna/bam", key)
    assert bam["metric/other.mapping_rate"] < 5
    assert "only" in bam["step_result"]["warnings"][0]
    report = materialization(inst, "dna/report", key)["report"]
    assert "reads that do not match the reference" in report and "not an error" in report

    folders = Path(materialization(inst, "dna/reference", key)["output_dir"]).parent
    before = sorted(p.name for p in folders.iterdir())
    param = "domain_specific.reference=GCF_000840245.1"
    assert main(["run", "--workflow", "dna", "--quiet", "--param", param]) != 0
    printed = capsys.readouterr()
    assert "'GCF_000840245.1' looks like an assembly" in printed.out + printed.err
    assert sorted(p.name for p in folders.iterdir()) == before  # no staging or half folder


def test_samplesheet_paths_are_read_where_the_core_confines_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dropped samplesheet's FASTQ cell is resolved by the step exactly as the core's
    confinement resolves it (no stripping, ``~`` expanded, relative to the sheet): a leading
    space before an absolute path outside the allowed root cannot slip past the check."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    for folder in (root, outside):
        for mate in (1, 2):
            (folder / f"x_{mate}.fq").write_text("@r\nACGT\n+\nIIII\n")
    monkeypatch.setenv("HOME", str(outside))
    sheet = root / "sub" / "sheet.tsv"
    values = [f" {outside}/x_1.fq", "~/x_1.fq", "../x_1.fq", f"{root}/x_2.fq", " x_1.fq"]
    for value in values:  # the step's path is the core's, whatever the core then decides
        expected = confine(value, [Path("/")], "fastq", base=sheet.parent)
        assert reads.sheet_file(sheet, value).resolve() == expected
    sheet.write_text(f"sample\tfastq_1\tfastq_2\ns\t {outside}/x_1.fq\t {outside}/x_2.fq\n")
    assert _sheet_reads(sheet, (root,)) == []  # relative, absent: nothing for the core to check
    error = _bad(tmp_path / "run", "reads", {"samplesheet": str(sheet)})["errors"][0]
    assert f"line 2: fastq_1 ' {outside}/x_1.fq' does not exist ({root / 'sub'}/ " in error
    assert "spaces around it are part of the name" in error
    assert not (tmp_path / "run" / "reads.tsv").exists()


def test_a_gapped_or_protein_fasta_is_not_a_reference(tmp_path: Path) -> None:
    """Gaps ('-', '.') and stops ('*') are refused in a reference, not counted in its length:
    an alignment or a protein is not a genome."""
    for name, text, line, char in (
        ("gapped.fa", ">a\nACGTNRYK\nAC--GT\n", 3, "-"),
        ("dotted.fa.gz", ">a\nACGT\n>b\nAC.GT\n", 4, "."),
        ("protein.fa", ">p\nMKTAYIAKQR*\n", 2, "I"),  # M, K, Y are IUPAC codes
    ):
        path = tmp_path / name
        data = text.encode()
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        error = _bad(tmp_path / name.split(".")[0], "reference", {"reference": str(path)})
        assert error["errors"][0].startswith(f"reference: {path} line {line} column ")
        assert f"{char!r} is not a nucleotide" in error["errors"][0]
        assert not list((tmp_path / name.split(".")[0]).glob("*.fai"))


def test_score_calls_matches_exact_normalized_alleles() -> None:
    """The scorer counts a call only when chrom, pos, ref and alt all equal the truth's: a
    wrong ALT base and an indel not left-aligned are misses and false calls."""
    truth = pd.DataFrame(
        [
            ("c", 10, "A", "G"),
            ("c", 20, "C", "T"),
            ("c", 30, "G", "GA"),  # insertion, left-aligned in AAA...: anchor at 30
            ("c", 40, "TCC", "T"),
        ],
        columns=["chrom", "pos", "ref", "alt"],
    )
    calls = pd.DataFrame(
        [
            ("c", 10, "A", "G"),  # right
            ("c", 20, "C", "A"),  # wrong alt
            ("c", 32, "A", "AA"),  # the same insertion, not left-aligned
            ("c", 40, "TCC", "T"),  # right
            ("c", 50, "G", "C"),  # not in the truth
        ],
        columns=["chrom", "pos", "ref", "alt"],
    )
    scores = score_calls(truth, calls)
    assert scores["snv"] == {
        "truth": 2,
        "called": 3,
        "true_positives": 1,
        "recall": 0.5,
        "precision": 1 / 3,
    }
    assert scores["indel"] == {
        "truth": 2,
        "called": 2,
        "true_positives": 1,
        "recall": 0.5,
        "precision": 0.5,
    }
