# One benchmark fit with rstanarm or brms: timings, diagnostics and posterior summaries as JSON.
#
#     Rscript benchmarks/stan/fit.R config.json out.json
#
# benchmarks/run.py writes the config: backend ("rstanarm" or "brms"), data (a CSV of the
# case's data frame), formula (lme4 syntax, the one we fit), family ("gaussian", "poisson",
# "bernoulli", or "meta": Gaussian with known standard errors in column `se`), factors
# (columns to read as factors), chains, warmup, draws, cores, seed.
#
# out.json, seconds by the wall clock:
#   load_seconds     library(rstanarm) or library(brms)
#   compile_seconds  brms: brm(chains = 0), which writes and compiles the Stan program;
#                    rstanarm's models are precompiled, so 0
#   seconds          the call that samples: stan_glmer, or update() of the compiled brms model
#   stan_seconds     Stan's own warm-up + sampling time, summed over chains / parallel chains
#   divergences, params: key -> [mean, mcse_mean, ess_bulk, rhat] for the fixed effects
#                    (beta[x], beta[f[level]]), the group SDs (<group>_sd[<term>]) and sigma,
#                    the keys run.py gives our summaries.
# Priors are each package's defaults (run.py's PRIORS says how they differ from ours).

args <- commandArgs(trailingOnly = TRUE)
config <- jsonlite::read_json(args[[1]], simplifyVector = TRUE)
elapsed <- function() proc.time()[["elapsed"]]

start <- elapsed()
suppressPackageStartupMessages(library(config$backend, character.only = TRUE))
load_seconds <- elapsed() - start

data <- read.csv(config$data)
for (column in config$factors) data[[column]] <- factor(data[[column]])
formula <- as.formula(config$formula)
iter <- config$warmup + config$draws

fixed_keys <- function(formula, data) {
  # Our names for the fixed-effect columns, keyed by R's: "(Intercept)" -> beta[Intercept],
  # "x" -> beta[x], "livch3+" (factor livch, level 3+) -> beta[livch[3+]].
  fixed <- delete.response(terms(lme4::nobars(formula)))
  X <- model.matrix(fixed, data)
  term <- c("Intercept", attr(fixed, "term.labels"))[attr(X, "assign") + 1]
  is_factor <- vapply(term, function(t) is.factor(data[[t]]), logical(1))
  level <- substring(colnames(X), nchar(term) + 1)
  keys <- ifelse(is_factor, sprintf("beta[%s[%s]]", term, level), sprintf("beta[%s]", colnames(X)))
  setNames(replace(keys, colnames(X) == "(Intercept)", "beta[Intercept]"), colnames(X))
}

sd_key <- function(group, term) sprintf("%s_sd[%s]", group, sub("^\\(Intercept\\)$", "Intercept", term))

# Each backend leaves `draws` (iterations x chains x parameters) and `keys`: R's parameter
# names -> ours, for the parameters compared.
if (config$backend == "rstanarm") {
  if (config$family == "meta") stop("rstanarm has no meta-analysis likelihood (known SEs)")
  family <- switch(config$family, gaussian = gaussian(), poisson = poisson(), bernoulli = binomial())
  compile_seconds <- 0
  start <- elapsed()
  # (x || g) written out as (1 | g) + (0 + x | g): the same model, in the syntax stan_glmer documents
  fit <- stan_glmer(lme4::expandDoubleVerts(formula), data = data, family = family,
                    chains = config$chains, cores = config$cores, iter = iter,
                    warmup = config$warmup, seed = config$seed, refresh = 0)
  seconds <- elapsed() - start
  stanfit <- fit$stanfit
  draws <- as.array(stanfit)
  # Sigma[g:a,b] are covariances: the diagonal's square roots are the group SDs
  sigmas <- grep("^Sigma\\[", dimnames(draws)[[3]], value = TRUE)
  parts <- regmatches(sigmas, regexec("^Sigma\\[(.+):(.+),(.+)\\]$", sigmas))
  diagonal <- vapply(parts, function(p) p[[3]] == p[[4]], logical(1))
  draws[, , sigmas[diagonal]] <- sqrt(draws[, , sigmas[diagonal]])
  sds <- setNames(vapply(parts[diagonal], function(p) sd_key(p[[2]], p[[3]]), ""), sigmas[diagonal])
  keys <- c(fixed_keys(formula, data), sds)
} else {
  family <- switch(config$family, gaussian = , meta = gaussian(), poisson = poisson(),
                   bernoulli = bernoulli())
  model <- if (config$family == "meta") as.formula(sub("~", "| se(se) ~", config$formula)) else formula
  start <- elapsed()
  compiled <- brm(model, data = data, family = family, chains = 0, silent = 2, refresh = 0)
  compile_seconds <- elapsed() - start
  start <- elapsed()
  fit <- update(compiled, recompile = FALSE, chains = config$chains, cores = config$cores,
                iter = iter, warmup = config$warmup, seed = config$seed, silent = 2, refresh = 0)
  seconds <- elapsed() - start
  stanfit <- fit$fit
  draws <- as.array(stanfit)
  # b_* come in the order of the fixed-effects design's columns (their names made syntactic)
  fixed <- grep("^b_", dimnames(draws)[[3]], value = TRUE)
  sds <- grep("^sd_", dimnames(draws)[[3]], value = TRUE)
  parts <- regmatches(sds, regexec("^sd_(.+)__(.+)$", sds))
  stopifnot(length(fixed) == length(fixed_keys(formula, data)))
  keys <- c(setNames(fixed_keys(formula, data), fixed),
            setNames(vapply(parts, function(p) sd_key(p[[2]], p[[3]]), ""), sds))
}
# (brms keeps a sigma fixed at 0 beside known standard errors)
if (config$family != "meta" && "sigma" %in% dimnames(draws)[[3]]) keys <- c(keys, sigma = "sigma")
keep <- draws[, , names(keys), drop = FALSE]
dimnames(keep)[[3]] <- keys

summarise <- function(draws) {
  # mean, MCSE of the mean, bulk ESS and r_hat per parameter: posterior's, else rstan's monitor
  if (requireNamespace("posterior", quietly = TRUE)) {
    s <- posterior::summarise_draws(posterior::as_draws_array(draws), "mean", "mcse_mean", "ess_bulk", "rhat")
    return(setNames(Map(c, s$mean, s$mcse_mean, s$ess_bulk, s$rhat), s$variable))
  }
  m <- rstan::monitor(draws, warmup = 0, print = FALSE)
  setNames(Map(c, m[, "mean"], m[, "se_mean"], m[, "Bulk_ESS"], m[, "Rhat"]), rownames(m))
}

jsonlite::write_json(list(
  load_seconds = load_seconds, compile_seconds = compile_seconds, seconds = seconds,
  stan_seconds = sum(rstan::get_elapsed_time(stanfit)) / min(config$chains, config$cores),
  divergences = rstan::get_num_divergent(stanfit), params = summarise(keep)
), args[[2]], auto_unbox = TRUE, digits = NA)
