"""Bad input: each case fails with a message that says what is wrong and where, and nothing
that completed before is lost."""

import gzip
import shutil
from pathlib import Path

import pytest

from omics_assets.cli import main
from omics_assets.demo import GEMMA_EXAMPLE, KALLISTO_TEST
from omics_assets.science import reads
from omics_assets.science.gwas import stage_genotypes
from omics_assets.science.steps import InputError, StepContext, execute_step
from tests.omics.conftest import gunzip


def sheet(tmp_path: Path, text: str, name: str = "sheet.tsv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_samplesheet_errors_name_the_line(tmp_path: Path) -> None:
    fastq = KALLISTO_TEST / "reads_1.fastq.gz"
    with pytest.raises(InputError, match=r"has no column condition \(columns: sample, fastq_1\)"):
        reads.read_samplesheet(sheet(tmp_path, f"sample\tfastq_1\na\t{fastq}\n"), True)
    with pytest.raises(InputError, match=r"line 4: sample 'a' appears more than once"):
        reads.read_samplesheet(sheet(tmp_path, "sample\tcondition\na\tx\nb\ty\na\tz\n"), False)
    with pytest.raises(InputError, match=r"line 3: fastq_1 'missing.fq.gz' does not exist"):
        reads.read_samplesheet(
            sheet(tmp_path, f"sample\tcondition\tfastq_1\na\tx\t{fastq}\nb\ty\tmissing.fq.gz\n"),
            True,
        )
    with pytest.raises(InputError, match=r"line 2: sample '\.\./x' must be"):
        reads.read_samplesheet(sheet(tmp_path, "sample\tcondition\n../x\tc\n"), False)
    # blank lines and extra columns are fine; line numbers still count them
    table = reads.read_samplesheet(
        sheet(tmp_path, "sample\tcondition\tnote\n\na\tx\thello\n\nb\ty\t\n"), False
    )
    assert table["sample"].tolist() == ["a", "b"]
    with pytest.raises(InputError, match="line 5: condition is empty"):
        reads.read_samplesheet(sheet(tmp_path, "sample\tcondition\na\tx\n\n\nb\t\n"), False)


def test_damaged_fastq_is_refused(tmp_path: Path) -> None:
    good = KALLISTO_TEST / "reads_1.fastq.gz"
    assert reads.check_fastq(good) == 10_000
    data = good.read_bytes()
    truncated = tmp_path / "truncated.fastq.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"truncated\.fastq\.gz is damaged or not gzip"):
        reads.check_fastq(truncated)
    plain = tmp_path / "plain.fastq.gz"
    plain.write_text("@r1\nACGT\n+\nIIII\n")
    with pytest.raises(InputError, match=r"plain\.fastq\.gz is damaged or not gzip-compressed"):
        reads.check_fastq(plain)
    cut = tmp_path / "cut.fastq.gz"
    with gzip.open(cut, "wt") as handle:
        handle.write("@r1\nACGT\n+\nIIII\n@r2\nACGT\n")
    with pytest.raises(InputError, match=r"cut\.fastq\.gz is truncated: 6 lines"):
        reads.check_fastq(cut)
    fasta = tmp_path / "reads.fastq.gz"
    with gzip.open(fasta, "wt") as handle:
        handle.write(">r1\nACGT\n")
    with pytest.raises(InputError, match="line 1: expected @"):
        reads.check_fastq(fasta)


def _stage(tmp_path: Path, spec: dict) -> dict:
    out = tmp_path / "staged"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    ctx = StepContext("genotypes", {}, spec, 1, out)
    return execute_step(stage_genotypes, ctx)


def _hs1940(tmp_path: Path) -> Path:
    for ext in ("bed", "bim", "fam"):
        gunzip(GEMMA_EXAMPLE / f"mouse_hs1940.{ext}.gz", tmp_path / f"mice.{ext}")
    return tmp_path / "mice"


def test_bim_and_bed_of_different_sizes(tmp_path: Path) -> None:
    prefix = _hs1940(tmp_path)
    bim = Path(f"{prefix}.bim")
    bim.write_text("".join(bim.read_text().splitlines(keepends=True)[:-1]))
    result = _stage(tmp_path, {"genotypes": str(prefix)})
    assert result["status"] == "failed"
    message = result["errors"][0]
    assert f"{prefix}.bed has 5929613 bytes" in message and "12225 variants" in message
    assert "are not one set" in message
    Path(f"{prefix}.bed").write_bytes(b"not a bed file")
    assert "bad magic" in _stage(tmp_path, {"genotypes": str(prefix)})["errors"][0]
    Path(f"{prefix}.fam").unlink()
    missing = _stage(tmp_path, {"genotypes": str(prefix)})["errors"][0]
    assert f"genotypes: {prefix}.fam does not exist (nor {prefix}.fam.gz)" in missing


def test_phenotype_with_no_matching_samples(tmp_path: Path) -> None:
    prefix = _hs1940(tmp_path)
    pheno = sheet(tmp_path, "FID\tIID\tweight\nx\tnobody\t1.0\ny\tnoone\t2.0\n", "pheno.tsv")
    result = _stage(
        tmp_path, {"genotypes": str(prefix), "phenotype": str(pheno), "trait": "weight"}
    )
    assert result["status"] == "failed"
    assert f"no IID of {pheno} is a sample of {prefix}" in result["errors"][0]
    wrong = sheet(tmp_path, "IID\theight\nA048005080\tabc\n", "typed.tsv")
    bad = _stage(tmp_path, {"genotypes": str(prefix), "phenotype": str(wrong), "trait": "height"})
    assert f"{wrong} line 2: height = 'abc' is not a number" in bad["errors"][0]
    missing = _stage(
        tmp_path, {"genotypes": str(prefix), "phenotype": str(wrong), "trait": "weight"}
    )
    assert "has no column 'weight'" in missing["errors"][0]


def test_vcf_and_phenotype_sample_counts_disagree(tmp_path: Path) -> None:
    vcf = tmp_path / "three.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=1,length=1000>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2\ts3\n"
        "1\t100\tv1\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1\t0/0\n"
        "1\t200\tv2\tC\tT\t.\tPASS\t.\tGT\t0/0\t0/1\t0/1\n"
    )
    pheno = sheet(tmp_path, "IID\ttrait\ns1\t1\ns2\t2\ns3\t3\ns4\t4\n", "four.tsv")
    result = _stage(tmp_path, {"genotypes": str(vcf), "phenotype": str(pheno), "trait": "trait"})
    assert result["status"] == "failed"
    assert (
        f"{pheno} has 4 samples but the VCF {vcf} has 3; not in the VCF: s4"
        in (result["errors"][0])
    )
    matching = sheet(tmp_path, "IID\ttrait\ns1\t1\ns2\t2\ns3\t3\n", "three.tsv")
    ok = _stage(tmp_path, {"genotypes": str(vcf), "phenotype": str(matching), "trait": "trait"})
    assert ok["status"] == "completed" and ok["output"]["metrics"]["variants"] == 2


