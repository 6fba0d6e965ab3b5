## bank.R -- lme4 / glmmTMB reference fits for the bank of multi-factor mixed models.
##
## Reads hierarchical/datasets/<file>.csv (written by export_bank.R, see
## hierarchical/datasets/PROVENANCE.md), sets the factor coding the Python side uses,
## fits every model with lme4 and with glmmTMB, and writes bank.json next to this script.
##
## Run from the repository root:
##   Rscript tests/data/reference/bank.R 2>&1 | tee tests/data/reference/bank.log
##
## Estimation: Gaussian models by ML with lme4::lmer(REML = FALSE) (the REML fit is recorded
## too, as "lme4_reml") and glmmTMB (ML). GLMMs by glmer's Laplace approximation (nAGQ = 1)
## and glmmTMB's Laplace approximation. Default optimisers and controls, except
## glmmTMBControl(parallel = 1). R's BLAS here is the reference (single-threaded) BLAS.
## Each fit is run 5 times; `seconds` is the median elapsed time (system.time).
##
## Factor coding (matches the Python side, formulae's treatment coding): every factor's
## levels are sorted -- integer labels in numeric order, text in C-locale (code point)
## order, as Python's sorted() -- and the first level is the reference. Fixed-effect names
## are written as formulae writes them (`Variety[Marvellous]`, `sample[b]:dilut[2]`,
## `Intercept`); `fixed_name_map` gives R's name for each.

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(jsonlite)
  library(nlme)
  library(mlmRev)
})
lmer <- lme4::lmer            # nlme is attached too: keep lme4's generics
fixef <- lme4::fixef
VarCorr <- lme4::VarCorr

options(digits = 10, warn = 1)
here <- function() {
  a <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", a[grep("^--file=", a)])
  if (length(f) == 1) dirname(normalizePath(f)) else file.path(getwd(), "tests", "data", "reference")
}
HERE <- here()
DATA <- normalizePath(file.path(HERE, "..", "..", "..", "hierarchical", "datasets"))
REPS <- as.integer(Sys.getenv("BANK_REPS", "5"))      # for quick trial runs only
ONLY <- Sys.getenv("BANK_ONLY", "")                       # e.g. "pastes,oats": a subset (trial runs)

r_version <- R.version.string
pkg_versions <- sapply(c("lme4", "glmmTMB", "TMB", "Matrix", "nlme", "mlmRev", "jsonlite"),
                       function(p) as.character(packageVersion(p)), simplify = FALSE)
pkg_versions[["glmmTMB_built_with_Matrix"]] <-
  trimws(readLines(system.file("Matrix-version", package = "glmmTMB")))
pkg_versions[["glmmTMB_built_with_TMB"]] <-
  trimws(readLines(system.file("TMB-version", package = "glmmTMB")))
blas <- unname(extSoftVersion()["BLAS"])
cat(r_version, "\nBLAS:", blas, "\n"); str(pkg_versions)
ctrl_tmb <- glmmTMBControl(parallel = 1)

## ------------------------------------------------------------- data ----
read_bank <- function(file) read.csv(file.path(DATA, file), stringsAsFactors = FALSE)

## sorted levels: integers numerically, text in code-point order (= Python's sorted())
sorted_factor <- function(x) factor(x, levels = if (is.numeric(x)) sort(unique(x))
                                              else sort(unique(x), method = "radix"))

## the package's copy, transformed as export_bank.R does, compared with the CSV
plain <- function(x) if (is.factor(x)) as.character(x) else x
same_as_pkg <- function(csv, ref) {
  ref <- as.data.frame(ref)
  if (!identical(names(csv), names(ref)) || nrow(csv) != nrow(ref)) return(FALSE)
  all(vapply(names(csv), function(cc) {
    a <- csv[[cc]]; b <- plain(ref[[cc]])
    if (is.numeric(b) && is.numeric(a)) isTRUE(all.equal(as.numeric(a), as.numeric(b), tolerance = 1e-12))
    else identical(as.character(a), as.character(b))
  }, logical(1)))
}

