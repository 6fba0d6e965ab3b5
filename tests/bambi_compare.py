"""Shared machinery for the bambi cross-checks: same data, likelihood and priors.

bambi's priors are built from our ``Model.prior_entries`` (never typed in) and bambi runs with
``center_predictors=False`` so that its Intercept prior sits on the same intercept as ours.
Each posterior mean must agree within 3 combined Monte Carlo standard errors,
|mean_ours - mean_bambi| < 3 sqrt(mcse_ours^2 + mcse_bambi^2): under agreement the difference
is ~ Normal(0, that SE), so a false alarm has probability ~0.3% per quantity. Both fits must
have r_hat < 1.01, so that unconverged chains are never compared.
"""

from __future__ import annotations

import math

import arviz as az
import bambi as bmb
import pandas as pd

import hierarchical as hier
from hierarchical.bambi_interop import bambi_name, bambi_priors, group_and_term
from hierarchical.priors import PriorEntry

SAMPLING = dict(draws=1000, tune=1000, chains=4, progressbar=False)
SEED_OURS, SEED_BAMBI = 1, 2
MAX_R_HAT = 1.01


def our_row(fit, entry: PriorEntry) -> pd.Series:
    if entry.kind == "fixed":
        return fit.fixed_effects().loc[entry.label]
    if entry.kind == "sd":
        return fit.variance_components().loc[group_and_term(entry.label)]
    group = "residual" if entry.label == "sigma" else "family"      # alpha, nu, psi, kappa
    return fit.variance_components().loc[(group, entry.label)]


def bambi_row(posterior, variable: str, level: str | None) -> pd.Series:
    draws = posterior[variable]
    if level is not None:
        (dim,) = [d for d in draws.dims if d not in ("chain", "draw")]
        draws = draws.sel({dim: level})
    return pd.Series({"mean": float(draws.mean()),
                      "mcse_mean": float(az.mcse(draws, method="mean")),
                      "r_hat": float(az.rhat(draws))})


def compare(formula: str, data: pd.DataFrame, family: str = "gaussian",
            link: str | None = None) -> pd.DataFrame:
    """Per parameter: posterior mean, MCSE of the mean and r_hat from both programs.

    bambi has no correlated group effects: our ``||`` is its ``|``. The family's own
    parameters (alpha, nu, psi, kappa, sigma) have the same names and priors in both."""
    model = hier.Model(formula, data, family=family, link=link)
    fit = model.fit(random_seed=SEED_OURS, **SAMPLING)
    bambi_model = bmb.Model(formula.replace("||", "|"), data, family=family,
                            link=link or model.spec.family_object.link.name,
                            center_predictors=False, priors=bambi_priors(model))
    posterior = bambi_model.fit(random_seed=SEED_BAMBI, **SAMPLING).posterior
    rows = {}
    for entry in model.prior_entries:
        _, variable, level = bambi_name(entry)
        ours = our_row(fit, entry)[["mean", "mcse_mean", "r_hat"]]
        theirs = bambi_row(posterior, variable, level)
        rows[entry.label] = pd.concat([ours.add_suffix("_ours"), theirs.add_suffix("_bambi")])
    return pd.DataFrame(rows).T.astype(float)


def assert_converged(row: pd.Series) -> None:
    assert row["r_hat_ours"] < MAX_R_HAT and row["r_hat_bambi"] < MAX_R_HAT, row.to_dict()


def assert_agrees(label: str, row: pd.Series) -> None:
    difference = abs(row["mean_ours"] - row["mean_bambi"])
    tolerance = 3 * math.hypot(row["mcse_mean_ours"], row["mcse_mean_bambi"])
    assert difference < tolerance, (f"{label}: ours {row['mean_ours']:.4f} vs bambi "
                                    f"{row['mean_bambi']:.4f}, |diff| {difference:.4f} "
                                    f">= 3 combined MCSE {tolerance:.4f}")
