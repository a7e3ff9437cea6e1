# vegan's reference values for tests/omics/test_ecology.py, on vegan's own data sets.
# Usage: Rscript vegan_reference.R OUT_DIR PERMUTATIONS
# Writes, per data set (dune, varespec, BCI), into OUT_DIR:
#   <set>_counts.tsv    the community table vegan used (sample, then one column per taxon)
#   <set>_env.tsv       sample and the tested factor (column "factor")
#   <set>_diversity.tsv sample, richness (specnumber), shannon, simpson, invsimpson (diversity)
#   <set>_bray.tsv, <set>_jaccard.tsv  vegdist matrices (jaccard with binary = TRUE)
#   <set>_pcoa_eig.tsv  eigenvalues of cmdscale(bray, k = n - 1, eig = TRUE)
#   <set>_pcoa_points.tsv  its sample coordinates (sample, then PC1 ... on the axes of
#                       positive eigenvalues; each axis' sign is arbitrary)
#   <set>_permutations.tsv  the permutations adonis2 used (rows; 1-based sample indices)
#   <set>_adonis.tsv    metric, pseudo_f, r2, p of adonis2(dist ~ factor) with those permutations
#   <set>_rarefy.tsv    sample, depth, expected richness and its se (rarefy, se = TRUE); integer
#                       tables only (dune, BCI), at the smallest sample total (dune's integers
#                       are cover classes: the test compares the function, not the step)
# Factors: dune.env$Management; BCI.env$Habitat; varespec has no factor: Al_level, "high" where
# varechem$Al is above its median, else "low" (derived here and stated in the test).
# Numbers are written with 17 significant digits (R's write.table keeps 15).
suppressMessages(library(vegan))
args <- commandArgs(trailingOnly = TRUE)
out <- args[1]
permutations <- as.integer(args[2])

write_tsv <- function(frame, name) {
  for (column in names(frame)) {
    if (is.double(frame[[column]])) frame[[column]] <- sprintf("%.17g", frame[[column]])
  }
  write.table(frame, file.path(out, name), sep = "\t", quote = FALSE, row.names = FALSE)
}

with_sample <- function(x) cbind(data.frame(sample = rownames(x)), as.data.frame(x, optional = TRUE))

reference <- function(name, x, factor, integer_counts) {
  x <- as.matrix(x)
  write_tsv(with_sample(x), paste0(name, "_counts.tsv"))
  write_tsv(data.frame(sample = rownames(x), factor = as.character(factor)), paste0(name, "_env.tsv"))
  write_tsv(data.frame(
    sample = rownames(x),
    richness = specnumber(x),
    shannon = diversity(x, "shannon"),
    simpson = diversity(x, "simpson"),
    invsimpson = diversity(x, "invsimpson")
  ), paste0(name, "_diversity.tsv"))
  distances <- list(
    bray_curtis = vegdist(x, "bray"),
    jaccard = vegdist(x, "jaccard", binary = TRUE)
  )
  write_tsv(with_sample(as.matrix(distances$bray_curtis)), paste0(name, "_bray.tsv"))
  write_tsv(with_sample(as.matrix(distances$jaccard)), paste0(name, "_jaccard.tsv"))
  # cmdscale warns that only the axes of positive eigenvalues have points
  fit <- suppressWarnings(cmdscale(distances$bray_curtis, k = nrow(x) - 1, eig = TRUE))
  write_tsv(data.frame(eigenvalue = fit$eig), paste0(name, "_pcoa_eig.tsv"))
  points <- fit$points
  colnames(points) <- paste0("PC", seq_len(ncol(points)))
  write_tsv(with_sample(points), paste0(name, "_pcoa_points.tsv"))
  set.seed(1)
  perm <- shuffleSet(nrow(x), permutations)
  write.table(perm, file.path(out, paste0(name, "_permutations.tsv")),
    sep = "\t", quote = FALSE, row.names = FALSE, col.names = FALSE)
  env <- data.frame(factor = factor)
  rows <- lapply(names(distances), function(metric) {
    fit <- adonis2(distances[[metric]] ~ factor, data = env, permutations = perm)
    data.frame(metric = metric, pseudo_f = fit$F[1], r2 = fit$R2[1], p = fit[["Pr(>F)"]][1])
  })
  write_tsv(do.call(rbind, rows), paste0(name, "_adonis.tsv"))
  if (integer_counts) {
    depth <- min(rowSums(x))
    rare <- rarefy(x, depth, se = TRUE)
    write_tsv(data.frame(
      sample = rownames(x), depth = depth, expected = rare["S", ], se = rare["se", ]
    ), paste0(name, "_rarefy.tsv"))
  }
}

data(dune, dune.env, varespec, varechem, BCI, BCI.env)
reference("dune", dune, dune.env$Management, TRUE)
reference("varespec", varespec, ifelse(varechem$Al > median(varechem$Al), "high", "low"), FALSE)
reference("BCI", BCI, BCI.env$Habitat, TRUE)
write_tsv(data.frame(vegan = as.character(packageVersion("vegan"))), "version.tsv")