## id, file, source, R formula, Python formula, columns the Python side must make
## categorical (integer labels used as fixed-effect factors), factor columns, the
## package copy (transformed like export_bank.R), and a note.
B <- list(
  list(id = "pastes", file = "pastes.csv", source = "lme4::Pastes", family = "gaussian",
       formula = strength ~ 1 + (1 | batch) + (1 | batch:cask),
       python = "strength ~ 1 + (1|batch) + (1|batch:cask)",
       factors = c("batch", "cask"),
       pkg = function() lme4::Pastes[, c("batch", "cask", "strength")],
       design = "nested: cask within batch"),
  list(id = "penicillin", file = "penicillin.csv", source = "lme4::Penicillin", family = "gaussian",
       formula = diameter ~ 1 + (1 | plate) + (1 | sample),
       python = "diameter ~ 1 + (1|plate) + (1|sample)",
       factors = c("plate", "sample"),
       pkg = function() lme4::Penicillin[, c("plate", "sample", "diameter")],
       design = "crossed"),
  list(id = "oats", file = "oats.csv", source = "nlme::Oats", family = "gaussian",
       formula = yield ~ nitro + Variety + (1 | Block) + (1 | Block:Variety),
       python = "yield ~ nitro + Variety + (1|Block) + (1|Block:Variety)",
       factors = c("Block", "Variety"),
       pkg = function() as.data.frame(nlme::Oats)[, c("Block", "Variety", "nitro", "yield")],
       design = "split-plot: Variety plots within Block, nitro within plot"),
  list(id = "machines", file = "machines.csv", source = "nlme::Machines", family = "gaussian",
       formula = score ~ Machine + (1 | Worker) + (1 | Worker:Machine),
       python = "score ~ Machine + (1|Worker) + (1|Worker:Machine)",
       factors = c("Worker", "Machine"),
       pkg = function() as.data.frame(nlme::Machines)[, c("Worker", "Machine", "score")],
       design = "crossed fixed Machine x random Worker, with Worker:Machine interaction"),
  list(id = "oxide", file = "oxide.csv", source = "nlme::Oxide", family = "gaussian",
       formula = Thickness ~ Source + (1 | Lot) + (1 | Lot:Wafer),
       python = "Thickness ~ Source + (1|Lot) + (1|Lot:Wafer)", categorical = "Source",
       factors = c("Source", "Lot", "Wafer"),
       pkg = function() as.data.frame(nlme::Oxide)[, c("Source", "Lot", "Wafer", "Thickness")],
       design = "nested: Wafer within Lot (Lot within Source); 3 sites per wafer are the residual"),
  list(id = "assay", file = "assay.csv", source = "nlme::Assay", family = "gaussian",
       formula = logDens ~ sample * dilut + (1 | Block) + (1 | Block:sample) + (1 | Block:dilut),
       python = "logDens ~ sample * dilut + (1|Block) + (1|Block:sample) + (1|Block:dilut)",
       categorical = "dilut",
       factors = c("Block", "sample", "dilut"),
       pkg = function() as.data.frame(nlme::Assay)[, c("Block", "sample", "dilut", "logDens")],
       design = "split-plot, sample and dilut crossed within Block (2 blocks); the nlme book's model (Pinheiro & Bates 2000: sample * dilut fixed, Block, Block:sample, Block:dilut random)"),
  list(id = "pixel", file = "pixel.csv", source = "nlme::Pixel", family = "gaussian",
       formula = pixel ~ day + I(day^2) + (day | Dog) + (1 | Dog:Side),
       python = "pixel ~ day + day2 + (day|Dog) + (1|Dog:Side)",
       factors = c("Dog", "Side"),
       pkg = function() { p <- as.data.frame(nlme::Pixel); p$day2 <- p$day^2
                          p[, c("Dog", "Side", "day", "day2", "pixel")] },
       design = "repeated measures: correlated intercept + slope per Dog, Side nested in Dog"),
  list(id = "scotssec", file = "scotssec.csv", source = "mlmRev::ScotsSec", family = "gaussian",
       formula = attain ~ verbal + sex + social + (1 | primary) + (1 | second),
       python = "attain ~ verbal + sex + social + (1|primary) + (1|second)",
       factors = c("primary", "second", "sex"),
       pkg = function() mlmRev::ScotsSec[, c("primary", "second", "sex", "verbal", "social", "attain")],
       design = "crossed: primary school x secondary school",
       note = "sex: levels sorted (F, M), so the term is sex[M]; mlmRev's own level order is M, F"),
  list(id = "egsingle", file = "egsingle.csv", source = "mlmRev::egsingle", family = "gaussian",
       formula = math ~ year + (year | schoolid) + (year | child),
       python = "math ~ year + (year|schoolid) + (year|child)",
       factors = c("schoolid", "child"),
       pkg = function() { e <- mlmRev::egsingle; e$child <- e$childid
                          e[, c("schoolid", "child", "year", "math")] },
       design = "growth curves: correlated intercept + slope per school and per child (child nested in school)",
       note = "requested (year|schoolid:childid); childid is unique across schools (1721 ids, 1721 school:child pairs, checked), so (year|child) is the same model; child = mlmRev's childid"),
  list(id = "chem97", file = "chem97.csv.gz", source = "mlmRev::Chem97", family = "gaussian",
       formula = score ~ gcsecnt + (1 | lea) + (1 | school),
       python = "score ~ gcsecnt + (1|lea) + (1|school)",
       factors = c("lea", "school"),
       pkg = function() mlmRev::Chem97[, c("lea", "school", "gcsecnt", "score")],
       design = "nested: school within local education authority",
       note = "requested (1|lea) + (1|lea:school); school ids are unique across lea (2410 ids, 2410 lea:school pairs, checked), so (1|school) is the same model"),
  list(id = "oxboys", file = "oxboys.csv", source = "nlme::Oxboys", family = "gaussian",
       formula = height ~ age + (age | Subject),
       python = "height ~ age + (age|Subject)",
       factors = c("Subject"),
       pkg = function() as.data.frame(nlme::Oxboys)[, c("Subject", "age", "height")],
       design = "growth curves, one factor with correlated intercept + slope (optional 17th example)"),
  list(id = "grouseticks", file = "grouseticks.csv", source = "lme4::grouseticks", family = "poisson",
       formula = TICKS ~ YEAR + height_z + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION),
       python = "TICKS ~ YEAR + height_z + (1|BROOD) + (1|INDEX) + (1|LOCATION)", categorical = "YEAR",
       factors = c("YEAR", "BROOD", "INDEX", "LOCATION"),
       pkg = function() { g <- lme4::grouseticks; g$height_z <- as.numeric(scale(g$HEIGHT))
                          g[, c("INDEX", "BROOD", "LOCATION", "YEAR", "HEIGHT", "height_z", "TICKS")] },
       design = "chick (observation-level INDEX) within brood, crossed with location",
       note = "height_z = as.numeric(scale(HEIGHT)) = (HEIGHT - mean) / sd (n - 1 denominator)"),
  list(id = "verbagg", file = "verbagg.csv", source = "lme4::VerbAgg", family = "bernoulli",
       formula = r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item),
       python = "r2 ~ Anger + Gender + btype + situ + (1|id) + (1|item)",
       factors = c("id", "item", "Gender", "btype", "situ"),
       pkg = function() { v <- lme4::VerbAgg; v$r2 <- as.integer(v$r2 == "Y")
                          v[, c("id", "item", "Anger", "Gender", "btype", "situ", "r2")] },
       design = "crossed: person x item (item response model)"),
  list(id = "cbpp_obs", file = "cbpp_obs.csv", source = "lme4::cbpp", family = "binomial",
       formula = cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | obs),
       python = "incidence ~ period + (1|herd) + (1|obs)", trials = "size", categorical = "period",
       factors = c("herd", "obs", "period"),
       pkg = function() { c0 <- lme4::cbpp; c0$obs <- seq_len(nrow(c0))
                          c0[, c("herd", "obs", "period", "incidence", "size")] },
       design = "observation-level random effect nested in herd (overdispersion)"),
  list(id = "arabidopsis", file = "arabidopsis.csv", source = "lme4::Arabidopsis", family = "poisson",
       formula = total_fruits ~ nutrient * amd + rack + status + (1 | popu) + (1 | gen),
       python = "total_fruits ~ nutrient*amd + rack + status + (1|popu) + (1|gen)",
       categorical = c("nutrient", "rack"),
       factors = c("popu", "gen", "rack", "nutrient", "amd", "status"),
       pkg = function() { a <- lme4::Arabidopsis; a$total_fruits <- a$total.fruits
                          a[, c("popu", "gen", "rack", "nutrient", "amd", "status", "total_fruits")] },
       design = "crossed: population x genotype (genotypes nested in populations by their ids)",
       note = paste("lme4's ?Arabidopsis has no model fit (its example is a lattice stripplot of",
                    "log(total.fruits+1) ~ amd | nutrient). The model follows Bolker et al. (2009, TREE 24:127)",
                    "GLMM worked example, the source of these data: gen, rack and nutrient are factors (nutrient",
                    "1 / 8 -> levels '1','8'), amd with sorted levels (reference 'clipped'; Bolker used",
                    "'unclipped' as reference: a reparametrisation). total.fruits renamed total_fruits.",
                    "No observation-level effect, so the Poisson model is strongly overdispersed.")),
  list(id = "contraception", file = "contraception_bank.csv", source = "mlmRev::Contraception", family = "bernoulli",
       formula = use ~ age + I(age^2) + urban + livch + (1 | district) + (1 | district:urban),
       python = "use ~ age + age2 + urban + livch + (1|district) + (1|district:urban)",
       factors = c("district", "urban", "livch"),
       pkg = function() { ct <- mlmRev::Contraception; ct$use <- as.integer(ct$use == "Y"); ct$age2 <- ct$age^2
                          ct[, c("district", "urban", "livch", "age", "age2", "use")] },
       design = "urban/rural part nested in district",
       note = "data file contraception_bank.csv (datasets key 'contraception_bank'): contraception.csv already ships without age2 and with use as Y/N")
)

