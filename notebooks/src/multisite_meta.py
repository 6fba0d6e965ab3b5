# %% [markdown]
# # A multi-site study: UV-B exposure and melanoma mortality across nine nations
#
# **Question.** Is higher UV-B exposure associated with higher malignant melanoma mortality,
# once we pool the evidence from nine European Community nations?
#
# **Data.** `mmmec` (R package mlmRev, `Mmmec`; Langford, Bentham & McDonald 1998): male
# melanoma deaths 1971-1980 in 354 counties, nested in 78 regions of 9 nations, with the
# number of deaths *expected* from the county's population and age structure, and the
# county's UV-B dose (centred). The outcome is a count, so the model is Poisson with
# `log(expected)` as an offset: `exp(beta)` for UV-B is the ratio of the mortality rate (SMR)
# per unit of UV-B dose.
#
# Each nation is a "site" with its own registry, population and UV-B range, the situation
# of any multi-site study. There are two standard ways to pool:
#
# * **two-stage**: analyse each site separately, then combine the nine slope estimates and
#   their standard errors in a random-effects meta-analysis;
# * **one-stage**: fit one hierarchical model to all 354 county rows, with the UV-B slope
#   varying by nation.
#
# We do both, compare the pooled UV-B effect and its uncertainty, and find out *why* the
# uncertainties differ where they do.

# %%
import os
QUICK = os.environ.get("HIERARCHICAL_QUICK") == "1"   # the test suite sets this: fewer draws, same code
SAMPLING = dict(draws=200, tune=300, chains=2) if QUICK else dict(draws=2000, tune=2000, chains=4)

# %%
import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import hierarchical as hier

az.rcParams["stats.ci_prob"] = 0.94   # the intervals quoted below are 94% (tables follow ArviZ)

pd.set_option("display.precision", 3)
pd.set_option("display.width", 120)

# %%
mmmec = hier.datasets.load("mmmec")
mmmec.groupby("nation").agg(counties=("county", "size"), regions=("region", "nunique"),
                            deaths=("deaths", "sum"), expected=("expected", "sum"),
                            uvb_mean=("uvb", "mean"), uvb_sd=("uvb", "std"))

# %% [markdown]
# The nations are very unequal sites. France and Italy have about 95 counties each and a wide
# range of UV-B; Luxembourg has 3 counties in 1 region with almost no UV-B spread (SD 0.05,
# against 2.6 in France), 23 deaths in all. Mean UV-B also differs a lot *between* nations
# (Italy high, Denmark and Ireland low), which is why the slope is estimated *within* nations
# here: a between-nation comparison would mix UV-B with everything else that differs between
# Italy and Denmark.
#
# ## Stage one: a Poisson regression per nation
#
# For each nation, `log E[deaths_i] = log(expected_i) + a + b uvb_i`, fitted by maximum
# likelihood with iteratively reweighted least squares (IRLS). The standard error of `b` is
# from the inverse Fisher information `(X' W X)^-1`, `W = diag(mu_i)`. Beside it we compute the
# Pearson dispersion `phi = sum (y - mu)^2 / mu / (n - 2)`: a Poisson model says `phi` is about
# 1, and the quasi-Poisson SE `SE * sqrt(phi)` is what the SE becomes if counties scatter
# more than Poisson allows (we never let it shrink an SE: `max(phi, 1)`).

# %%
def poisson_glm(y, x, log_offset, tol=1e-10, max_iter=100):
    """ML fit of log E[y] = log_offset + a + b x by IRLS: (a, b), SE of b, Pearson phi."""
    X = np.column_stack([np.ones_like(x), x])
    beta = np.array([np.log(y.sum() / np.exp(log_offset).sum()), 0.0])
    for _ in range(max_iter):
        mu = np.exp(log_offset + X @ beta)
        z = X @ beta + (y - mu) / mu                                 # working response
        new = np.linalg.solve(X.T @ (mu[:, None] * X), X.T @ (mu * z))
        done = np.max(np.abs(new - beta)) < tol
        beta = new
        if done:
            break
    mu = np.exp(log_offset + X @ beta)
    cov = np.linalg.inv(X.T @ (mu[:, None] * X))                    # inverse Fisher information
    phi = np.sum((y - mu) ** 2 / mu) / max(len(y) - 2, 1)
    return beta, np.sqrt(cov[1, 1]), phi


