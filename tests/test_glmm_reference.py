"""GLMMs and meta-analysis on real data, checked against published fits.

* lme4 cbpp (Lesnoff et al. 2004), ``cbind(incidence, size - incidence) ~ period + (1 | herd)``,
  binomial: lme4's Laplace fit (lme4 reference manual, ``?cbpp``) gives (Intercept) -1.398,
  period2 -0.992, period3 -1.128, period4 -1.580 and a herd SD of 0.642. Fixed effects must lie
  within 2 posterior SD of lme4's; the herd SD (15 herds: a wide posterior) inside the 94%
  interval.
* Eight schools (Rubin 1981) as a meta-analysis with mu ~ Normal(0, 5), tau ~ HalfCauchy(5):
  no divergences with defaults; the posterior of mu agrees with the exact marginal posterior
  computed by quadrature over tau.
* Epilepsy with an observation-level random effect for overdispersion fits cleanly.
"""

import numpy as np
import pytest
from scipy import integrate, stats

import hierarchical as hier

pytestmark = pytest.mark.integration   # real fits

LME4_CBPP = {"Intercept": -1.3983, "period[2]": -0.9919, "period[3]": -1.1282, "period[4]": -1.5797}


@pytest.fixture(scope="module")
def cbpp_fit():
    data = hier.datasets.load("cbpp")
    spec = hier.logit_glmm("incidence", group="herd", predictors=["C(period)"], trials="size")
    return hier.Model(spec, data).fit(random_seed=3, progressbar=False)


def test_cbpp_fixed_effects_match_lme4(cbpp_fit):
    fe = cbpp_fit.fixed_effects()
    fe.index = [t.replace("C(period)", "period") for t in fe.index]
    for term, value in LME4_CBPP.items():
        assert abs(fe.loc[term, "mean"] - value) < 2 * fe.loc[term, "sd"], (term, fe.loc[term])


def test_cbpp_herd_sd_covers_lme4(cbpp_fit):
    row = cbpp_fit.variance_components(prob=0.94).loc[("herd", "Intercept")]
    assert row["eti94_lb"] < 0.642 < row["eti94_ub"]
    assert cbpp_fit.diagnostics().passed, repr(cbpp_fit.diagnostics())


def test_cbpp_mean_prediction_is_a_probability_per_trial(cbpp_fit):
    pred = cbpp_fit.predict(kind="mean")
    assert ((pred["mean"] > 0) & (pred["mean"] < 1)).all()
    observed = cbpp_fit.model.data["incidence"] / cbpp_fit.model.data["size"]
    assert np.corrcoef(pred["mean"], observed)[0, 1] > 0.6
    counts = cbpp_fit.predict(kind="response", random_seed=1, summary=False)
    assert (counts.values <= cbpp_fit.model.data["size"].to_numpy()).all()


@pytest.fixture(scope="module")
def schools_fit():
    data = hier.datasets.load("eight_schools")
    spec = hier.meta_analysis("y", se="se", group="school",
                              priors={"Intercept": hier.Prior("Normal", mu=0, sigma=5),
                                      "school_sd": hier.Prior("HalfCauchy", beta=5)})
    return hier.Model(spec, data).fit(random_seed=8, progressbar=False)


def exact_mu_mean(y, se, mu_sd=5.0, tau_scale=5.0) -> float:
    """E[mu | y] by quadrature over tau: given tau, y_j ~ N(mu, se_j^2 + tau^2), mu ~ N(0, 5^2)."""

    def conditional(tau):
        w = 1 / (se ** 2 + tau ** 2)
        precision = w.sum() + 1 / mu_sd ** 2
        mean = (w * y).sum() / precision
        # p(tau | y) up to a constant: marginal likelihood with mu integrated out, times prior
        log_like = (0.5 * np.log(w).sum() - 0.5 * np.log(precision)
                    - 0.5 * ((w * y ** 2).sum() - precision * mean ** 2))
        return mean, np.exp(log_like) * stats.halfcauchy.pdf(tau, scale=tau_scale)

    norm = integrate.quad(lambda t: conditional(t)[1], 0, np.inf, limit=200)[0]
    first = integrate.quad(lambda t: np.prod(conditional(t)), 0, np.inf, limit=200)[0]
    return first / norm


def test_eight_schools_reads_like_every_model(schools_fit):
    fe, vc = schools_fit.fixed_effects(), schools_fit.variance_components()
    assert list(fe.index) == ["Intercept"]
    assert list(vc.index) == [("school", "Intercept")]
    theta = schools_fit.group_effects(kind="total")
    assert list(theta.index.get_level_values("level")) == list("ABCDEFGH")
    assert schools_fit.diagnostics().divergences == 0
    data = hier.datasets.load("eight_schools")
    exact = exact_mu_mean(data["y"].to_numpy(float), data["se"].to_numpy(float))
    assert abs(fe.loc["Intercept", "mean"] - exact) < 4 * fe.loc["Intercept", "mcse_mean"]
    # shrinkage: school A (28 +- 15) is pulled most of the way to mu
    assert fe.loc["Intercept", "mean"] < theta.loc[("school", "A", "Intercept"), "mean"] < 15


def test_epilepsy_observation_level_effect_fits_cleanly():
    data = hier.datasets.load("epil")
    model = hier.Model("y ~ trt + lbase + lage + V4 + (1 | subject) + (1 | rownames)", data,
                       family="poisson")
    fit = model.fit(random_seed=4, progressbar=False)
    assert fit.diagnostics().divergences == 0
    vc = fit.variance_components(prob=0.94)
    # the overdispersion SD is clearly away from zero (Breslow & Clayton 1993 report ~0.36)
    assert vc.loc[("rownames", "Intercept"), "eti94_lb"] > 0.15