## ---------------------------------------------------------- helpers ----
## run f() REPS times; keep the first run's warnings/messages and the median elapsed time
timed5 <- function(f, reps = REPS) {
  secs <- numeric(reps); warns <- msgs <- NULL
  for (k in seq_len(reps)) {
    w <- character(0); m <- character(0)
    gc()
    t <- system.time(val <- withCallingHandlers(f(),
           warning = function(c) { w <<- c(w, conditionMessage(c)); invokeRestart("muffleWarning") },
           message = function(c) { m <<- c(m, conditionMessage(c)); invokeRestart("muffleMessage") }))
    secs[k] <- unname(t["elapsed"])
    if (k == 1) { warns <- w; msgs <- m; first <- val }
  }
  list(value = first, seconds = median(secs), seconds_all = secs, warnings = warns, messages = msgs)
}

tname <- function(x) ifelse(x == "(Intercept)", "Intercept", x)

## R coefficient name -> formulae name, built from the fixed-part terms and the factors
RENAME <- c("I(day^2)" = "day2", "I(age^2)" = "age2")
fixed_name_map <- function(formula, d) {
  tl <- attr(terms(lme4::nobars(formula)), "term.labels")
  map <- c("(Intercept)" = "Intercept")
  for (lab in tl) {
    vars <- if (lab %in% names(RENAME)) lab else strsplit(lab, ":", fixed = TRUE)[[1]]
    rn <- list(); pn <- list()
    for (v in vars) {
      if (is.factor(d[[v]])) {
        lv <- levels(d[[v]])[-1]
        rn[[v]] <- paste0(v, lv); pn[[v]] <- paste0(v, "[", lv, "]")
      } else {
        rn[[v]] <- v; pn[[v]] <- if (v %in% names(RENAME)) RENAME[[v]] else v
      }
    }
    gr <- expand.grid(lapply(seq_along(vars), function(i) seq_along(rn[[i]])))  # first varies fastest, as R
    for (r in seq_len(nrow(gr))) {
      ix <- unlist(gr[r, ])
      map[paste(mapply(function(i, j) rn[[i]][j], seq_along(vars), ix), collapse = ":")] <-
        paste(mapply(function(i, j) pn[[i]][j], seq_along(vars), ix), collapse = ":")
    }
  }
  map
}