rows = []
for nation, d in mmmec.groupby("nation"):
    (a, b), se, phi = poisson_glm(d["deaths"].to_numpy(float), d["uvb"].to_numpy(),
                                  np.log(d["expected"].to_numpy()))
    rows.append({"nation": nation, "counties": len(d), "estimate": b, "se": se, "phi": phi,
                 "se_quasi": se * np.sqrt(max(phi, 1.0))})
stage1 = pd.DataFrame(rows)
stage1

# %% [markdown]
# Three things stand out.
#
# * **The nations disagree.** UK (+0.14 ± 0.02) and Italy (-0.08 ± 0.01) are both precise and
#   of opposite sign; no single slope fits both. The between-nation heterogeneity of the slope is
#   the dominant feature of these data.
# * **Counties are overdispersed.** `phi` is 1.3-1.7 in the big nations and 5-10 in West Germany
#   and Belgium: counties in the same region share risk factors the model does not have, so
#   the Poisson SEs are too small, by a factor `sqrt(phi)` (2.3 for West Germany, 3.2 for
#   Belgium).
# * **Luxembourg** gives a slope of about +6.4 with an SE of about 6.7: three counties whose
#   UV-B doses differ by hundredths cannot estimate a slope. The number is not wrong, it is
#   uninformative, and a normal approximation to such a flat, asymmetric likelihood is poor.
#   What matters is what the next stage does with it.
#
# ## Stage two: random-effects meta-analysis of the nine slopes
#
# `estimate_j ~ N(theta_j, se_j)`, `theta_j ~ N(mu, tau)`: `mu` is the pooled UV-B effect,
# `tau` the between-nation SD of the true slopes, `theta_j` the shrunken per-nation slopes.
#
# The toolkit's default priors are scaled to the data, here to `sd(estimate)`, and
# Luxembourg's +6.4 inflates that SD from about 0.1 to about 2. So that the two-stage and
# one-stage analyses answer the same question under the same assumptions, we give `mu` and
# `tau` the priors the one-stage model below uses by default for the UV-B slope and its
# between-nation SD (scaled by `sd(uvb)` over all counties, not by the stage-one estimates).
#
# One more choice: the sites are extremely unequal (SEs from 0.008 to 0.23, and 6.7), and the
# toolkit's automatic parameterisation, which looks at the *typical* site, picks the
# non-centred form. For France and Italy, whose own data pin their slope down far more tightly
# than `tau` does, that form samples poorly (in a trial run: divergences and a bulk ESS of about
# 500 for `mu` from 4,000 draws); the centred form gives an ESS of about 4,000 with no
# divergences, so we ask for it with `centered=True`.

# %%
one_stage = hier.Model("deaths ~ uvb + (1 + uvb | nation) + (1 | region)", mmmec,
                       family="poisson", exposure="expected")
defaults = {e.label: e.prior for e in one_stage.prior_entries}
SLOPE_PRIORS = {"Intercept": defaults["uvb"], "nation_sd": defaults["nation_sd[uvb]"]}
SLOPE_PRIORS

# %%
meta_spec = hier.meta_analysis("estimate", se="se", group="nation", priors=SLOPE_PRIORS)
meta_fit = hier.Model(meta_spec, stage1, centered=True).fit(**SAMPLING, random_seed=1,
                                                            progressbar=False)
meta_fit.fixed_effects()

# %%
meta_fit.variance_components()

# %% [markdown]
# The pooled UV-B slope `mu` is close to zero, with a posterior SD of about 0.05, and `tau`,
# the between-nation SD of the slopes, is about 0.1: ten times the stage-one SEs of France and
# Italy. This is the central fact for everything that follows: the uncertainty about `mu` is
# set by how much the nations differ (`tau`) and how many nations there are (9), not by how
# precisely each nation measured its own slope.
#
# What happened to Luxembourg? Its weight in the pooled mean, `1 / (se_j^2 + tau^2)`
# normalised, is negligible, and its shrunken slope is essentially `mu`:

