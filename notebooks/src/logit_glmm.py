# %% [markdown]
# # Logit GLMMs: binomial counts and binary outcomes
#
# Two classic data sets, both with a binary event grouped in clusters:
#
# * **cbpp** (lme4): new cases of contagious bovine pleuropneumonia in 15 zebu herds in
#   Ethiopia, counted in four periods; each row is *k cases out of n animals* (binomial with
#   trials). Question: how did the incidence change over the periods, and how much do herds
#   differ?
# * **Contraception** (mlmRev): 1,934 women in 60 districts of Bangladesh (1988 Fertility
#   Survey); each row is one woman, *used contraception or not* (Bernoulli). Question: how do
#   age, number of living children and urban residence relate to use, and how much does the
#   district matter, separately for urban and rural areas?
#
# Both are logit GLMMs: `logit P(event) = x'β + z'u_j`, `u_j ~ N(0, Σ)`.

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
# ## Part 1: cbpp, binomial with trials
#
# `period` is stored as an integer; as a string it becomes a factor with period 1 as the
# reference level (lme4 does the same with its factor).

# %%
cbpp = hier.datasets.load("cbpp")
cbpp["period"] = cbpp["period"].astype(str)
print(f"{len(cbpp)} herd-periods, {cbpp['herd'].nunique()} herds, "
      f"{cbpp['incidence'].sum()} cases in {cbpp['size'].sum()} animal-periods")
cbpp.head()

# %%
spec = hier.logit_glmm("incidence", group="herd", predictors=["period"], trials="size")
cbpp_model = hier.Model(spec, cbpp)
print(spec.formula, "| family:", spec.family, "| trials:", spec.trials)
cbpp_model.parameterisation

# %% [markdown]
# Herds are small (2 to 34 animals, few cases), so each herd's data say little about its own
# effect and the effects are sampled non-centred, as the pilot estimate above chose.

# %%
cbpp_fit = cbpp_model.fit(**SAMPLING, random_seed=1, progressbar=False)
cbpp_fit.diagnostics().verdict

# %%
fe = cbpp_fit.fixed_effects()
vc = cbpp_fit.variance_components()
table = pd.concat([fe, vc.set_axis(["herd SD"])])[["mean", "sd", "eti94_lb", "eti94_ub"]]
table.insert(0, "glmer (Laplace)", [-1.3983, -0.9919, -1.1282, -1.5797, 0.6421])
table

# %% [markdown]
# The reference is lme4's `glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
# family = binomial, data = cbpp)` (Laplace approximation; the example in `?cbpp` and Bates et
# al. 2015). The period effects agree to within a fraction of their posterior SD. The herd SD
# is larger in the posterior mean than glmer's 0.64: with 15 herds its posterior is wide and
# right-skewed, so the mean sits above the mode, and a maximum-likelihood SD from few groups is
# biased low (the same reason REML exists for linear models). glmer's value is well inside the
# 94% interval.
#
# **Odds ratios.** Relative to period 1, the odds of a new case are multiplied by (the
# population-level comparison of `fit.comparisons`: herd effects left out, so in a logit model
# each odds ratio is `exp` of its coefficient; `p_increase` is the posterior probability that
# the odds rise):

# %%
cbpp_fit.comparisons("period", comparison="oddsratio")

# %% [markdown]
# **Probabilities.** `fit.predict(kind="mean")` gives the probability per trial. For a typical
# herd (`include_groups=False`: the herd effect at its mean of zero) and for a herd drawn at
# random from the population of herds (an unseen herd with `new_groups="population"`), the
# second averaging over herds:

# %%
grid = pd.DataFrame({"period": ["1", "2", "3", "4"], "herd": "a new herd", "size": 1})
typical = cbpp_fit.predict(grid, kind="mean", include_groups=False)
random_herd = cbpp_fit.predict(grid, kind="mean", new_groups="population", random_seed=1)
pd.concat({"typical herd": typical, "random new herd": random_herd}, axis=1).set_index(grid["period"])

# %% [markdown]
# The incidence in a typical herd falls from about 19% of animals per period to about 5% by
# period 4. The random-herd mean is higher than the typical herd's (averaging the inverse logit
# over a skewed spread of herds) and its interval is much wider: herd-to-herd variation is
# large compared to the change over time.
#
# On the latent (logit) scale the ICC sets the herd variance against the `π²/3` of a standard
# logistic error:

# %%
cbpp_fit.icc()

# %%
fig = hier.plots.caterpillar(cbpp_fit)
fig.set_size_inches(6, 4.5)

# %% [markdown]
# The model-based shrinkage (`fit.shrinkage()`) is the fraction of a herd's own evidence that
# is discounted in favour of the population. It depends on how many animals and how many
# expected cases the herd contributes:

# %%
herd_size = cbpp.groupby("herd")["size"].sum().rename("animal-periods")
cases = cbpp.groupby("herd")["incidence"].sum().rename("cases")
shrink = cbpp_fit.shrinkage().droplevel(["group", "term"])
shrink.index = shrink.index.astype(int)
shrink.join([herd_size, cases]).sort_values("animal-periods")

# %% [markdown]
# ## Part 2: Contraception, Bernoulli outcomes
#
# `use` is `"Y"`/`"N"`; the Bernoulli family wants 0/1. `age` is already centred (years from
# the sample mean); `livch` is the number of living children (0, 1, 2, 3+); `urban` is
# `"Y"`/`"N"`.

# %%
contra = hier.datasets.load("contraception")
contra["use_01"] = (contra["use"] == "Y").astype(int)
contra["age2"] = contra["age"] ** 2
per_district = contra.groupby("district").size()
print(f"{len(contra)} women in {contra['district'].nunique()} districts "
      f"({per_district.min()} to {per_district.max()} each); {contra['use_01'].mean():.1%} use contraception")
contra.head()

# %% [markdown]
# ### A first model with a published reference
#
# The model of mlmRev's `?Contraception` example, `use ~ urban + age + livch + (1 | district)`,
# has a glmer (Laplace) fit we can check against (its output as printed in a public course
# notebook reproducing the help-page example): Intercept −1.6896, urbanY 0.7330,
# age −0.02659, livch1 1.1091, livch2 1.3763, livch3+ 1.3452, district SD 0.4608.

# %%
fm1 = hier.Model("use_01 ~ urban + age + livch + (1 | district)", contra, family="bernoulli")
fm1_fit = fm1.fit(**SAMPLING, random_seed=2, progressbar=False)
fe1 = fm1_fit.fixed_effects()
vc1 = fm1_fit.variance_components()
check = pd.concat([fe1, vc1.set_axis(["district SD"])])[["mean", "sd", "eti94_lb", "eti94_ub", "r_hat"]]
check.insert(0, "glmer (Laplace)", [-1.6896, 0.7330, -0.02659, 1.1091, 1.3763, 1.3452, 0.4608])
check

# %% [markdown]
# The fixed effects agree to within a small fraction of their posterior SDs. With 60 districts
# the district SD is well determined and the posterior mean is close to glmer's estimate, a
# little above it for the reason given for cbpp.
#
# ### The richer model: a quadratic in age, and urban effects varying by district
#
# Contraceptive use rises and then falls over the reproductive years, so age enters with a
# square (precomputed as `age2`; the formula's fixed part follows `formulae`, where a column is
# simpler and clearer than `I(age**2)`). And the urban–rural gap may itself differ between
# districts: `(1 + urban | district)` gives each district a rural intercept and an urban
# shift, correlated. This is the model Bates develops in the lme4 book's chapter on GLMMs; we
# have no reliable published numbers for this exact specification, so here the fit stands on
# its diagnostics.

# %%
model = hier.Model("use_01 ~ age + age2 + urban + livch + (1 + urban | district)", contra,
                   family="bernoulli")
model.priors

# %% [markdown]
# The district effects are sampled non-centred (most districts have few women per effect).
# The intercept mixes slowly here (with the default 1000 draws per chain its r-hat sits right at
# 1.01), so this fit runs twice as many draws; the centred form was worse (E-BFMI below 0.3).

# %%
LONGER = {**SAMPLING, "draws": 2 * SAMPLING["draws"]}
fit = model.fit(**LONGER, random_seed=3, progressbar=False)
fit.diagnostics()

# %%
fit.fixed_effects()

# %%
fit.variance_components()

# %% [markdown]
# Two things stand out. Rural districts differ (SD of the intercept around 0.6 on the logit
# scale), and the urban shift varies about as much, negatively correlated with the rural
# intercept: where rural use is low, the urban advantage is larger, so urban areas differ less
# between districts than rural ones.
#
# **Odds ratios** for living children relative to none and for urban relative to rural, in a
# typical district (`fit.comparisons` leaves the district effects out by default):