coef_tab <- function(tab, map) {
  miss <- setdiff(rownames(tab), names(map))
  if (length(miss)) stop("no formulae name for ", paste(miss, collapse = ", "))
  setNames(lapply(seq_len(nrow(tab)), function(i)
    list(estimate = unname(tab[i, 1]), std_error = unname(tab[i, 2]))), map[rownames(tab)])
}

## VarCorr list -> sd {group: {term: sd}}, corr {group: {"t1, t2": r}}
vc_lists <- function(vc) {
  sds <- list(); cors <- list()
  for (g in names(vc)) {
    m <- vc[[g]]; s <- attr(m, "stddev"); nm <- tname(names(s))
    sds[[g]] <- as.list(setNames(unname(s), nm))
    if (length(s) > 1) {
      cr <- attr(m, "correlation"); out <- list()
      for (j in 1:(length(s) - 1)) for (i in (j + 1):length(s))
        out[[paste0(nm[j], ", ", nm[i])]] <- cr[i, j]
      cors[[g]] <- out
    }
  }
  list(sd = sds, corr = if (length(cors)) cors else NULL)
}

## lme4-style singularity test for any engine: relative Cholesky factor diagonal < tol
singular_blocks <- function(vc, scale, tol = 1e-4) {
  bad <- character(0)
  for (g in names(vc)) {
    S <- as.matrix(vc[[g]])[, , drop = FALSE] / scale^2
    L <- tryCatch(chol(S), error = function(e) NULL)
    if (is.null(L) || any(diag(L) < tol)) bad <- c(bad, g)
  }
  bad
}