# %%
tau = meta_fit.posterior["nation_sd"].values.ravel()
weights = 1 / (stage1["se"].to_numpy()[:, None] ** 2 + tau ** 2)
stage1_weights = stage1.assign(weight_share=(weights / weights.sum(axis=0)).mean(axis=1))
shrunk = meta_fit.group_effects().droplevel(["group", "term"])[["mean", "sd"]]
stage1_weights.set_index("nation")[["estimate", "se", "weight_share"]].join(
    shrunk.add_prefix("theta_"))

# %% [markdown]
# The meta-analysis handles the uninformative site correctly: a huge SE means almost no weight
# (about 0.005%), so no exclusion rule is needed. Excluding Luxembourg would change nothing
# that matters here; leaving it in with data-scaled *default* priors, on the other hand, would
# have let its estimate set the prior scale of `tau`.
#
# ## One stage: a Poisson GLMM on all county rows
#
# The one-stage model fits every county at once, with nation-specific intercepts and UV-B
# slopes drawn from a bivariate normal (the `(1 + uvb | nation)` term), and, because counties
# in a region are overdispersed, a region intercept `(1 | region)`:
#
# `log E[deaths_i] = log(expected_i) + (b0 + u0_nation) + (b1 + u1_nation) uvb_i + v_region`
#
# `b1` is the pooled UV-B effect, the one-stage counterpart of `mu`. `exposure="expected"`
# puts `log(expected)` in as the offset (`offset=` takes a column already on the log scale).
# The template form `hier.poisson_glmm("deaths", group="nation", predictors=["uvb"],
# exposure="expected", slopes=["uvb"])` builds the same model without the region term.
#
# This model has 102 free parameters (78 region effects among them), two more than the limit
# up to which the toolkit lets nutpie learn a low-rank mass matrix, so it samples with a
# diagonal one; the ridge between each nation's intercept and the effects of its regions
# (only 1-4 regions in the small nations) then mixes slowly, and 4 x 1,000 draws left a few
# nation and region effects with r_hat just above 1.01. This notebook therefore draws 4 x 2,000
# after 2,000 tuning steps (about 15 s).

# %%
one_fit = one_stage.fit(**SAMPLING, random_seed=2, progressbar=False)
one_fit.fixed_effects()

# %%
one_fit.variance_components()

# %% [markdown]
# The pooled slope `b1` and its posterior SD are close to the meta-analysis's `mu`: near zero,
# SD about 0.05, and the between-nation SD of the slope (`nation`, `uvb`) is again about 0.1. The region SD of about 0.19 on the log scale says that regions within a nation differ in
# melanoma mortality by about ±20% beyond what UV-B explains: that is the extra-Poisson
# variation stage one saw as `phi > 1`.
#
# ## Why do the standard errors differ, and where?
#
# The two headline answers barely differ, which is itself informative. To see which modelling
# choice moves the SE of the pooled slope, cross the two choices that distinguish the usual
# analyses:
#
# * does the UV-B slope **vary between nations** (random-effects meta-analysis, `(1 + uvb |
#   nation)`), or is it one **common slope** (fixed-effect meta-analysis, `(1 | nation)`)?
# * is the **extra-Poisson** variation between counties modelled (quasi-Poisson SEs in two
#   stages, `(1 | region)` in one stage) or ignored (plain Poisson)?
#
# The common-slope two-stage analysis is the inverse-variance weighted mean
# `sum(w_j b_j) / sum(w_j)` with SE `1 / sqrt(sum w_j)`, `w_j = 1 / se_j^2`; it needs no
# sampling.

# %%
def fixed_effect(estimate, se):
    w = 1 / se ** 2
    return pd.Series({"mean": np.sum(w * estimate) / w.sum(), "sd": 1 / np.sqrt(w.sum())})


quasi_fit = hier.Model(meta_spec, stage1.assign(se=stage1["se_quasi"]), centered=True).fit(
    **SAMPLING, random_seed=3, progressbar=False)
FORMULAS = {
    ("common slope", "Poisson"): "deaths ~ uvb + (1 | nation)",
    ("common slope", "extra-Poisson"): "deaths ~ uvb + (1 | nation) + (1 | region)",
    ("slope varies by nation", "Poisson"): "deaths ~ uvb + (1 + uvb | nation)",
}
one_stage_fits = {("slope varies by nation", "extra-Poisson"): one_fit}
for i, (key, formula) in enumerate(FORMULAS.items()):
    model = hier.Model(formula, mmmec, family="poisson", exposure="expected")
    one_stage_fits[key] = model.fit(**SAMPLING, random_seed=10 + i, progressbar=False)

