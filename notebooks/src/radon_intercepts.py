# %% [markdown]
# # Random intercepts: radon in Minnesota homes
#
# Radon is a radioactive gas that seeps into houses from the ground; it is the second cause of
# lung cancer after smoking. The EPA measured it in 919 Minnesota homes spread over 85
# counties. Gelman & Hill (2006, ch. 12) use these data to introduce multilevel models, and we
# follow them here with two questions:
#
# 1. **How much does radon vary between counties**, once we allow for the floor the
#    measurement was taken on (basement, `floor = 0`, or first floor, `floor = 1`)?
# 2. **How much lower is radon on the first floor** than in the basement?
#
# Counties range from 1 to 116 sampled houses, so estimating each county on its own is noisy
# for the small ones, while ignoring counties throws away real geography. The varying-intercept
# model sits between the two:
#
# $$y_i = \alpha_{j[i]} + \beta\,\mathrm{floor}_i + \varepsilon_i,\qquad
#   \alpha_j \sim N(\mu_\alpha, \sigma_\alpha^2),\qquad \varepsilon_i \sim N(0, \sigma_y^2).$$
#
# `y` is log radon (log pCi/L). The county intercepts are *partially pooled*: a county with many
# houses keeps close to its own mean, a county with two houses is pulled toward the state mean.

# %%
import os
QUICK = os.environ.get("HIERARCHICAL_QUICK") == "1"   # the test suite sets this: fewer draws, same code
SAMPLING = dict(draws=200, tune=300, chains=2) if QUICK else dict(draws=1000, tune=1000, chains=4)

# %%
import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import hierarchical as hier

az.rcParams["stats.ci_prob"] = 0.94   # the intervals quoted below are 94% (tables follow ArviZ)

pd.set_option("display.precision", 3)
pd.set_option("display.max_colwidth", 90)

# %% [markdown]
# ## The data
#
# One row per house: the county, the floor, log radon, and the county's log soil uranium (a
# county-level measurement, the same for every house in a county).

# %%
radon = hier.datasets.load("radon")
houses = radon.groupby("county").size()
print(f"{len(radon)} houses in {radon['county'].nunique()} counties; "
      f"houses per county: median {houses.median():.0f}, min {houses.min()}, max {houses.max()}")
radon.head()

# %% [markdown]
# The packaged file is posteriordb's `radon_mn`, prepared from the same EPA survey Gelman & Hill
# use. It is not byte-identical to their file (the pooled regression's residual SD is 0.79 here,
# 0.82 in the book), so we expect agreement to a few hundredths, not to the last digit.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
axes[0].hist(houses, bins=40, color="#1f5fa8")
axes[0].set(xlabel="houses sampled in the county", ylabel="counties",
            title="Most counties have few houses")
for floor, label in [(0, "basement"), (1, "first floor")]:
    axes[1].hist(radon.loc[radon["floor"] == floor, "log_radon"], bins=30, alpha=0.6,
                 density=True, label=f"{label} (n = {(radon['floor'] == floor).sum()})")
axes[1].set(xlabel="log radon (log pCi/L)", ylabel="density", title="Radon by floor")
axes[1].legend(frameon=False);

# %% [markdown]
# ## The model
#
# `hier.random_intercepts` builds the spec of `log_radon ~ floor + (1 | county)`; the formula
# string would give the same model. `model.priors` lists every prior with the arithmetic that
# set its scale from the data (weakly informative: about 2.5 outcome SDs per predictor SD).

# %%
spec = hier.random_intercepts("log_radon", group="county", predictors=["floor"])
model = hier.Model(spec, radon)
print(spec.formula)
model.priors

# %% [markdown]
# A Gaussian model with one grouping factor is sampled with the county effects **integrated
# out** analytically (the likelihood of each county's houses is multivariate normal given the
# hyperparameters), then the effects are drawn exactly from their conditional distribution
# after sampling. `model.parameterisation` says so:

# %%
model.parameterisation

# %% [markdown]
# `model.pymc_model` is a real PyMC model with named dimensions, so it can be inspected or
# extended with PyMC directly. Because the effects are marginalised, the sampled graph holds only
# the hyperparameters; `model.full_pymc_model` is the textbook graph with one effect per
# county (`county_z` are the standardised effects of the non-centred form).