chr <- function(x) I(as.character(unlist(x)))   # a JSON array, also when empty

levels_of <- function(flist) as.list(sapply(flist, nlevels))

## --------------------------------------------------------------- fits ----
fit_lme4 <- function(s, d, reml = FALSE, reps = REPS, optimizer = NULL) {
  gaussian <- s$family == "gaussian"
  ctl <- if (is.null(optimizer)) { if (gaussian) lmerControl() else glmerControl() }
         else if (gaussian) lmerControl(optimizer = optimizer) else glmerControl(optimizer = optimizer)
  f <- if (gaussian) function() lmer(s$formula, data = d, REML = reml, control = ctl)
       else function() glmer(s$formula, data = d, family = fam_of(s), control = ctl)
  r <- timed5(f, reps)
  fit <- r$value
  .last_lme4 <<- fit
  print(summary(fit))
  oi <- fit@optinfo
  vcl <- vc_lists(VarCorr(fit))
  lme4_msgs <- unlist(oi$conv$lme4$messages)
  sing <- isSingular(fit, tol = 1e-4)
  list(
    engine = paste(if (gaussian) sprintf("lme4::lmer(REML = %s)", reml) else "lme4::glmer (Laplace, nAGQ = 1)",
                   if (is.null(optimizer)) "default optimizer" else paste("optimizer =", optimizer)),
    call = paste(deparse(fit@call, width.cutoff = 500), collapse = " "),
    fixed = coef_tab(summary(fit)$coefficients, s$map),
    sd = vcl$sd, corr = vcl$corr,
    sigma = if (gaussian) sigma(fit) else NULL,
    loglik = as.numeric(logLik(fit)),
    reml_criterion = if (reml) unname(REMLcrit(fit)) else NULL,
    df_loglik = attr(logLik(fit), "df"),
    theta = as.list(getME(fit, "theta")),
    n = nobs(fit),
    levels = as.list(ngrps(fit)),
    singular = sing,
    singular_groups = chr(singular_blocks(VarCorr(fit), if (gaussian) sigma(fit) else 1)),
    converged = (oi$conv$opt == 0) && length(lme4_msgs) == 0 &&
                length(c(r$warnings, unlist(oi$warnings))) == 0,
    convergence = list(optimizer = oi$optimizer, code = oi$conv$opt, message = oi$message,
                       lme4_messages = chr(lme4_msgs),
                       warnings = chr(unique(c(r$warnings, unlist(oi$warnings)))),
                       messages = chr(unique(r$messages))),
    seconds = round(r$seconds, 3), seconds_all = round(r$seconds_all, 3))
}

fam_of <- function(s) switch(s$family, gaussian = gaussian(), poisson = poisson(),
                              binomial = binomial(), bernoulli = binomial())

