"""Cross-checks against bambi 0.21 on real data (rules and tolerance in ``bambi_compare.py``).

* radon (Gelman & Hill), ``log_radon ~ floor + (1 | county)`` and
  ``log_radon ~ floor + (1 + floor || county)`` (bambi's ``(1 + floor | county)`` has
  independent SDs); we integrate the county effects out, bambi samples them non-centred;
* epilepsy (MASS ``epil``), Poisson: ``y ~ trt + lbase + lage + V4 + (1 | subject)``;
* contraception (mlmRev ``Contraception``), Bernoulli: ``use01 ~ age + urban + (1 | district)``
  with ``use01`` = (use == 'Y');
* the families that bambi shares with us, each with its own parameter under the same name and
  prior: negative binomial (epil, ``alpha``), zero-inflated Poisson (Salamanders, ``psi``),
  Student-t (sleepstudy, ``sigma`` and ``nu``), Gamma (Dyestuff, ``alpha``), Beta
  (GasolineYield, ``kappa``). Links other than the canonical are checked against lme4 in
  ``test_family_references`` instead: bambi's own probit fit of contraception did not
  converge (r_hat 1.17-1.59 with 4 x 1000 draws; ours 1.001).

A categorical fixed effect, our ``trt[progabide]``, is bambi's variable ``trt`` at level
``progabide``. Parameterisations differ between the programs; the posterior does not.
"""

import functools

import pytest

pytest.importorskip("bambi")

import hierarchical as hier  # noqa: E402

from .bambi_compare import assert_agrees, assert_converged, compare  # noqa: E402

pytestmark = pytest.mark.interop   # bambi lives in the interop environment


def contraception():
    data = hier.datasets.load("contraception")
    return data.assign(use01=(data["use"] == "Y").astype(int))


def radon():
    return hier.datasets.load("radon")


MODELS = {
    "radon_intercepts": ("log_radon ~ floor + (1 | county)", "gaussian", radon),
    "radon_slopes": ("log_radon ~ floor + (1 + floor || county)", "gaussian", radon),
    "epilepsy": ("y ~ trt + lbase + lage + V4 + (1 | subject)", "poisson",
                 lambda: hier.datasets.load("epil")),
    "contraception": ("use01 ~ age + urban + (1 | district)", "bernoulli", contraception),
    # the families of issue 18 that bambi has, with the same priors
    "epilepsy_negbin": ("y ~ trt + lbase + (1 | subject)", "negativebinomial",
                        lambda: hier.datasets.load("epil")),
    "salamanders_zip": ("count ~ mined + (1 | site)", "zero_inflated_poisson",
                        lambda: hier.datasets.load("salamanders")),
    "sleepstudy_t": ("Reaction ~ Days + (1 | Subject)", "t", lambda: hier.datasets.load("sleepstudy")),
    "dyestuff_gamma": ("Yield ~ 1 + (1 | Batch)", "gamma", lambda: hier.datasets.load("dyestuff")),
    "gasoline_beta": ("yield ~ temp + (1 | batch)", "beta", lambda: hier.datasets.load("gasolineyield")),
}
QUANTITIES = {
    "radon_intercepts": ["Intercept", "floor", "county_sd[Intercept]", "sigma"],
    "radon_slopes": ["Intercept", "floor", "county_sd[Intercept]", "county_sd[floor]", "sigma"],
    "epilepsy": ["Intercept", "trt[progabide]", "lbase", "lage", "V4", "subject_sd[Intercept]"],
    "contraception": ["Intercept", "age", "urban[Y]", "district_sd[Intercept]"],
    "epilepsy_negbin": ["Intercept", "trt[progabide]", "lbase", "subject_sd[Intercept]", "alpha"],
    "salamanders_zip": ["Intercept", "mined[yes]", "site_sd[Intercept]", "psi"],
    "sleepstudy_t": ["Intercept", "Days", "Subject_sd[Intercept]", "sigma", "nu"],
    "dyestuff_gamma": ["Intercept", "Batch_sd[Intercept]", "alpha"],
    "gasoline_beta": ["Intercept", "temp", "batch_sd[Intercept]", "kappa"],
}
CASES = [(model, label) for model, labels in QUANTITIES.items() for label in labels]


@pytest.fixture(scope="module")
def comparison():
    """comparison(model) -> table for that model; each model is fitted once per module."""
    @functools.cache
    def table(model):
        formula, family, data = MODELS[model]
        return compare(formula, data(), family)
    return table


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_parameter_is_compared(comparison, model):
    assert list(comparison(model).index) == QUANTITIES[model]


@pytest.mark.parametrize("model, label", CASES)
def test_both_fits_converged(comparison, model, label):
    assert_converged(comparison(model).loc[label])


@pytest.mark.parametrize("model, label", CASES)
def test_posterior_mean_agrees_with_bambi(comparison, model, label):
    assert_agrees(label, comparison(model).loc[label])
