# %% [markdown]
# # Random slopes: reaction times under sleep deprivation
#
# Belenky et al. (2003) restricted 18 volunteers to three hours of sleep a night and measured
# their average reaction time on a vigilance task every day (day 0 is baseline). lme4 ships the
# data as `sleepstudy`, and Bates et al. (2015, *J. Stat. Softw.* 67(1)) use it to introduce
# `lmer`. The questions:
#
# 1. **How much slower do people get per day** of sleep deprivation, on average?
# 2. **How much do people differ**, both in baseline speed and in how fast they deteriorate,
#    and are the two related (do slow people deteriorate faster)?
#
# With ten days per subject, each subject's own regression line is estimable, but noisy; the
# random-slopes model `Reaction ~ Days + (Days | Subject)` lets every subject have an intercept
# and a slope, drawn from a bivariate normal population whose correlation is estimated too.

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

# %%
sleep = hier.datasets.load("sleepstudy")
print(f"{len(sleep)} rows, {sleep['Subject'].nunique()} subjects x {sleep['Days'].nunique()} days")
sleep.head()

# %% [markdown]
# ## The model
#
# `(Days | Subject)` gives each subject a deviation in intercept and in slope, correlated
# (an LKJ prior on the correlation). `model.priors` shows the defaults and their scale.

# %%
model = hier.Model("Reaction ~ Days + (Days | Subject)", sleep)
model.priors

# %% [markdown]
# One grouping factor and a Gaussian outcome, so the subject effects are integrated out during
# sampling and drawn exactly afterwards (`model.parameterisation`). The sampled PyMC graph has
# only the fixed effects, the two SDs, the correlation's Cholesky factor and `sigma`:

# %%
print(model.parameterisation["reason"].iloc[0])
print("sampled free variables:", [rv.name for rv in model.pymc_model.free_RVs])
print("dims:", model.pymc_model.named_vars_to_dims)

# %%
fit = model.fit(**SAMPLING, random_seed=1, progressbar=False)
fit                 # in a notebook a fit shows its summary: fixed effects, variance components, verdict

# %% [markdown]
# ## Estimates beside lme4
#
# lme4's REML fit (`lmer(Reaction ~ Days + (Days | Subject), sleepstudy)`, Bates et al. 2015,
# section 5) is the published reference. Posterior means and 94% intervals beside it:

# %%
fe = fit.fixed_effects()
vc = fit.variance_components()
ours = pd.concat([fe.rename(index=lambda t: f"fixed: {t}"),
                  vc.set_axis([f"{g}: {n}" for g, n in vc.index])])
ours = ours[["mean", "sd", "eti94_lb", "eti94_ub", "ess_bulk", "r_hat"]]
ours.insert(0, "lme4 REML", [251.405, 10.467, 24.741, 5.922, 0.066, 25.592])
ours

# %% [markdown]
# The fixed effects agree to a small fraction of their posterior SD: reaction time starts around
# 251 ms and grows by about 10.5 ms per day. The variance components are where a Bayesian fit
# and REML legitimately differ. REML reports the mode of a (restricted) likelihood; the
# posterior mean of an SD estimated from 18 subjects is pulled up by its right-skewed
# posterior, here by about 2 ms for `SD(Intercept)` (26.9 vs 24.7) and 0.6 ms/day for
# `SD(Days)` (6.5 vs 5.9), a third of a posterior SD each; lme4's values sit near the posterior
# medians. The correlation is barely identified by 18 subjects: lme4's 0.07 sits in the middle
# of a posterior interval from about −0.45 to 0.55. The residual SD matches to 0.3 ms. So the
# right yardstick is the posterior SD: fixed effects within a few percent of it, SDs within
# about half of it, and that is what we see.
#
# The slope SD of about 6 ms/day against a mean slope of 10.5 says that subjects genuinely
# differ in their vulnerability: a subject one SD below the mean loses only about 4.5 ms a day,
# one SD above loses 16.
#
# ## Is the correlation needed?
#
# `(Days || Subject)` drops the correlation (lme4's double bar). Both fits are compared by
# PSIS-LOO with `hier.pooling.compare_fits`, which wraps `arviz.compare`, counts unreliable
# Pareto k and, for Gaussian models, adds the leave-one-out RMS prediction error.

# %%
fit_uncorr = hier.Model("Reaction ~ Days + (Days || Subject)", sleep).fit(
    **SAMPLING, random_seed=2, progressbar=False)
fit_uncorr.variance_components()

# %%
comparison = hier.pooling.compare_fits({"correlated (Days | Subject)": fit,
                                        "uncorrelated (Days || Subject)": fit_uncorr})
comparison

