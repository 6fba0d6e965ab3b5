# %% [markdown]
# # Prior sensitivity: how much does the prior decide?
#
# A hierarchical model learns the between-group SD from the spread of the group estimates, so
# the number of *groups*, not the number of observations, limits how much the data can say
# about it. With 85 radon counties the county SD is pinned down by the data; with 6 batches of
# dyestuff, or 8 schools, the prior on the group SD is a real part of the answer.
#
# This notebook asks, for a small and a large study: does the posterior depend on the prior,
# and if so, is it the prior or the data that is at fault? Three tools:
#
# 1. **power-scaling** (Kallioinen et al. 2024, the method of R's `priorsense`): reweight the
#    posterior draws as if the prior, or the likelihood, were raised to a power near 1, and
#    measure how far each reported quantity moves. No refitting;
# 2. a **prior predictive check**: what the priors say about quantities an analyst can judge
#    (ICC, spread of the batch means, outcome range) before seeing the data;
# 3. a **prior grid**: refit over a range of priors and plot the posterior against the prior
#    setting.

# %%
import os
QUICK = os.environ.get("HIERARCHICAL_QUICK") == "1"   # the test suite sets this: fewer draws, same code
SAMPLING = dict(draws=200, tune=300, chains=2) if QUICK else dict(draws=1000, tune=1000, chains=4)
WORKERS = 1 if QUICK else 2          # prior grids: processes (each compiles the model once)

# %%
import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import hierarchical as hier

az.rcParams["stats.ci_prob"] = 0.94   # the intervals quoted below are 94% (tables follow ArviZ)
from hierarchical import Prior

pd.set_option("display.precision", 3)
pd.set_option("display.width", 120)

# %% [markdown]
# ## Dyestuff: 6 batches
#
# Davies & Goldsmith's Dyestuff data (lme4's `Dyestuff`): the yield of dyestuff (grams of
# standard colour) from 5 preparations of each of 6 batches of an intermediate product. The
# question is how much of the variation in yield comes from batch to batch. lme4's REML fit of
# `Yield ~ 1 + (1 | Batch)` (Bates, *lme4: Mixed-effects modeling with R*, chapter 1) gives an
# intercept of 1527.5, a batch SD of 42.0 and a residual SD of 49.5.

# %%
dyestuff = hier.datasets.load("dyestuff")
dyestuff.groupby("Batch")["Yield"].agg(["size", "mean", "std"]).T

# %%
dye_model = hier.Model("Yield ~ 1 + (1 | Batch)", dyestuff)
dye_model.priors

# %% [markdown]
# The default priors are scaled to the data: the batch SD gets `HalfNormal(sd(Yield))`, about
# HalfNormal(65), i.e. "batch SDs up to about twice the SD of the yields are plausible".
# Fit it and compare with lme4:

# %%
dye_fit = dye_model.fit(**SAMPLING, random_seed=1, progressbar=False)
vc = dye_fit.variance_components()
vc.assign(lme4_reml=[42.0, 49.5])[["mean", "sd", "eti94_lb", "eti94_ub", "r_hat", "lme4_reml"]]

# %% [markdown]
# The posterior mean of the batch SD is above lme4's 42 and its interval is wide, roughly 16 to
# 90: six batches carry little information about a standard deviation. (REML point estimates
# and posterior means are not the same thing: the posterior of an SD from 6 groups is
# right-skewed, so its mean sits above its mode; the residual SD, learnt from 24 within-batch
# degrees of freedom, agrees closely.) The posterior median and the REML estimate are the
# fairer comparison:

# %%
batch_sd = dye_fit.posterior["Batch_sd"].values.ravel()
print(f"Batch SD: posterior median {np.median(batch_sd):.1f}, mean {batch_sd.mean():.1f}; "
      f"lme4 REML 42.0")

# %% [markdown]
# ## Power-scaling: is the batch SD prior-sensitive?
#
# `hier.sensitivity.power_scale` reports, per quantity, the cumulative Jensen-Shannon (CJS)
# distance between the posterior and its power-scaled versions, for the prior and for the
# likelihood. priorsense's threshold is 0.05. The readings:
#
# * prior CJS >= 0.05 and likelihood CJS >= 0.05: **prior-data conflict**. Both the prior and
#   the data pull on the quantity and they pull in different directions: the posterior lands
#   in between and moves when either is strengthened.
# * prior CJS >= 0.05, likelihood CJS < 0.05: **strong prior / weak likelihood**. The data say
#   little about the quantity and the posterior is mostly the prior.
# * otherwise `-`: the likelihood dominates, the prior does not matter much.
#
# Only the top-level priors are scaled (fixed effects, SDs, residual SD), not the distribution
# of the batch effects themselves: that makes the answer the same whether the effects are
# centred, non-centred or (as here) integrated out.