def test_config_errors_exit_2_with_the_key_and_where(
    omics_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = sheet(tmp_path, "name: gwas\nsteps:\n  qc:\n    config: {maff: 0.1}\n", "typo.yaml")
    wrong = sheet(tmp_path, "name: gwas\nthreads: two\n", "wrong.yaml")
    cases = [
        (["validate", "--config", str(typo)], f"steps.qc.config.maff: unknown key ({typo} line 4)"),
        (["run", "--config", str(wrong)], f"threads = 'two' ({wrong} line 2)"),
        (
            ["run", "--workflow", "gwas", "--param", "steps.qc.config.nope=1"],
            "steps.qc.config has no key 'nope'",
        ),
        (["run", "--workflow", "gwas", "--run", "../escape"], "invalid key '../escape'"),
        (["run", "--workflow", "gwas", "--run", "a/b"], "invalid key 'a/b'"),
        (["run", "--workflow", "../gwas"], "no workflow named '../gwas'"),
        (["run", "--config", str(tmp_path / "absent.yaml")], "absent.yaml: no such config file"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_code:
            main(argv)
        assert exit_code.value.code == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not list((omics_home / "data").rglob("*escape*"))


def test_a_failed_step_loses_nothing(
    omics_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run whose phenotype matches no sample fails at its first step with the file named;
    the earlier run's step folders are untouched and no partial folder is left."""
    assert main(["run", "--workflow", "gwas", "--quiet"]) == 0
    data = omics_home / "data" / "omics" / "gwas" / "steps"
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}
    pheno = sheet(tmp_path, "IID\tweight\nnobody\t1\n", "strangers.tsv")
    config = sheet(
        tmp_path,
        f"name: gwas\ndomain_specific:\n  phenotype: {pheno}\n  trait: weight\n",
        "strangers.yaml",
    )
    assert main(["run", "--config", str(config), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert f"gwas__genotypes: gwas/genotypes: phenotype: no IID of {pheno}" in error
    after = {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}
    assert after == before  # nothing added, changed or removed
    assert not list(data.rglob("*.staging"))
