# Export bsseq's BS.chr22 (human WGBS, chromosome 22, IMR90 replicates r1 and r2) to Bismark
# coverage files: <outdir>/r1.cov.gz and r2.cov.gz, lines "chrom start end percent meth unmeth"
# (1-based, start = end), CpGs without reads left out, as Bismark writes them.
# Usage: Rscript epigenome_bschr22.R OUTDIR   (or source() it and call export_bschr22(outdir))
export_bschr22 <- function(outdir) {
  suppressPackageStartupMessages(library(bsseq))
  data(BS.chr22, package = "bsseq", envir = environment())
  dir.create(outdir, showWarnings = FALSE, recursive = TRUE)
  meth <- as.matrix(getCoverage(BS.chr22, type = "M"))
  cov <- as.matrix(getCoverage(BS.chr22, type = "Cov"))
  chrom <- as.character(seqnames(BS.chr22))
  pos <- start(BS.chr22)
  paths <- character(0)
  for (sample in colnames(cov)) {
    seen <- cov[, sample] > 0
    m <- meth[seen, sample]
    n <- cov[seen, sample]
    lines <- data.table::data.table(chrom[seen], pos[seen], pos[seen], 100 * m / n, m, n - m)
    path <- file.path(outdir, paste0(sample, ".cov.gz"))
    data.table::fwrite(lines, path, sep = "\t", col.names = FALSE, compress = "gzip")
    paths <- c(paths, path)
  }
  invisible(paths)
}

if (sys.nframe() == 0) {
  args <- commandArgs(trailingOnly = TRUE)
  if (length(args) != 1) stop("usage: Rscript epigenome_bschr22.R OUTDIR")
  cat(export_bschr22(args[1]), sep = "\n")
}