# %% [markdown]
# The difference in expected log predictive density is of the order of its standard error
# (`dse`) and well under arviz's threshold of 4 for a meaningful difference: the data cannot
# tell the two models apart, consistent with a correlation whose posterior straddles zero
# (lme4's likelihood-ratio test reaches the same conclusion). Either model is defensible; we
# keep the correlated one, the conservative default. arviz warns that a few observations have
# Pareto k above 0.7 (`n_high_pareto_k`): single extreme days, such as subject 332's day 9, whose
# removal changes the posterior too much for importance sampling to be reliable. They are the
# same observations in both models, so they blur the comparison without favouring either;
# exact leave-one-out refits (or K-fold cross-validation) would be the remedy if the choice
# mattered.
#
# ## Every subject: no pooling versus partial pooling
#
# The grey line is each subject's own least-squares fit (no pooling), the blue line the
# partial-pooling estimate `beta + u_j` from the model and the dashed line the population
# average. Subjects whose data are noisy or who have outlying days are pulled toward the
# population line the most.

# %%
subjects = sorted(sleep["Subject"].unique())
effects = fit.group_effects(kind="total")["mean"].xs("Subject", level="group").unstack("term")
population = fe["mean"]
days = np.array([0, 9])

fig, axes = plt.subplots(3, 6, figsize=(14, 7.5), sharex=True, sharey=True, layout="constrained")
for ax, subject in zip(axes.flat, subjects):
    rows = sleep[sleep["Subject"] == subject]
    slope, intercept = np.polyfit(rows["Days"], rows["Reaction"], 1)
    partial = effects.loc[str(subject)]
    ax.plot(rows["Days"], rows["Reaction"], "o", ms=3.5, color="black")
    ax.plot(days, intercept + slope * days, color="#9a9a9a", lw=2, label="no pooling")
    ax.plot(days, partial["Intercept"] + partial["Days"] * days, color="#1f5fa8", lw=2,
            label="partial pooling")
    ax.plot(days, population["Intercept"] + population["Days"] * days, "--", color="#c0392b",
            lw=1, label="population")
    ax.set_title(f"subject {subject}", fontsize="medium")
for ax in axes[-1]:
    ax.set_xlabel("days of sleep deprivation")
for ax in axes[:, 0]:
    ax.set_ylabel("reaction time (ms)")
axes[0, 0].legend(frameon=False, fontsize="x-small", loc="upper left")
fig.suptitle("Reaction time by subject: own fit, partial pooling, population");

# %% [markdown]
# Most panels show the blue and grey lines nearly on top of each other: with ten observations
# and a large between-subject slope SD, the model trusts each subject's own data. The visible
# differences are for subjects whose own lines are furthest from the population or driven by
# a few extreme days (330, 350, 370): their partial-pooling lines are tilted toward the
# population line. 335, the one subject who got *faster*, is pulled to a flat line. The
# caterpillar plot shows the same per-subject coefficients with their uncertainty:

# %%
fig = hier.plots.caterpillar(fit)

# %% [markdown]
# Every subject has the same ten days, so the model-based shrinkage is the same for all of them:
# about a quarter of the way to the population for the intercept and a sixth for the slope.

# %%
fit.shrinkage().xs("Subject", level="group")["shrinkage_model"].unstack("term").head(3)

# %% [markdown]
# ## Predicting a new subject
#
# A new volunteer enters the study: what reaction times should we expect over nine days?
# `new_groups="population"` draws the new subject's intercept and slope from the fitted
# bivariate normal (per posterior draw), so the interval carries between-subject variation on
# top of the uncertainty about the population mean; `kind="response"` adds day-to-day noise.

# %%
grid = pd.DataFrame({"Days": np.arange(10), "Subject": "new volunteer"})
average = fit.predict(grid, kind="mean", include_groups=False)
new_mean = fit.predict(grid, kind="mean", new_groups="population", random_seed=3)
new_obs = fit.predict(grid, kind="response", new_groups="population", random_seed=3)

fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
ax.fill_between(grid["Days"], new_obs["eti94_lb"], new_obs["eti94_ub"], color="#1f5fa8",
                alpha=0.15, label="a new subject's measurement (94%)")
ax.fill_between(grid["Days"], new_mean["eti94_lb"], new_mean["eti94_ub"], color="#1f5fa8",
                alpha=0.35, label="a new subject's mean curve (94%)")
ax.fill_between(grid["Days"], average["eti94_lb"], average["eti94_ub"], color="#c0392b",
                alpha=0.5, label="population average (94%)")
ax.plot(grid["Days"], average["mean"], color="#c0392b")
ax.set(xlabel="days of sleep deprivation", ylabel="reaction time (ms)",
       title="Prediction for a subject not in the study")
ax.legend(frameon=False, loc="upper left");

# %%
pd.concat({"population average": average, "new subject, mean": new_mean,
           "new subject, measurement": new_obs}, axis=1).loc[[0, 9]]

# %% [markdown]
# After nine days the population average is known to within about ±30 ms (316 to 375 ms), but a
# new person's expected reaction time could be anywhere from about 215 to 475 ms: the
# between-subject variation, not the uncertainty about the population mean, dominates. That is the practical content of
# the random-slopes model: *on average* sleep loss costs about 10 ms a day, but how much it
# costs *you* varies by a factor of several.
