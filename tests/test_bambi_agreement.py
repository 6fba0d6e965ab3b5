"""Cross-check against bambi 0.21: same data, same likelihood, same priors, same posterior.

Minnesota radon, ``log_radon ~ floor + (1 | county)`` and the independent-slopes model
``log_radon ~ floor + (1 + floor || county)``. bambi's priors are built from our
``Model.prior_entries`` (never typed in), so the two programs target one posterior:

* bambi has no correlated group effects, so its ``(1 + floor | county)`` is our ``||``;
* bambi is built with ``center_predictors=False``: by default it puts the Intercept prior on
  the intercept of the centred design, whereas ours sits on the intercept at floor = 0;
* the parameterisation does not change the posterior: by default we integrate the county
  effects out (``marginal.py``) where bambi samples them non-centred.

Tolerance: each posterior mean (Intercept, floor, county SDs, sigma) must agree within
3 combined Monte Carlo standard errors, |mean_ours - mean_bambi| < 3 sqrt(mcse_ours^2 +
mcse_bambi^2). Under agreement the difference is ~ Normal(0, that SE), so a false alarm has
probability ~0.3% per quantity; a real difference in the models shows up as many MCSEs.
Both fits must also have r_hat < 1.01 on every compared quantity, so that we never compare
unconverged chains. Each model is sampled once per side (4 chains x 1000 draws, tune 1000,
fixed seeds).
"""

import functools
import math

import arviz as az
import bambi as bmb
import pandas as pd
import pytest

import hierarchical as hier
from hierarchical.priors import PriorEntry

FORMULAS = {
    "intercepts": "log_radon ~ floor + (1 | county)",
    "slopes": "log_radon ~ floor + (1 + floor || county)",
}
QUANTITIES = {
    "intercepts": ["Intercept", "floor", "county_sd[Intercept]", "sigma"],
    "slopes": ["Intercept", "floor", "county_sd[Intercept]", "county_sd[floor]", "sigma"],
}
CASES = [(model, label) for model, labels in QUANTITIES.items() for label in labels]
SAMPLING = dict(draws=1000, tune=1000, chains=4, progressbar=False)
SEED_OURS, SEED_BAMBI = 1, 2
MAX_R_HAT = 1.01


def group_and_term(label: str) -> tuple[str, str]:
    """'county_sd[floor]' -> ('county', 'floor')."""
    name, term = label.rstrip("]").split("[")
    return name.removesuffix("_sd"), term


def bambi_term(label: str) -> str:
    """bambi's name for the group-specific term whose SD is ``label``: '1|county', 'floor|county'."""
    group, term = group_and_term(label)
    return f"{'1' if term == 'Intercept' else term}|{group}"


def bambi_name(entry: PriorEntry) -> tuple[str, str]:
    """(bambi prior key, bambi posterior variable) for one of our parameters."""
    if entry.kind == "sd":
        return bambi_term(entry.label), f"{bambi_term(entry.label)}_sigma"
    return entry.label, entry.label


def bambi_prior(entry: PriorEntry):
    """Our prior as a bambi Prior; a group SD becomes the hyperprior of Normal(0, sd) effects."""
    prior = bmb.Prior(entry.prior.dist, **entry.prior.params)
    return bmb.Prior("Normal", mu=0, sigma=prior) if entry.kind == "sd" else prior


def our_row(fit, entry: PriorEntry) -> pd.Series:
    if entry.kind == "fixed":
        return fit.fixed_effects().loc[entry.label]
    if entry.kind == "sd":
        return fit.variance_components().loc[group_and_term(entry.label)]
    return fit.variance_components().loc[("residual", entry.label)]


def bambi_row(posterior, variable: str) -> pd.Series:
    draws = posterior[variable]
    return pd.Series({"mean": float(draws.mean()),
                      "mcse_mean": float(az.mcse(draws, method="mean")),
                      "r_hat": float(az.rhat(draws))})


def compare(formula: str, data: pd.DataFrame) -> pd.DataFrame:
    """Per parameter: posterior mean, MCSE of the mean and r_hat from both programs."""
    model = hier.Model(formula, data)
    fit = model.fit(random_seed=SEED_OURS, **SAMPLING)
    names = {e.label: bambi_name(e) for e in model.prior_entries}
    bambi_model = bmb.Model(formula.replace("||", "|"), data, center_predictors=False,
                            priors={names[e.label][0]: bambi_prior(e) for e in model.prior_entries})
    posterior = bambi_model.fit(random_seed=SEED_BAMBI, **SAMPLING).posterior
    rows = {}
    for entry in model.prior_entries:
        ours = our_row(fit, entry)[["mean", "mcse_mean", "r_hat"]]
        theirs = bambi_row(posterior, names[entry.label][1])
        rows[entry.label] = pd.concat([ours.add_suffix("_ours"), theirs.add_suffix("_bambi")])
    return pd.DataFrame(rows).T.astype(float)


@pytest.fixture(scope="module")
def comparison(radon):
    """comparison(model) -> table for that model; each model is fitted once per module."""
    return functools.cache(lambda model: compare(FORMULAS[model], radon))


@pytest.mark.parametrize("model", sorted(FORMULAS))
def test_every_parameter_is_compared(comparison, model):
    assert list(comparison(model).index) == QUANTITIES[model]


@pytest.mark.parametrize("model, label", CASES)
def test_both_fits_converged(comparison, model, label):
    row = comparison(model).loc[label]
    assert row["r_hat_ours"] < MAX_R_HAT and row["r_hat_bambi"] < MAX_R_HAT, row.to_dict()


@pytest.mark.parametrize("model, label", CASES)
def test_posterior_mean_agrees_with_bambi(comparison, model, label):
    row = comparison(model).loc[label]
    difference = abs(row["mean_ours"] - row["mean_bambi"])
    tolerance = 3 * math.hypot(row["mcse_mean_ours"], row["mcse_mean_bambi"])
    assert difference < tolerance, (f"{label}: ours {row['mean_ours']:.4f} vs bambi "
                                    f"{row['mean_bambi']:.4f}, |diff| {difference:.4f} "
                                    f">= 3 combined MCSE {tolerance:.4f}")