# %%
dye_sens = hier.sensitivity.power_scale(dye_fit)
dye_sens

# %%
hier.plots.power_scale(dye_fit, table=dye_sens);

# %% [markdown]
# Only the batch SD is flagged, and only just (prior CJS 0.075 against the 0.05 threshold); the
# ICC sits on the threshold (0.048) and the pooling factor below it. Its likelihood CJS (0.12)
# is also above the threshold, so priorsense's label is "prior-data conflict". Read it
# carefully: the label means *both* the prior and the likelihood shape the posterior, not that
# they contradict each other. The prior predictive check below shows no contradiction (the
# observed spread of the batch means is right in the middle of what the prior expects). What
# happens is that six batches give a likelihood for the batch SD that is flat over a wide
# range, and over that range a `HalfNormal(63)` prior, whose density falls by half between 0
# and 75, still tilts the posterior. The intercept and the residual SD (learnt from 30
# observations and 24 within-batch degrees of freedom) are prior-insensitive.
#
# ## Radon: 85 counties, for contrast

# %%
radon = hier.datasets.load("radon")
radon_fit = hier.Model("log_radon ~ floor + (1 | county)", radon).fit(
    **SAMPLING, random_seed=1, progressbar=False)
hier.sensitivity.power_scale(radon_fit)

# %% [markdown]
# Nothing is flagged: with 85 counties the likelihood determines the county SD (likelihood CJS
# well above the threshold, prior CJS far below it). The same default rule for the prior
# (`HalfNormal(sd(y))`) is harmless here and influential for Dyestuff; the difference is the
# number of groups.
#
# ## Prior predictive check: is the Dyestuff prior sensible?
#
# Power-scaling says the prior matters; the prior predictive check says what the prior
# *claims*, on scales an analyst can judge: the ICC it implies, the SD of the six batch means
# it expects, and the range of yields. Each is shown beside the observed value with the share
# of prior draws at or above it.

# %%
check = dye_model.prior_predictive(draws=500 if QUICK else 2000, random_seed=1)
check.summary

# %%
hier.plots.prior_predictive(check, dye_fit);

# %% [markdown]
# The default prior is weakly informative in the sense it is meant to be: the observed SD of
# the batch means (47.5) is the prior predictive median (half the draws are above it), and the
# observed minimum and maximum yields are well inside their prior predictive distributions.
# Nothing here is a conflict in the sense of a prior that rules the data out. Note the
# implied ICC: two HalfNormal priors of the same scale, one on the batch SD and one on the
# residual SD, imply a U-shaped prior on the ICC with mass piled near 0 and near 1. That is a
# feature of the default worth knowing; the data move it to a broad hump (blue, posterior)
# around lme4's REML value `42.0^2 / (42.0^2 + 49.5^2)` = 0.42, with a 94% interval that still
# spans most of 0 to 0.8.
#
# ## Prior grid: how far does the batch SD move?
#
# Power-scaling looks at small perturbations. To see the whole dependence, refit with the batch
# SD prior `HalfNormal(s)` for `s` from very tight (5, i.e. "batches barely differ") to very
# loose (200, three times the SD of all yields). `prior_grid` compiles the model once per
# worker process with the prior parameters held as data, so each further point costs only
# sampling.

# %%
SCALES = (5, 50, 200) if QUICK else (5, 10, 20, 50, 100, 200)
grid = {"Batch_sd": [Prior("HalfNormal", sigma=s) for s in SCALES]}
dye_grid = hier.sensitivity.prior_grid(
    dye_model, grid, targets=["Batch_sd[Intercept]", "icc[Batch]", "Intercept", "sigma"],
    **SAMPLING, random_seed=1, workers=WORKERS, progressbar=False)
dye_grid[dye_grid["target"] == "Batch_sd[Intercept]"][
    ["Batch_sd", "mean", "sd", "eti94_lb", "eti94_ub", "r_hat", "divergences"]]

# %%
fig = hier.plots.prior_grid(dye_grid)
for ax, target in zip(fig.axes, ["Batch_sd[Intercept]", "icc[Batch]", "Intercept", "sigma"]):
    reference = {"Batch_sd[Intercept]": 42.0, "icc[Batch]": 42.0**2 / (42.0**2 + 49.5**2),
                 "Intercept": 1527.5, "sigma": 49.5}[target]
    ax.axhline(reference, color="#c0392b", ls=":", label="lme4 REML")
fig.axes[0].legend(frameon=False, fontsize="small");