# %%
two_stage = {
    ("common slope", "Poisson"): fixed_effect(stage1["estimate"], stage1["se"]),
    ("common slope", "extra-Poisson"): fixed_effect(stage1["estimate"], stage1["se_quasi"]),
    ("slope varies by nation", "Poisson"): meta_fit.fixed_effects().loc["Intercept", ["mean", "sd"]],
    ("slope varies by nation", "extra-Poisson"): quasi_fit.fixed_effects().loc["Intercept", ["mean", "sd"]],
}
grid = pd.concat({
    "two-stage": pd.DataFrame(two_stage).T,
    "one-stage": pd.DataFrame({k: f.fixed_effects().loc["uvb", ["mean", "sd"]]
                               for k, f in one_stage_fits.items()}).T,
}, axis=1).rename_axis(["slope", "county variation"]).sort_index()
grid.round(3)

# %% [markdown]
# Read the table by rows and by columns:
#
# * **Letting the slope vary between nations is what dominates.** Every analysis that allows it
#   gives a pooled slope near zero with a posterior SD of 0.044-0.053; every analysis with a
#   common slope gives a negative slope (about -0.02 to -0.03) with an SE of 0.005-0.012,
#   four to ten times smaller. Once `tau` is about 0.1, the pooled slope is uncertain because
#   nine nations disagree, and the precision of each nation's own slope hardly matters: in two
#   stages, inflating the stage-one SEs by `sqrt(phi)` moves the random-effects SD only from
#   0.049 to 0.053.
# * **Extra-Poisson variation matters when the slope is common**, and there the per-nation
#   Poisson SEs are too small: the quasi-Poisson correction widens the fixed-effect SE from
#   0.005 to 0.007, and the one-stage `(1 | region)` term from 0.005 to 0.012. The quasi-Poisson
#   correction does not go far enough, because it treats the extra variation as independent
#   from county to county, while it is *shared within regions* and UV-B itself varies mostly
#   between regions (next cell): the slope is learnt from region-to-region contrasts, and a
#   region effect with SD 0.19 competes directly with them. This is the one place where two-
#   and one-stage analyses with nominally the same assumption differ by a factor near 2.
# * **With the slope varying, two-stage and one-stage agree to about 10%** (0.049 vs 0.044
#   without, 0.053 vs 0.048 with extra-Poisson variation). That gap tracks the estimate of
#   `tau` (posterior mean 0.108 in the meta-analysis, 0.099 in the one-stage model); the
#   one-stage model also pools the nation intercepts and uses the exact Poisson likelihood
#   rather than a normal approximation per nation, and we have not separated those
#   contributions further. It is small next to the differences between rows.

# %%
region_mean = mmmec.groupby("region")["uvb"].transform("mean")
nation_mean = mmmec.groupby("nation")["uvb"].transform("mean")
share = ((region_mean - nation_mean) ** 2).sum() / ((mmmec["uvb"] - nation_mean) ** 2).sum()
print(f"share of the within-nation variance of UV-B that lies between regions: {share:.2f}")

# %% [markdown]
# So the answer to "why are the SEs different?" depends on which SEs. Between two- and
# one-stage analyses that both let the slope vary, there is little to explain. Between
# common-slope analyses, modelling the region-level clustering matters (and quasi-Poisson only
# gets part of the way). Between analyses that do and do not let the UV-B effect differ
# between nations, the difference is large, and it is real heterogeneity, which the
# common-slope analyses ignore.
#
# ## The lme4 reference model
#
# Bates's mlmRev examples fit `glmer(deaths ~ uvb + (1 | region), Mmmec, poisson,
# offset = log(expected))`: one common slope, region intercepts, no nation term. Its Bayesian
# counterpart:

# %%
region_fit = hier.Model("deaths ~ uvb + (1 | region)", mmmec, family="poisson",
                        exposure="expected").fit(**SAMPLING, random_seed=20, progressbar=False)
region_fit.fixed_effects()