# %%
for name, m in [("pymc_model (sampled)", model.pymc_model),
                ("full_pymc_model", model.full_pymc_model)]:
    print(name)
    print("  free variables:", [rv.name for rv in m.free_RVs])
    print("  dims:", m.named_vars_to_dims)
    print("  coords:", {k: len(v) for k, v in m.coords.items()})

# %% [markdown]
# ## Fitting and checking convergence
#
# NUTS through nutpie. `fit.diagnostics()` gathers r-hat, bulk and tail ESS, divergences and
# E-BFMI into one verdict; a failing fit also raises a `ConvergenceWarning` on its own.

# %%
fit = model.fit(**SAMPLING, random_seed=1, progressbar=False)
fit

# %%
fit.diagnostics()

# %% [markdown]
# ## Fixed effects and variance components
#
# `Intercept` is the mean log radon in a basement of a typical county, `floor` the
# first-floor difference. The variance components are the between-county SD of the intercepts
# (`sigma_alpha`) and the within-county residual SD (`sigma_y`).

# %%
fit.fixed_effects()

# %%
fit.variance_components()

# %% [markdown]
# Next to Gelman & Hill's published estimates (their `lmer` fit, section 12.4):

# %%
def posterior_mean(table, key):
    return table.loc[key, "mean"]

vc = fit.variance_components()
fe = fit.fixed_effects()
reference = pd.DataFrame({
    "this fit (posterior mean)": [posterior_mean(fe, "floor"),
                                  posterior_mean(vc, ("county", "Intercept")),
                                  posterior_mean(vc, ("residual", "sigma"))],
    "94% interval": [f"{fe.loc['floor', 'eti94_lb']:.2f} to {fe.loc['floor', 'eti94_ub']:.2f}",
                     f"{vc.loc[('county', 'Intercept'), 'eti94_lb']:.2f} to "
                     f"{vc.loc[('county', 'Intercept'), 'eti94_ub']:.2f}",
                     f"{vc.loc[('residual', 'sigma'), 'eti94_lb']:.2f} to "
                     f"{vc.loc[('residual', 'sigma'), 'eti94_ub']:.2f}"],
    "Gelman & Hill (2006)": [-0.69, 0.33, 0.76],
}, index=["floor (beta)", "sigma_alpha (county SD)", "sigma_y (residual SD)"])
reference

# %% [markdown]
# The floor effect and the county SD agree with the book to within 0.03, well inside the
# posterior intervals: radon measured on the first floor is about `exp(-0.66) ≈ 0.5` times
# basement radon, half. The residual SD is 0.03 lower than the book's 0.76, at the edge of its
# interval; that gap is the data, not the method: the same 0.03 separates the *pooled*
# regression's residual SD on this file (0.79) from the book's (0.82), so posteriordb's
# `radon_mn` simply has a little less house-to-house noise than Gelman & Hill's file. A
# posterior mean of an SD is also not the (restricted) maximum-likelihood estimate `lmer`
# reports, but with 85 counties and 919 houses the two nearly coincide, so we read
# "agreement" as differences of a few hundredths, each explained.
#
# ## How much of the variation is between counties?
#
# The intraclass correlation is `sigma_alpha^2 / (sigma_alpha^2 + sigma_y^2)`: the share of the
# variance of log radon (given floor) that lies between counties, or equivalently the
# correlation between two houses of the same county.

# %%
fit.icc()

# %% [markdown]
# About 16% of the variance is between counties. That is small as a share, but on the
# original scale a county one SD above average has `exp(0.32) ≈ 1.4` times the radon of an
# average county, which matters when a safety threshold is applied to county averages.
#
# ## The county intercepts
#
# The caterpillar plot shows each county's intercept (`mu_alpha + alpha_j`, basement level)
# with its 94% interval, sorted. Wide intervals are the small counties; their estimates sit
# close to the state mean (dashed) because the model pulled them there.

# %%
fig = hier.plots.caterpillar(fit)
fig.set_size_inches(7, 12)

# %% [markdown]
# How far each county was pulled depends on its size: the model-based shrinkage of county `j` is
# `sigma_y^2 / (sigma_y^2 + n_j sigma_alpha^2)`, close to 1 (fully pooled) for a county with one
# house and close to 0 for Hennepin's 105.

