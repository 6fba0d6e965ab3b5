# %% [markdown]
# # Shrinkage and pooling: Minnesota radon and eight schools
#
# Why fit a hierarchical model at all? Gelman & Hill (2006, chapter 12) answer with the
# Minnesota radon survey: 919 houses in 85 counties, and the question "what is the typical
# radon level in *this* county?". Some counties have dozens of measured houses, some have one
# or two. Two obvious answers are both bad:
#
# * **complete pooling** ignores the county and gives every county the state average: it
#   cannot see real differences between counties;
# * **no pooling** estimates each county on its own: for a county with two houses, the
#   estimate is mostly noise, and the most extreme county estimates are always the small
#   counties.
#
# **Partial pooling** (a multilevel model, `log_radon ~ floor + (1 | county)`) estimates each
# county as a precision-weighted compromise between its own data and the state-wide
# distribution of counties. This notebook fits all three with `hier.compare_pooling`, shows
# how far each county was pulled and why, checks which model predicts new houses best, and
# then turns to a contrasting case, the eight schools, where pooling is almost complete.

# %%
import os
QUICK = os.environ.get("HIERARCHICAL_QUICK") == "1"   # the test suite sets this: fewer draws, same code
SAMPLING = dict(draws=200, tune=300, chains=2) if QUICK else dict(draws=1000, tune=1000, chains=4)

# %%
import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

import hierarchical as hier

az.rcParams["stats.ci_prob"] = 0.94   # the intervals quoted below are 94% (tables follow ArviZ)

pd.set_option("display.precision", 3)
pd.set_option("display.width", 120)

# %% [markdown]
# ## The data and the small-county problem
#
# Our copy of the radon data is posteriordb's `radon_mn` (Gelman & Hill's data as prepared
# for posteriordb; see `hierarchical/datasets/PROVENANCE.md`): log radon per house, `floor`
# (0 = measured in the basement, 1 = first floor) and the county. County sizes are very
# uneven.

# %%
radon = hier.datasets.load("radon")
sizes = radon.groupby("county").size()
print(f"{len(radon)} houses in {sizes.size} counties; houses per county: "
      f"median {sizes.median():.0f}, min {sizes.min()}, max {sizes.max()}")