# %%
pd.concat([fit.comparisons("livch", comparison="oddsratio"),
           fit.comparisons("urban", comparison="oddsratio")])

# %% [markdown]
# Having any living child multiplies the odds of use by about 2.3 to 2.6 compared to having
# none (the number beyond one matters little), and urban residence roughly doubles them. The
# child effects are smaller than in the first model (odds ratios 3 to 4 there) because the
# first model's linear age term could not capture the fall in use among older women, who
# mostly have children; with the quadratic, age takes its share.
#
# **Predicted probabilities** for a typical district (`include_groups=False`) across age, by
# number of children, urban versus rural. The age axis is years from the mean age (about 30).

# %%
ages = np.linspace(contra["age"].min(), contra["age"].max(), 40)
grid = pd.DataFrame([(a, u, k) for u in ("N", "Y") for k in ("0", "1", "3+") for a in ages],
                    columns=["age", "urban", "livch"])
grid["age2"] = grid["age"] ** 2
prob = fit.predict(grid, kind="mean", include_groups=False)

fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True, layout="constrained")
for ax, (urban, title) in zip(axes, [("N", "rural"), ("Y", "urban")]):
    for children, colour in zip(("0", "1", "3+"), ("#9a9a9a", "#1f5fa8", "#c0392b")):
        rows = (grid["urban"] == urban) & (grid["livch"] == children)
        ax.fill_between(ages, prob.loc[rows, "eti94_lb"], prob.loc[rows, "eti94_ub"],
                        color=colour, alpha=0.2)
        ax.plot(ages, prob.loc[rows, "mean"], color=colour, label=f"living children: {children}")
    ax.set(xlabel="age (years from the mean)", title=f"{title} women, typical district")
axes[0].set_ylabel("probability of using contraception")
axes[0].legend(frameon=False);

# %% [markdown]
# Use peaks near the mean age (about 30) and falls off on both sides; women without children
# are the least likely users at every age, and the urban advantage is visible at all ages.
#
# ### How much do districts matter?
#
# The ICC on the latent scale (the district's share of the latent variance at the observed
# covariates, including the urban slopes, against π²/3):

# %%
fit.icc()

# %% [markdown]
# Around one-tenth of the latent variation is between districts. The caterpillar plots show
# each district's rural intercept and urban shift (totals, i.e. the fixed effect plus the
# district deviation). Many districts have no urban women at all: their urban shift is
# informed only by the population distribution, and their intervals are the widest.

# %%
fig = hier.plots.caterpillar(fit)
fig.set_size_inches(11, 10)

# %% [markdown]
# **Shrinkage** against the number of women in the district. The intercept of a district
# with 100+ women keeps most of its own information; a district with a handful is pulled most
# of the way to the population. (The intercept is the rural level, so a large but mostly urban
# district can still be shrunk noticeably.) The urban shift is shrunk much more, because few
# women per district are urban, and completely (shrinkage 1) where there are none.

# %%
women = contra.groupby("district").size()
urban_women = contra[contra["urban"] == "Y"].groupby("district").size().reindex(women.index, fill_value=0)
shrink = fit.shrinkage()["shrinkage_model"].xs("district", level="group").unstack("term")
shrink.index = shrink.index.astype(int)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True, layout="constrained")
axes[0].scatter(women.loc[shrink.index], shrink["Intercept"], s=18, color="#1f5fa8")
axes[0].set(xscale="log", xlabel="women in the district (log scale)",
            ylabel="model-based shrinkage", title="rural intercept")
axes[1].scatter(urban_women.loc[shrink.index] + 0.5, shrink["urban[Y]"], s=18, color="#c0392b")
axes[1].set(xscale="log", xlabel="urban women in the district + 0.5 (log scale)",
            title="urban shift")
for ax in axes:
    ax.set_ylim(0, 1.05)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
fig.suptitle("How far each district was pulled toward the population");

# %% [markdown]
# **Summary.** For cbpp the Bayesian fit reproduces glmer's period effects and gives a herd SD
# whose posterior contains glmer's estimate but is centred higher, as it should be for 15
# herds. For Contraception the random-intercept model reproduces glmer's published fit; the
# richer model finds district variation in both rural use and the urban–rural gap, with
# probabilities, odds ratios, the latent ICC and shrinkage all read from the same fit.