fit_tmb <- function(s, d) {
  gaussian <- s$family == "gaussian"
  r <- timed5(function() glmmTMB(s$formula, data = d, family = fam_of(s), control = ctrl_tmb))
  fit <- r$value
  print(summary(fit))
  vc <- VarCorr(fit)$cond
  vcl <- vc_lists(vc)
  sing_groups <- singular_blocks(vc, if (gaussian) sigma(fit) else 1)
  grad <- max(abs(fit$sdr$gradient.fixed))
  ## GLMMs (scalar random intercepts only): glmmTMB's Laplace log-likelihood at lme4's
  ## estimates, to tell an optimiser gap from a difference in the approximation
  at_lme4 <- NULL
  if (!gaussian) {
    g <- .last_lme4
    sd_l <- sapply(VarCorr(g), function(m) attr(m, "stddev"))
    names(sd_l) <- names(VarCorr(g))
    grp <- names(fit$modelInfo$reTrms$cond$cnms)          # glmmTMB's order of the theta parameters
    at_lme4 <- -fit$obj$fn(c(lme4::fixef(g)[names(fixef(fit)$cond)], log(sd_l[grp])))
  }
  list(
    engine = "glmmTMB::glmmTMB (ML, Laplace)",
    call = paste(deparse(fit$call, width.cutoff = 500), collapse = " "),
    fixed = coef_tab(summary(fit)$coefficients$cond, s$map),
    sd = vcl$sd, corr = vcl$corr,
    sigma = if (gaussian) sigma(fit) else NULL,
    loglik = -fit$fit$objective,
    loglik_at_lme4_estimates = at_lme4,
    df_loglik = length(fit$fit$par),
    n = nobs(fit),
    levels = levels_of(fit$modelInfo$reTrms$cond$flist),
    singular = length(sing_groups) > 0,
    singular_groups = chr(sing_groups),
    converged = fit$fit$convergence == 0 && isTRUE(fit$sdr$pdHess) && length(r$warnings) == 0,
    convergence = list(optimizer = "nlminb", code = fit$fit$convergence, message = fit$fit$message,
                       iterations = fit$fit$iterations, pdHess = fit$sdr$pdHess,
                       max_abs_gradient = grad,
                       warnings = chr(unique(r$warnings)), messages = chr(unique(r$messages))),
    seconds = round(r$seconds, 3), seconds_all = round(r$seconds_all, 3))
}

## ---------------------------------------------------------------- run ----
results <- list(); data_check <- list()
if (nzchar(ONLY)) B <- Filter(function(s) s$id %in% strsplit(ONLY, ",")[[1]], B)
for (s in B) {
  cat("\n====================================================", s$id, "\n")
  d <- read_bank(s$file)
  data_check[[s$file]] <- same_as_pkg(d, s$pkg())
  for (cc in s$factors) d[[cc]] <- sorted_factor(d[[cc]])
  s$map <- fixed_name_map(s$formula, d)
  fl <- Filter(function(v) is.factor(d[[v]]), all.vars(lme4::nobars(s$formula)[[3]]))
  ent <- list(
    id = s$id, data = s$file, source = s$source, design = s$design,
    family = s$family, link = if (s$family == "gaussian") "identity" else if (s$family == "poisson") "log" else "logit",
    r_formula = paste(deparse(s$formula, width.cutoff = 500), collapse = " "),
    python_formula = s$python,
    python_trials = s$trials,
    python_categorical = chr(s$categorical),
    n = nrow(d),
    fixed_factor_levels = sapply(fl, function(v) levels(d[[v]]), simplify = FALSE),
    fixed_name_map = as.list(setNames(names(s$map), s$map)),
    csv_matches_package = data_check[[s$file]])
  if (length(ent$fixed_factor_levels) == 0) ent$fixed_factor_levels <- NULL
  if (!is.null(s$note)) ent$note <- s$note
  cat("-- csv matches package copy:", ent$csv_matches_package, "\n")
  cat("-- lme4 (ML / Laplace)\n")
  ent$lme4 <- fit_lme4(s, d)
  ent$levels <- ent$lme4$levels
  if (s$family == "gaussian") {
    cat("-- lme4 REML\n")
    ent$lme4_reml <- fit_lme4(s, d, reml = TRUE, reps = 1L)
    ent$lme4_reml$note <- "REML fit, timed once; loglik is the REML log-likelihood (= -reml_criterion/2)"
  }
  ## lmer fits that warn are refitted with bobyqa (no other change) as a second lme4 reference
  ## (lmer's default is nloptwrap; glmer's default already is bobyqa + Nelder_Mead)
  if (s$family == "gaussian" && !ent$lme4$converged) {
    cat("-- lme4 refit with bobyqa\n")
    ent$lme4_bobyqa <- fit_lme4(s, d, optimizer = "bobyqa")
  }
  if (!is.null(ent$lme4_reml) && !ent$lme4_reml$converged) {
    cat("-- lme4 REML refit with bobyqa\n")
    ent$lme4_reml_bobyqa <- fit_lme4(s, d, reml = TRUE, reps = 1L, optimizer = "bobyqa")
  }
  cat("-- glmmTMB\n")
  ent$glmmTMB <- fit_tmb(s, d)
  if (!is.null(ent$glmmTMB$loglik_at_lme4_estimates))
    cat(sprintf("-- %s: glmmTMB loglik at lme4 estimates %.6f (lme4's own %.6f)\n", s$id,
                ent$glmmTMB$loglik_at_lme4_estimates, ent$lme4$loglik))
  cat(sprintf("-- %s: n %d | loglik lme4 %.6f glmmTMB %.6f (diff %.2e) | %.3fs / %.3fs | singular lme4 %s glmmTMB %s | converged %s %s\n",
              s$id, ent$n, ent$lme4$loglik, ent$glmmTMB$loglik, ent$lme4$loglik - ent$glmmTMB$loglik,
              ent$lme4$seconds, ent$glmmTMB$seconds, ent$lme4$singular, ent$glmmTMB$singular,
              ent$lme4$converged, ent$glmmTMB$converged))
  if (!is.null(ent$lme4_bobyqa))
    cat(sprintf("-- %s: lme4 bobyqa loglik %.6f (vs glmmTMB %.2e) converged %s\n", s$id, ent$lme4_bobyqa$loglik,
                ent$lme4_bobyqa$loglik - ent$glmmTMB$loglik, ent$lme4_bobyqa$converged))
  results[[s$id]] <- ent
}