# %%
shrink = fit.shrinkage().droplevel(["group", "term"]).join(houses.rename("houses"))
shrink.sort_values("houses").iloc[[0, 1, 2, len(shrink) // 2, -3, -2, -1]]

# %% [markdown]
# ## A county-level predictor: soil uranium
#
# Part of the between-county variation has a physical cause: uranium in the soil decays to
# radon. Gelman & Hill (section 12.6) add the county's log uranium as a group-level predictor,
# `alpha_j ~ N(gamma_0 + gamma_1 u_j, sigma_alpha^2)`. In formula terms it is one more fixed
# effect that happens to be constant within county:

# %%
model_u = hier.Model("log_radon ~ floor + log_uranium + (1 | county)", radon)
fit_u = model_u.fit(**SAMPLING, random_seed=2, progressbar=False)
fit_u.diagnostics().verdict

# %%
fit_u.fixed_effects()

# %%
sd_draws = {
    "floor only": fit.posterior["county_sd"].values.ravel(),
    "floor + log uranium": fit_u.posterior["county_sd"].values.ravel(),
}
summary = pd.DataFrame({
    name: {"county SD (mean)": d.mean(), "3%": np.quantile(d, 0.03), "97%": np.quantile(d, 0.97)}
    for name, d in sd_draws.items()}).T
summary["Gelman & Hill"] = [0.33, 0.16]
summary

# %%
fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
for name, d in sd_draws.items():
    ax.hist(d, bins=60, density=True, alpha=0.6, label=name)
ax.set(xlabel="between-county SD of the intercepts, sigma_alpha", ylabel="posterior density",
       title="Uranium explains most of the between-county variation")
ax.legend(frameon=False);

# %% [markdown]
# A one-unit increase in log uranium (uranium times e ≈ 2.7) multiplies expected radon by about
# `exp(0.79) ≈ 2.2` (Gelman & Hill: 0.72, within one posterior SD of 0.10). Adding it halves the
# unexplained county SD (0.32 → 0.15; the book: 0.33 → 0.16) while the floor effect and
# `sigma_y` barely move: uranium explains *between*-county differences, not differences between
# houses of the same county. The remaining county SD has much of its posterior near zero, so
# it is less precisely estimated relative to its size than before.
#
# ## Predictions for a new house
#
# Take a new basement measurement in **Hennepin** (Minneapolis, 105 houses in the data) and
# in a county the survey never sampled, with the state's median log uranium. For the unseen
# county `new_groups="population"` draws its intercept from the fitted county distribution,
# so the prediction carries the county-to-county uncertainty. `kind="mean"` is the expected log
# radon (the county's average basement); `kind="response"` adds a house's own variation
# (`sigma_y`), the interval a homeowner should read.

# %%
hennepin_u = radon.loc[radon["county"] == "HENNEPIN", "log_uranium"].iloc[0]
new = pd.DataFrame({"county": ["HENNEPIN", "UNSAMPLED COUNTY"], "floor": [0, 0],
                    "log_uranium": [hennepin_u, radon.groupby("county")["log_uranium"].first().median()]})
mean = fit_u.predict(new, kind="mean", new_groups="population", random_seed=3)
house = fit_u.predict(new, kind="response", new_groups="population", random_seed=3)
table = pd.concat({"county mean (log)": mean, "new house (log)": house}, axis=1)
table.index = new["county"]
table

# %%
print("On the pCi/L scale (median and 94% interval for one new basement):")
for county, (_, row) in zip(new["county"], house.iterrows()):
    low, mid, high = np.exp(row[["eti94_lb", "mean", "eti94_ub"]])
    print(f"  {county:17s} {mid:4.1f}  ({low:.1f} to {high:.1f})")

# %% [markdown]
# The county means differ in width as they should: Hennepin's average is pinned down by 105
# houses, the unsampled county's by uranium and the between-county SD alone. For a single house
# the residual SD (0.73 on the log scale, a factor of about 2) dominates both intervals, which
# is why the EPA recommends measuring every home rather than relying on the county average.
# The EPA action level is 4 pCi/L.
#
# **Summary.** On posteriordb's version of the data the varying-intercept model reproduces
# Gelman & Hill's estimates to a few hundredths (floor −0.66 vs −0.69, `sigma_alpha` 0.32 vs
# 0.33, falling to 0.15 vs 0.16 with uranium; `sigma_y` 0.73 vs 0.76, the gap the data files
# themselves show). Counties account for about 16% of the variance of log radon given floor,
# and soil uranium for most of that.