print(f"counties with 1 house: {(sizes == 1).sum()}, with <= 3 houses: {(sizes <= 3).sum()}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
axes[0].hist(sizes, bins=np.arange(0.5, sizes.max() + 1.5, 2), color="#9a9a9a")
axes[0].set(xlabel="houses measured in the county", ylabel="number of counties",
            title="County sizes")
raw = radon.groupby("county")["log_radon"].mean()
axes[1].scatter(sizes, raw, s=14, color="#1f5fa8", alpha=0.7)
axes[1].axhline(radon["log_radon"].mean(), color="#c0392b", ls="--", label="state mean")
axes[1].set(xscale="log", xlabel="houses measured (log scale)", ylabel="county mean log radon",
            title="Raw county means: the extremes are the small counties")
axes[1].legend(frameon=False);

# %% [markdown]
# The right panel is the small-county problem in one picture: the raw county means fan out as
# the county size falls. The spread at the left is mostly sampling noise (house-to-house SD of
# log radon is about 0.8, so a one-house "county mean" has an SE of 0.8), not evidence of
# extreme counties.
#
# ## Three models from one spec
#
# `compare_pooling` takes the partial-pooling model and derives the other two: complete
# pooling drops `(1 | county)`, no pooling gives each county its own intercept with an
# independent weakly informative prior (no shared SD). `floor` is a fixed slope in all three.

# %%
model = hier.Model("log_radon ~ floor + (1 | county)", radon)
pc = hier.compare_pooling(model, **SAMPLING, random_seed=1, progressbar=False)
pc.partial.fixed_effects()

# %%
pc.partial.variance_components()

# %% [markdown]
# The fixed effects and variance components are close to Gelman & Hill's `lmer` fit of the
# same model (their section 12.4: intercept 1.46, floor -0.69, county SD 0.33, residual SD
# 0.76). Small differences are expected: posteriordb's data are not byte-identical to
# theirs (their complete-pooling residual SD is 0.82, ours 0.79), and we report posterior means
# where `lmer` reports REML point estimates.
#
# ## How far each county moved
#
# `pc.table` has one row per county: the three estimates of the county intercept (basement
# log radon) and two measures of shrinkage toward complete pooling. *Empirical* shrinkage is
# `1 - (partial - complete) / (no pooling - complete)`, read off the three fits; *model-based*
# shrinkage is `sigma^2 / (sigma^2 + n_j tau^2)` averaged over the posterior (`lambda` is one
# minus it, the weight on the county's own data). The smallest and largest counties:

# %%
table = pc.table.droplevel(["group", "term"])
columns = ["n_obs", "no_pool_mean", "no_pool_sd", "partial_mean", "partial_sd",
           "complete_mean", "shrinkage", "shrinkage_model"]
table.sort_values("n_obs").iloc[[0, 1, 2, 3, -3, -2, -1]][columns]

# %% [markdown]
# A one-house county keeps only about a sixth of the distance between its own estimate and the
# state average (model-based shrinkage 0.84); St. Louis county, with 116 houses, keeps 95% of
# it. The empirical shrinkage is erratic where the no-pooling estimate happens to lie close to
# the state average (Mahnomen, Dakota, Hennepin): the ratio divides by a near-zero distance, so
# read the model-based column there. The
# partial-pooling posterior SDs are also much smaller than the no-pooling ones for small
# counties: borrowing strength is not only a change of the point estimate.
#
# The shrinkage plot draws every county as an arrow from its no-pooling estimate to its
# partial-pooling estimate, against county size (log scale):

# %%
hier.plots.shrinkage(pc);

# %% [markdown]
# The arrows are long at the left (small counties, pulled far toward the dashed
# complete-pooling line) and vanish at the right. Note that partial pooling does not erase
# county differences: the partial-pooling estimates still range from about 0.9 to 1.9 on the
# log scale, a factor of almost 3 in radon concentration between the extreme counties.
#
# The caterpillar plot shows the partial-pooling county intercepts with their 94% intervals,
# sorted:

# %%
hier.plots.caterpillar(pc.partial);

# %% [markdown]
# ## Pooling factors, pooling against county size, and the ICC
#
# Gelman & Pardoe (2006) summarise a whole grouping factor with one **pooling factor**:
# `1 - V_j(E[eps_j]) / E[V_j(eps_j)]`, the share of the between-county variation of the
# effects that the posterior means do *not* keep. 0 means no pooling, 1 complete pooling.
# The interval comes from the model-based factor per draw (the mean over counties of
# `sigma^2 / (sigma^2 + n_j tau^2)`, column `model_based`).

# %%
pc.pooling_factors

# %%
hier.plots.pooling_vs_size(pc);

# %% [markdown]
# The blue curve is the model-based shrinkage `sigma^2 / (sigma^2 + n_j tau^2)`: it falls
# below one half once `n_j > sigma^2 / tau^2`, i.e. a county with more than about
# `(0.73 / 0.32)^2`, roughly 5, houses is estimated mostly from its own data (Gelman & Hill
# make the same point in section 12.2 with the ratio `sigma_y^2 / sigma_alpha^2`). The grey points are the empirical shrinkage from the three fits;
# they scatter around the curve (the ratio is unstable where the no-pooling and complete-pooling
# estimates are close) but follow it, and so does the rank correlation:

# %%
rho, p = stats.spearmanr(table["n_obs"], table["shrinkage"])
post = pc.partial.posterior
tau2 = post["county_sd"].values[..., 0].ravel()[:, None] ** 2
sigma2 = post["sigma"].values.ravel()[:, None] ** 2
closed_form = (sigma2 / (sigma2 + table["n_obs"].to_numpy() * tau2)).mean(axis=0)
print(f"Spearman(county size, empirical shrinkage) = {rho:.2f} (p = {p:.1g})")
print(f"model-based shrinkage vs the closed form, max |difference| = "
      f"{np.abs(closed_form - table['shrinkage_model'].to_numpy()).max():.4f}")

# %% [markdown]
# (The toolkit evaluates the model-based shrinkage on at most 500 thinned draws, so it differs
# from the closed form over all draws by Monte Carlo error only.)
#
# The **ICC**, `tau^2 / (tau^2 + sigma^2)`, is the share of the variance of log radon (given
# floor) that lies between counties: the correlation of two houses in the same county.

# %%
pc.icc

# %% [markdown]
# About 16% of the variation is between counties. That is small per house, but a county mean
# over `n_j` houses has between-county variance `tau^2` against sampling variance
# `sigma^2 / n_j`, so what matters for pooling is `n_j` times the ICC ratio, not the ICC alone.
#
# ## Which model predicts new houses best?
#
# PSIS-LOO estimates how well each model predicts a house it has not seen. Gelman & Hill
# (section 12.2) report cross-validated root-mean-square prediction errors of 0.86 (no
# pooling), 0.84 (complete pooling) and 0.79 (partial pooling). `pc.compare` adds the LOO
# RMS error of the posterior predictive mean:

# %%
GELMAN_HILL = {"complete pooling": 0.84, "no pooling": 0.86, "partial pooling": 0.79}
compare = pc.compare.assign(gelman_hill_rmse=pd.Series(GELMAN_HILL))
compare[["rank", "elpd", "se", "elpd_diff", "dse", "n_high_pareto_k", "rmse_loo",
         "gelman_hill_rmse"]]

# %% [markdown]
# Partial pooling predicts best, as in Gelman & Hill, by about 20 elpd over no pooling and
# about 50 over complete pooling, both several standard errors of the difference (`dse`). The
# RMS errors are lower than theirs across the board because posteriordb's data have less
# residual variation (complete-pooling residual SD 0.79 against their 0.82); the differences
# between the models are what should be compared, and the ordering differs in one place:
# here no pooling beats complete pooling, in Gelman & Hill it is the other way round. On these
# data exact least-squares leave-one-out agrees with PSIS (0.773 no pooling, 0.791 complete;
# `README.md`), so this is a property of the data set, not of the LOO approximation.
# `n_high_pareto_k` counts houses whose PSIS estimate is unreliable (Pareto k > 0.7): under
# no pooling those are houses of one- and two-house counties, whose own
# intercept moves a lot when their only house is left out. The elpd differences are many times
# larger than what a handful of such points could contribute, so they do not change the
# ranking.
#
# ## Exact refits: the unreliable points, new houses and new counties
#
# PSIS is an approximation, and where it warns the cure is to refit. `loo(reloo=True)`
# refits the model without each house whose Pareto k exceeds 0.7 and scores that house
# exactly. `Fit.kfold` refits K times, each time holding a tenth of the houses out
# (`k=10`), or whole counties (`by="county"`): leave-county-out CV answers "how well does
# the model predict a county it has never seen?", which PSIS cannot answer at all. Each
# refit reuses the compiled model (held-out houses get weight 0, so every fold has the same
# graph), and `workers=2` runs them on two local processes (`client=` takes a Dask cluster).

# %%
partial_reloo = pc.partial.loo(reloo=True, workers=2, progressbar=False)
print(f"PSIS-LOO elpd {pc.compare.loc['partial pooling', 'elpd']:.1f}; with "
      f"{len(partial_reloo.refits)} exact refit(s): {partial_reloo.elpd:.1f}")

# %%
by_house = hier.pooling.from_fits(pc.fits, cv="kfold", workers=2, progressbar=False)
by_county = hier.pooling.from_fits(pc.fits, cv="group", workers=2, progressbar=False)
columns = ["elpd", "se", "elpd_diff", "dse", "rmse_cv", "levels_from_prior"]
pd.concat({"10-fold (new houses)": by_house.compare[columns],
           "leave-county-out (new counties)": by_county.compare[columns + ["note"]]})

# %% [markdown]
# For new houses, 10-fold CV ranks the models as PSIS-LOO does: partial pooling first. Its
# RMS error sits beside Gelman & Hill's 0.79; no pooling pays for the counties whose every
# house fell in one fold (`levels_from_prior`: those counties' intercepts then have only their
# prior to go on). For new counties the picture changes: partial pooling predicts a new
# county from the fitted distribution of counties, which with no county-level predictor is
# about what complete pooling predicts, so the two are within a standard error of each other
# (Gelman & Hill make the same point: multilevel modelling helps most for groups with some
# data). No pooling has no distribution of counties to draw a new one from, so it gets no
# number, only a note.
#
# ## A contrasting case: eight schools, where pooling is strong
#
# Whether pooling is weak or strong is not a property of the method; it is the ratio of the
# between-group SD `tau` to the noise in each group's own estimate. In radon, counties with more
# than about 5 houses have a sampling SE (`0.73 / sqrt(n_j)`) below `tau = 0.32`. In the SAT
# coaching experiments of Rubin (1981) (Gelman et al., *BDA* section 5.5) each school reports
# an estimated coaching effect with a standard error of 9 to 18 points, and the schools differ
# far less than that. The random-effects meta-analysis is the same partial-pooling model with
# known within-school variances.

# %%
schools = hier.datasets.load("eight_schools")
schools_model = hier.Model(hier.meta_analysis("y", se="se", group="school"), schools)
pc_schools = hier.compare_pooling(schools_model, **SAMPLING, random_seed=2, progressbar=False)
pc_schools.partial.variance_components()

# %%
pc_schools.table.droplevel(["group", "term"])[
    ["no_pool_mean", "no_pool_sd", "partial_mean", "partial_sd", "complete_mean",
     "shrinkage_model"]].join(schools.set_index("school")["se"])

# %%
hier.plots.shrinkage(pc_schools);

# %% [markdown]
# (The no-pooling estimate of school A is about 23, not its reported 28: "no pooling" still
# gives each school the weakly informative default prior of the overall mean,
# `Normal(mean(y), 2.5 sd(y))` = Normal(8.75, 26), and a single estimate with SE 15 is pulled
# slightly by it.)
#
# Every school is pulled most of the way to the pooled mean of about 8 points: school A ends at
# about 10. The posterior of `tau` has mean about 5 and a 94% interval from almost 0 to about 14,
# below the within-school SEs (9-18), so the model-based shrinkage `se_j^2 / (se_j^2 + tau^2)`
# is 0.77 to 0.91 for every school, largest for the noisiest (A, C, H). BDA (section 5.5, with a
# uniform prior on `tau`) reaches the same picture: the posterior of `tau` concentrates near
# zero and all eight posterior means lie between about 5 and 10.
#
# The pooling factor is above 0.9. Its interval is that of the model-based factor per draw
# (the mean over schools of `se_j^2 / (se_j^2 + tau^2)`, column `model_based`), so it inherits
# the wide posterior of `tau`: draws with `tau` near zero pool completely. (The per-draw
# version of Gelman & Pardoe's own ratio, `1 - V_j(E[eps_j]) / V_j(eps_j^s)`, is no interval:
# its denominator vanishes with `tau`.) The next notebook, `prior_sensitivity`, shows how much
# the prior of `tau` matters:

# %%
pd.concat({"radon (85 counties)": pc.pooling_factors,
           "eight schools": pc_schools.pooling_factors})

# %%
pc_schools.compare[["rank", "elpd", "se", "elpd_diff", "dse", "n_high_pareto_k"]]

# %% [markdown]
# In the LOO comparison complete and partial pooling are within about two standard errors of
# the difference of each other (0.4 elpd), and no pooling is worst: the data cannot tell a small `tau` from zero, which is
# exactly why partial pooling behaves almost like complete pooling here, and why BDA's
# posterior for `tau` puts substantial mass near zero. (With one observation per school,
# leaving a school out leaves its no-pooling effect with nothing but its prior, so Pareto k is
# high for several schools under no pooling.)
#
# ## Summary
#
# | | radon | eight schools |
# |---|---|---|
# | between-group SD `tau` | 0.32 (log scale), 94% interval 0.24-0.41 | 4.9 points, 94% interval 0.2-13.7 |
# | noise of one group's own estimate | `0.73 / sqrt(n_j)`: 0.73 to 0.07 | `se_j`: 9 to 18 points |
# | model-based shrinkage | 0.84 for one-house counties, 0.05 for the largest | 0.77 to 0.91 for every school |
# | pooling factor (Gelman & Pardoe) | 0.49 | 0.91 |
# | best predictive model (LOO) | partial pooling, clearly | partial ~ complete |
#
# Partial pooling lets the data choose where between the two extremes each group lands: the
# ratio of `tau^2` to the sampling variance of the group's own estimate decides it. With many
# groups (radon) `tau` is well estimated and the small groups borrow strength from the large;
# with few noisy groups (eight schools) `tau` is uncertain and small, so the estimates pool
# strongly, and the prior on `tau` starts to matter.