# %% [markdown]
# (We do not quote lme4's numbers from memory and have not run R here; the call above gives
# them. With 78 regions and about 9,800 deaths the posterior and a Laplace ML fit are expected to
# be close, but that comparison is left to the reader.)
#
# This model finds a clearly negative UV-B slope with an SE of about 0.01. It is the most
# "significant" result in this notebook and the least trustworthy for our question: without
# a nation term, the slope is partly a comparison *between* nations (Italian regions have high
# UV-B and low melanoma mortality, Danish and British ones the opposite), confounded by
# everything else that differs between them, and it assumes one slope fits every nation, which
# the UK and Italy alone contradict.
#
# ## Forest plot

# %%
fig = hier.plots.forest(meta_fit)

# %% [markdown]
# `hier.plots.forest` draws a meta-analysis as it is usually published: each nation's stage-1
# estimate with its ±1.96 SE interval, its partially pooled slope, the pooled mean `mu` as a
# diamond and the prediction interval for a new nation. The one-stage model's nation slopes
# (`b1 + u1`) and the pooled slopes of every model, side by side:

# %%
nations = list(stage1["nation"])
per_nation = pd.concat({
    "stage 1 (ML)": stage1.set_index("nation")[["estimate", "se"]].set_axis(["mean", "sd"], axis=1),
    "two-stage": meta_fit.group_effects().droplevel(["group", "term"])[["mean", "sd"]],
    "one-stage": one_fit.group_effects().xs("uvb", level="term").droplevel("group")[["mean", "sd"]],
}, axis=1).loc[nations]
per_nation

# %%
pooled = pd.DataFrame({"pooled, two-stage (mu)": meta_fit.fixed_effects().loc["Intercept"],
                       "pooled, one-stage (b1)": one_fit.fixed_effects().loc["uvb"],
                       "common slope, (1 | region) only": region_fit.fixed_effects().loc["uvb"]}).T
pooled[["mean", "sd", "eti94_lb", "eti94_ub"]]

# %% [markdown]
# The forest plot and the table tell the story at a glance. The precise nations scatter on both sides of
# zero, by far more than their own error bars (UK to the right, Italy to the left): that
# scatter *is* `tau`. The small nations (Belgium, Denmark, Ireland, Netherlands, Luxembourg) are
# pulled toward the pooled mean in both analyses; the large ones keep their own estimates.
# Two-stage and one-stage agree for France, Italy and West Germany. The UK's one-stage slope is
# smaller (about 0.10 against 0.13) and less precise: with region effects in the model, part of
# the contrast between British regions is attributed to the regions rather than to UV-B (the
# stage-one fit has no region term). The small nations' slopes move within their wide
# intervals. The pooled slopes straddle zero with 94% intervals of about ±0.09, while the
# common-slope region model's narrow interval lies below zero.
#
# ## Conclusion
#
# * **Answer to the question.** Pooling the within-nation evidence, there is no consistent
#   association between county UV-B dose and male melanoma mortality: the pooled log rate ratio
#   per unit UV-B is near zero with a 94% interval of roughly -0.08 to +0.09 in both the
#   two-stage and one-stage analyses. The association differs between nations (positive in the
#   UK, negative in Italy); a single pooled number hides that, and `tau` should be reported with
#   it. These are ecological (county-level) data; they do not address individual exposure.
# * **Two-stage vs one-stage.** With matched assumptions they agree closely, here because every
#   informative nation has enough deaths for the normal approximation and the one site that
#   does not (Luxembourg) is weighted to nothing. One-stage is still the more natural model: it
#   needs no per-site approximation, handles sparse sites and county-level overdispersion in
#   one place, and gives per-nation slopes and the region variance from one fit.
# * **Standard errors.** The SE of the pooled effect is driven by the between-nation
#   heterogeneity (`tau` ≈ 0.1 against per-nation SEs of 0.01-0.03 for the large nations). The
#   extra-Poisson, region-level variation makes per-nation Poisson SEs too small (and a
#   county-level quasi-Poisson correction only partly fixes that, because UV-B varies mostly
#   between regions); it matters when a common slope is assumed (SE 0.005 -> 0.012 in one
#   stage) but hardly moves the random-effects SE. Analyses that assume a common slope
#   (fixed-effect meta-analysis, `glmer(deaths ~ uvb + (1 | region))`) report SEs four to ten
#   times smaller and a negative slope; they should not be used to answer a question about
#   nine nations that evidently differ.