# %% [markdown]
# The batch SD follows its prior scale while the prior is tighter than what the data say:
# from a posterior mean of about 5 under `HalfNormal(5)` (the prior forces the batches to be
# alike, and the residual SD grows from 52 to 63 to absorb the difference) to 44 at scale 50.
# Beyond that it levels off: doubling the scale to 100 and again to 200 moves the mean to 52
# and 56, while the upper end of the interval keeps growing (83, 107, 124). So above a scale of
# about 50 the *centre* of the posterior is set by the data, close to REML's 42 (the posterior
# mean sits above it for the reason given earlier), but the *upper tail* is still set by the
# prior. The intercept is insensitive throughout, and only the tight priors move the residual
# SD.
#
# **What an analyst should do here**: report the batch SD *with* its prior, and say that the
# data alone bound it only loosely (the ICC interval is wide at every reasonable prior). If
# there is outside knowledge about batch-to-batch variation (previous campaigns, process
# specifications), this is exactly the case where encoding it in the prior is worth the
# effort, and the grid shows what it buys. A prior like `HalfNormal(5)` would be a claim,
# not a default; it should be defended on substantive grounds or not used.
#
# ## Eight schools: the between-school SD tau
#
# The same question for the eight schools meta-analysis (Rubin 1981; BDA section 5.5): 8
# estimated coaching effects with known SEs of 9 to 18 points. BDA concludes that `tau` is
# poorly identified and that the posterior depends on its prior (Gelman 2006 discusses the
# choice of prior for exactly this case).

# %%
schools = hier.datasets.load("eight_schools")
school_model = hier.Model(hier.meta_analysis("y", se="se", group="school"), schools)
school_fit = school_model.fit(**SAMPLING, random_seed=1, progressbar=False)
school_sens = hier.sensitivity.power_scale(school_fit)
school_sens

# %% [markdown]
# `tau` (`school_sd[Intercept]`) is flagged with a small likelihood CJS: "strong prior / weak
# likelihood". Unlike Dyestuff, the data here hardly constrain `tau` at all beyond saying it is
# not large: the 8 estimates scatter *less* than their SEs would predict, so every value of
# `tau` from 0 to about 10 fits them nearly equally well, and the default prior
# `HalfNormal(sd(y))` = HalfNormal(10.4) decides the shape of that part of the posterior.
# The pooled mean (`Intercept`) is affected less.

# %%
TAU_SCALES = (2, 10, 50) if QUICK else (1, 2, 5, 10, 25, 50, 100)
school_grid = hier.sensitivity.prior_grid(
    school_model, {"school_sd": [Prior("HalfNormal", sigma=s) for s in TAU_SCALES]},
    targets=["school_sd[Intercept]", "Intercept", "pooling_factor[school, Intercept]"],
    **SAMPLING, random_seed=1, workers=WORKERS, progressbar=False)
hier.plots.prior_grid(school_grid);

# %%
school_grid[school_grid["target"] == "school_sd[Intercept]"][
    ["school_sd", "mean", "eti94_lb", "eti94_ub", "r_hat", "divergences"]]

# %% [markdown]
# The posterior of `tau` follows its prior over most of the grid: its mean is 0.8, 1.5, 3.3 and
# 4.7 for prior scales 1, 2, 5 and 10 (the prior scale is the main thing it reflects), and only
# for scales of 25 and beyond does the likelihood cut the tail off, leaving a mean of about 6.6
# and an upper bound near 19 whether the scale is 50 or 100. The likelihood of `tau` is flat
# from 0 to about 10, so *within* that range the prior decides. The pooled mean effect stays near
# 8 points throughout, and pooling stays strong under every prior (the pooling factor here is
# the per-draw mean model-based shrinkage of the schools: 0.99 at the tightest prior, 0.77 at
# the loosest): the *conclusions* a reader would draw (a modest average effect, schools not clearly
# different) are robust, the *number* reported for `tau` is not.
#
# ## What to do with these diagnoses
#
# | diagnosis | seen here | what it means | what to do |
# |---|---|---|---|
# | `-` | radon county SD | the likelihood dominates | use the default prior; report as usual |
# | prior-data conflict | Dyestuff batch SD | prior and likelihood both shape the posterior (6 groups: a flat likelihood for the SD, so a proper prior still bites in the tail) | check the prior predictive: is the prior implausible? If not, report the sensitivity (a grid like the one above) and add outside information if there is any; if it is, widen or rethink it |
# | strong prior / weak likelihood | eight schools tau | the data barely inform the quantity | do not read the number as a finding; state the prior, show the grid, and report quantities that are robust (the pooled mean, the shrunken school effects) |
#
# Two remarks. First, a flag is a property of a *quantity*, not of the model: the Dyestuff
# intercept and residual SD are fine while the batch SD is not. Second, neither diagnosis is
# fixed by making the prior flatter. A flat prior on an SD with few groups is itself
# informative (it favours large values, as the eight schools grid shows); the remedy is more
# groups, outside information, or honest reporting of the dependence.
