# DSS, the reference of the epigenome tests. Usage:
#   Rscript dss_peer.R OUTDIR REGION_START REGION_END SIM_SAMPLESHEET
# 1. exports BS.chr22 to OUTDIR/bschr22/{r1,r2}.cov.gz (epigenome_bschr22.R);
# 2. DMLtest(smoothing = TRUE, smoothing.span = 500) of r2 against r1 on chr22:START-END, at
#    the CpGs both replicates cover -> OUTDIR/bschr22_dml.tsv; callDMR at its defaults ->
#    OUTDIR/bschr22_dmrs.tsv;
# 3. the same test of treated against control on the simulated cohort (3 vs 3) -> its per-CpG
#    table OUTDIR/sim_dml.tsv (group1 = treated, group2 = control), its DMRs OUTDIR/sim_dmrs.tsv
#    (callDMR defaults: p < 1e-5, minlen 50, minCG 3, pct.sig 0.5, dis.merge 100, which callDMR
#    lowers to minlen: 50 bp) and OUTDIR/sim_dmrs_p1e-4.tsv (the same at p < 1e-4, our dmrs
#    step's default).
# Seconds each DSS run took -> OUTDIR/seconds.tsv.
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 4) stop("usage: Rscript dss_peer.R OUTDIR START END SIM_SAMPLESHEET")
outdir <- args[1]
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(dirname(script), "epigenome_bschr22.R"))
suppressPackageStartupMessages(library(DSS))

write_tsv <- function(table, name) {
  write.table(table, file.path(outdir, name), sep = "\t", quote = FALSE, row.names = FALSE)
}
dmr_table <- function(dmrs) {
  if (is.null(dmrs)) return(data.frame(chr = character(0), start = integer(0), end = integer(0)))
  dmrs
}
seconds <- c()

export_bschr22(file.path(outdir, "bschr22"))
data(BS.chr22, package = "bsseq")
region <- start(BS.chr22) >= as.numeric(args[2]) & start(BS.chr22) <= as.numeric(args[3])
both <- rowSums(as.matrix(getCoverage(BS.chr22, type = "Cov")) > 0) == 2
bs <- BS.chr22[region & both]
took <- system.time(dml <- DMLtest(bs, group1 = "r2", group2 = "r1", smoothing = TRUE,
                                   smoothing.span = 500, ncores = 1))
seconds["bschr22_dmltest"] <- took[["elapsed"]]
write_tsv(dml[, c("chr", "pos", "mu1", "mu2", "phi1", "phi2", "diff", "stat", "pval")],
          "bschr22_dml.tsv")
write_tsv(dmr_table(suppressWarnings(callDMR(dml))), "bschr22_dmrs.tsv")

sheet <- read.delim(args[4], colClasses = "character")
read_cov <- function(path) {
  cov <- read.delim(gzfile(path), header = FALSE)
  data.frame(chr = cov$V1, pos = cov$V2, N = cov$V5 + cov$V6, X = cov$V5)
}
paths <- file.path(dirname(args[4]), sheet$coverage)
sim <- makeBSseqData(lapply(paths, read_cov), sheet$sample)
control <- sheet$sample[sheet$condition == "control"]
treated <- sheet$sample[sheet$condition == "treated"]
took <- system.time(dml <- DMLtest(sim, group1 = treated, group2 = control, smoothing = TRUE,
                                   smoothing.span = 500, ncores = 1))
seconds["sim_dmltest"] <- took[["elapsed"]]
columns <- c("chr", "pos", "mu1", "mu2", "phi1", "phi2", "diff", "diff.se", "stat", "pval")
write_tsv(dml[, columns], "sim_dml.tsv")
write_tsv(dmr_table(suppressWarnings(callDMR(dml))), "sim_dmrs.tsv")
write_tsv(dmr_table(suppressWarnings(callDMR(dml, p.threshold = 1e-4))), "sim_dmrs_p1e-4.tsv")
write_tsv(data.frame(run = names(seconds), seconds = seconds), "seconds.tsv")