## -------------------------------------------------------------- write ----
out <- list(
  meta = list(
    generated_by = "tests/data/reference/bank.R (run: Rscript tests/data/reference/bank.R from the repo root)",
    r_version = r_version, package_versions = pkg_versions, blas = blas,
    platform = R.version$platform,
    estimation = paste("lme4: lmer(REML = FALSE) for Gaussian models (ML; the REML fit is in lme4_reml),",
                       "glmer(nAGQ = 1, Laplace) otherwise; glmmTMB: ML, Laplace (exact for Gaussian);",
                       "default optimisers; glmmTMBControl(parallel = 1)"),
    timing = sprintf("seconds = median elapsed time of %d fits (system.time), seconds_all = all of them; includes model set-up", REPS),
    factor_coding = paste("treatment coding, levels sorted (integer labels numerically, text by code point),",
                          "first level = reference; fixed-effect names as formulae writes them; fixed_name_map: formulae name -> R name"),
    python_side = paste("hier.Model(python_formula, df, family=family, trials=python_trials) with",
                        "df = hierarchical.datasets.load(key) and, for each column in python_categorical,",
                        "df[c] = pd.Categorical(df[c]) (integer labels; otherwise formulae treats them as numbers)"),
    sd_note = "sd: {group: {term: SD}} with group as lme4 writes it (a:b for interactions) and term Intercept or the slope variable; corr: {group: {'t1, t2': correlation}}",
    singular_note = paste("singular: lme4::isSingular(tol = 1e-4) for lme4; for both engines singular_groups lists the",
                          "groups whose relative Cholesky factor (covariance / sigma^2 for Gaussian, covariance otherwise)",
                          "has a diagonal element < 1e-4 (an SD at 0 or a correlation at +-1)"),
    se_note = "std_error: Wald SEs from summary() (lme4: conditional on the variance parameters; glmmTMB: from the joint Hessian)",
    converged_note = paste("converged: optimiser code 0, no lme4 convergence messages / no warnings; glmmTMB also needs pdHess.",
                           "When a default lmer fit is not converged, lme4_bobyqa (and lme4_reml_bobyqa) hold a refit",
                           "with optimizer = 'bobyqa', nothing else changed. For GLMMs glmmTMB.loglik_at_lme4_estimates is",
                           "glmmTMB's Laplace log-likelihood at glmer's estimates"),
    csv_matches_installed_R_package = data_check),
  fits = results)
write_json(out, file.path(HERE, "bank.json"), auto_unbox = TRUE, pretty = TRUE, digits = NA,
           null = "null", na = "null")
cat("\nwrote bank.json with", length(results), "examples\n")
