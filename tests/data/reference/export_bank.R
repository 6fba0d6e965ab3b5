## export_bank.R -- write the data sets of the multi-factor mixed-model bank
## (bank.R fits them) from the R packages lme4, nlme and mlmRev into
## hierarchical/datasets/<file>.csv (gzip when over 300 KB).
##
## Run from the repository root:   Rscript tests/data/reference/export_bank.R
##
## Only the columns a model uses (plus its grouping ids) are kept, in the package's row
## order. Factors become plain text, or integers when their labels are integers. Derived
## columns are listed in `derived` below and in hierarchical/datasets/PROVENANCE.md.
## Numbers are written with 15 significant digits (R's write.csv default); text is not quoted.

suppressPackageStartupMessages({ library(lme4); library(nlme); library(mlmRev) })

here <- function() {
  a <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f) == 1) dirname(normalizePath(f)) else getwd()
}
OUT <- normalizePath(file.path(here(), "..", "..", "..", "hierarchical", "datasets"))

## factor -> integer when every label is an integer, else text
plain <- function(d) {
  for (cc in names(d)) if (is.factor(d[[cc]])) {
    lab <- as.character(d[[cc]])
    d[[cc]] <- if (all(grepl("^-?[0-9]+$", lab))) as.integer(lab) else lab
  }
  d
}

write_one <- function(d, file) {
  d <- plain(as.data.frame(d))
  rownames(d) <- NULL
  txt <- vapply(d, is.character, logical(1))
  stopifnot(!any(vapply(d[txt], function(x) any(grepl("[,\"]", x)), logical(1))))  # so no quoting is needed
  path <- file.path(OUT, file)
  write.csv(d, path, row.names = FALSE, quote = FALSE)
  if (file.size(path) > 300 * 1024) {
    gz <- paste0(path, ".gz")
    con <- gzfile(gz, "w"); write.csv(d, con, row.names = FALSE, quote = FALSE); close(con)
    file.remove(path); path <- gz
  }
  cat(sprintf("%-28s %6d rows  %s\n", basename(path), nrow(d), paste(names(d), collapse = ", ")))
}

Pastes <- lme4::Pastes
write_one(Pastes[, c("batch", "cask", "strength")], "pastes.csv")

write_one(lme4::Penicillin[, c("plate", "sample", "diameter")], "penicillin.csv")

write_one(as.data.frame(nlme::Oats)[, c("Block", "Variety", "nitro", "yield")], "oats.csv")

write_one(as.data.frame(nlme::Machines)[, c("Worker", "Machine", "score")], "machines.csv")

write_one(as.data.frame(nlme::Oxide)[, c("Source", "Lot", "Wafer", "Thickness")], "oxide.csv")

write_one(as.data.frame(nlme::Assay)[, c("Block", "sample", "dilut", "logDens")], "assay.csv")

px <- as.data.frame(nlme::Pixel)[, c("Dog", "Side", "day", "pixel")]
px$day2 <- px$day^2                                   # derived: day^2
write_one(px[, c("Dog", "Side", "day", "day2", "pixel")], "pixel.csv")

write_one(mlmRev::ScotsSec[, c("primary", "second", "sex", "verbal", "social", "attain")],
          "scotssec.csv")

eg <- mlmRev::egsingle
## childid is unique across schools (checked in bank.R): `child` is childid, renamed
stopifnot(all(tapply(eg$schoolid, eg$childid, function(s) length(unique(s))) == 1))
eg$child <- eg$childid
write_one(eg[, c("schoolid", "child", "year", "math")], "egsingle.csv")

ch <- mlmRev::Chem97
stopifnot(nrow(unique(ch[, c("lea", "school")])) == nlevels(ch$school))  # school ids unique across lea
write_one(ch[, c("lea", "school", "gcsecnt", "score")], "chem97.csv")

gt <- lme4::grouseticks
gt$height_z <- as.numeric(scale(gt$HEIGHT))           # derived: (HEIGHT - mean) / sd
write_one(gt[, c("INDEX", "BROOD", "LOCATION", "YEAR", "HEIGHT", "height_z", "TICKS")],
          "grouseticks.csv")

va <- lme4::VerbAgg
va$r2 <- as.integer(va$r2 == "Y")                    # derived: Y -> 1, N -> 0
write_one(va[, c("id", "item", "Anger", "Gender", "btype", "situ", "r2")], "verbagg.csv")

cb <- lme4::cbpp
cb$obs <- seq_len(nrow(cb))                          # derived: observation id 1..56
write_one(cb[, c("herd", "obs", "period", "incidence", "size")], "cbpp_obs.csv")

ar <- lme4::Arabidopsis
ar$total_fruits <- ar$total.fruits                   # renamed: total.fruits -> total_fruits
write_one(ar[, c("popu", "gen", "rack", "nutrient", "amd", "status", "total_fruits")],
          "arabidopsis.csv")

ct <- mlmRev::Contraception
ct$use <- as.integer(ct$use == "Y")                  # derived: Y -> 1, N -> 0
ct$age2 <- ct$age^2                                  # derived: age^2
## contraception.csv (Y/N, no age2) already ships with the package: this is a separate file
write_one(ct[, c("district", "urban", "livch", "age", "age2", "use")], "contraception_bank.csv")

write_one(as.data.frame(nlme::Oxboys)[, c("Subject", "age", "height")], "oxboys.csv")
