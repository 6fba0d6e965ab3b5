"""Cross-check of two GLMMs against bambi 0.21: same data, likelihood and priors, same posterior.

The companion of ``test_bambi_agreement.py`` (radon, Gaussian) for non-Gaussian families, on
real packaged data:

* epilepsy (MASS ``epil``), Poisson with log link:
  ``y ~ trt + lbase + lage + V4 + (1 | subject)``, 236 two-week counts of 59 patients;
* contraception (mlmRev ``Contraception``), Bernoulli with logit link:
  ``use01 ~ age + urban + (1 | district)``, 1934 women in 60 districts, ``use01`` = use is 'Y'.

As there, bambi's priors are built from our ``Model.prior_entries`` (never typed in), bambi is
built with ``center_predictors=False`` so the Intercept prior sits on the same intercept, and
each posterior mean must agree within 3 combined Monte Carlo standard errors, with r_hat < 1.01
on both sides. There is no sigma in either family. What is new here is a categorical fixed
effect: our ``trt[progabide]`` / ``urban[Y]`` is, in bambi, the prior key ``trt`` / ``urban``
and the posterior variable of that name at coordinate ``progabide`` / ``Y`` of its one
non-sample dimension. bambi gives one prior to all levels of a factor, so the priors of the
levels of one factor must be equal (here each factor has a single non-reference level).

Our model chooses its parameterisation per group automatically (epilepsy's subjects are
centred, contraception's districts non-centred; bambi is always non-centred); the
parameterisation does not change the posterior.
"""

import functools
import math
import re

import bambi as bmb
import pandas as pd
import pytest

import hierarchical as hier
from hierarchical.priors import PriorEntry

from .test_bambi_agreement import (MAX_R_HAT, SAMPLING, SEED_BAMBI, SEED_OURS, bambi_name,
                                   bambi_prior, bambi_row, our_row)


def epilepsy() -> pd.DataFrame:
    return hier.datasets.load("epil")


def contraception() -> pd.DataFrame:
    data = hier.datasets.load("contraception").copy()
    data["use01"] = (data["use"] == "Y").astype(int)
    return data


MODELS = {
    "epilepsy": dict(formula="y ~ trt + lbase + lage + V4 + (1 | subject)", family="poisson",
                     data=epilepsy),
    "contraception": dict(formula="use01 ~ age + urban + (1 | district)", family="bernoulli",
                          data=contraception),
}
QUANTITIES = {
    "epilepsy": ["Intercept", "trt[progabide]", "lbase", "lage", "V4", "subject_sd[Intercept]"],
    "contraception": ["Intercept", "age", "urban[Y]", "district_sd[Intercept]"],
}
CASES = [(model, label) for model, labels in QUANTITIES.items() for label in labels]
LEVEL = re.compile(r"(?P<term>[^\[\]]+)\[(?P<level>[^\[\]]+)\]")


def glmm_bambi_name(entry: PriorEntry) -> tuple[str, str, str | None]:
    """(bambi prior key, posterior variable, level or None): ``bambi_name`` plus factor levels.

    'trt[progabide]' -> ('trt', 'trt', 'progabide'); anything else as ``bambi_name``.
    """
    match = LEVEL.fullmatch(entry.label)
    if entry.kind == "fixed" and match:
        return match["term"], match["term"], match["level"]
    return (*bambi_name(entry), None)


def bambi_priors(entries: list[PriorEntry]) -> dict:
    """bambi's ``priors=`` from ours; all levels of one factor must share one prior."""
    priors, ours = {}, {}
    for entry in entries:
        key = glmm_bambi_name(entry)[0]
        if key in ours:
            assert ours[key] == (entry.kind, entry.prior.dist, entry.prior.params), (
                f"bambi has one prior for all levels of {key!r}; ours differ")
            continue
        ours[key] = (entry.kind, entry.prior.dist, entry.prior.params)
        priors[key] = bambi_prior(entry)
    return priors


def bambi_draws(posterior, variable: str, level: str | None):
    """Draws of one scalar: the variable itself, or one level of a factor's variable."""
    draws = posterior[variable]
    if level is None:
        return draws
    (dim,) = [d for d in draws.dims if d not in ("chain", "draw")]
    return draws.sel({dim: level})


def compare(formula: str, family: str, data: pd.DataFrame) -> pd.DataFrame:
    """Per parameter: posterior mean, MCSE of the mean and r_hat from both programs."""
    model = hier.Model(formula, data, family=family)
    fit = model.fit(random_seed=SEED_OURS, **SAMPLING)
    bambi_model = bmb.Model(formula, data, family=family, center_predictors=False,
                            priors=bambi_priors(model.prior_entries))
    posterior = bambi_model.fit(random_seed=SEED_BAMBI, **SAMPLING).posterior
    rows = {}
    for entry in model.prior_entries:
        _, variable, level = glmm_bambi_name(entry)
        ours = our_row(fit, entry)[["mean", "mcse_mean", "r_hat"]]
        theirs = bambi_row({entry.label: bambi_draws(posterior, variable, level)}, entry.label)
        rows[entry.label] = pd.concat([ours.add_suffix("_ours"), theirs.add_suffix("_bambi")])
    return pd.DataFrame(rows).T.astype(float)


@pytest.fixture(scope="module")
def comparison():
    """comparison(model) -> table for that model; each model is fitted once per module."""
    @functools.cache
    def table(model: str) -> pd.DataFrame:
        spec = MODELS[model]
        return compare(spec["formula"], spec["family"], spec["data"]())
    return table


@pytest.mark.parametrize("model", sorted(MODELS))
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
