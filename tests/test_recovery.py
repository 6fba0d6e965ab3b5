"""Parameter recovery on simulated data, for each template and for crossed / nested formulas.

Tolerance: the true value must lie within 3.5 posterior SDs of the posterior mean. The
posterior SD shrinks like 1/sqrt(n), so the tolerance scales with the sample size; for an
approximately normal posterior a miss by chance has probability ~5e-4 per parameter.
"""

import numpy as np
import pandas as pd
import pytest

import hierarchical as hier

pytestmark = pytest.mark.integration   # real fits

TOL = 3.5
FIT = dict(draws=1000, tune=1000, chains=2, random_seed=5, progressbar=False)


def assert_recovered(table: pd.DataFrame, truth: dict):
    for key, value in truth.items():
        row = table.loc[key]
        assert abs(row["mean"] - value) < TOL * row["sd"], (key, value, row["mean"], row["sd"])


def grouped(rng, n_groups, per_group):
    return np.repeat(np.arange(n_groups), per_group)


def test_random_intercepts_recovered():
    rng = np.random.default_rng(101)
    g = grouped(rng, 40, 15)
    x = rng.normal(size=g.size)
    u = rng.normal(0, 0.7, 40)
    y = 1.0 + 0.5 * x + u[g] + rng.normal(0, 1.0, g.size)
    frame = pd.DataFrame({"y": y, "x": x, "g": g})
    fit = hier.Model(hier.random_intercepts("y", group="g", predictors=["x"]), frame).fit(**FIT)
    assert_recovered(fit.fixed_effects(), {"Intercept": 1.0, "x": 0.5})
    assert_recovered(fit.variance_components(), {("g", "Intercept"): 0.7, ("residual", "sigma"): 1.0})
    effects = fit.group_effects(kind="deviation")["mean"].to_numpy()
    assert np.corrcoef(effects, u)[0, 1] > 0.8


def test_correlated_slopes_recovered():
    rng = np.random.default_rng(202)
    J, per = 50, 15
    g = grouped(rng, J, per)
    x = rng.normal(size=g.size)
    sd, corr = np.array([0.8, 0.4]), 0.5
    cov = np.outer(sd, sd) * np.array([[1, corr], [corr, 1]])
    u = rng.multivariate_normal([0, 0], cov, J)
    y = 1.0 - 0.5 * x + u[g, 0] + u[g, 1] * x + rng.normal(0, 0.5, g.size)
    frame = pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    spec = hier.random_slopes("y", group="g", predictors=["x"])
    fit = hier.Model(spec, frame).fit(**FIT)
    assert_recovered(fit.fixed_effects(), {"Intercept": 1.0, "x": -0.5})
    assert_recovered(fit.variance_components(), {
        ("g", "Intercept"): 0.8, ("g", "x"): 0.4, ("g", "corr(Intercept, x)"): 0.5,
        ("residual", "sigma"): 0.5})


def test_independent_slopes_recovered():
    rng = np.random.default_rng(303)
    J, per = 40, 12
    g = grouped(rng, J, per)
    x = rng.uniform(-1, 1, g.size)
    u0, u1 = rng.normal(0, 0.6, J), rng.normal(0, 0.9, J)
    y = 2.0 + 1.0 * x + u0[g] + u1[g] * x + rng.normal(0, 0.4, g.size)
    frame = pd.DataFrame({"y": y, "x": x, "g": g})
    spec = hier.random_slopes("y", group="g", predictors=["x"], correlated=False)
    fit = hier.Model(spec, frame).fit(**FIT)
    assert_recovered(fit.fixed_effects(), {"Intercept": 2.0, "x": 1.0})
    assert_recovered(fit.variance_components(), {("g", "Intercept"): 0.6, ("g", "x"): 0.9,
                                                 ("residual", "sigma"): 0.4})


@pytest.mark.slow   # 31 s of a 10-minute CI budget; crossed fits also run in the lme4 bank
def test_crossed_effects_recovered():
    rng = np.random.default_rng(404)
    a = rng.integers(0, 30, 900)
    b = rng.integers(0, 25, 900)
    ua, ub = rng.normal(0, 0.6, 30), rng.normal(0, 0.3, 25)
    y = 0.5 + ua[a] + ub[b] + rng.normal(0, 0.5, 900)
    frame = pd.DataFrame({"y": y, "a": a, "b": b})
    fit = hier.Model("y ~ 1 + (1 | a) + (1 | b)", frame).fit(**FIT)
    assert_recovered(fit.fixed_effects(), {"Intercept": 0.5})
    assert_recovered(fit.variance_components(), {("a", "Intercept"): 0.6, ("b", "Intercept"): 0.3,
                                                 ("residual", "sigma"): 0.5})


def test_nested_effects_recovered():
    rng = np.random.default_rng(505)
    schools, classes, pupils = 25, 4, 8
    school = np.repeat(np.arange(schools), classes * pupils)
    klass = np.tile(np.repeat(np.arange(classes), pupils), schools)  # labels reused across schools
    us = rng.normal(0, 0.8, schools)
    uc = rng.normal(0, 0.4, (schools, classes))
    y = 3.0 + us[school] + uc[school, klass] + rng.normal(0, 0.5, school.size)
    frame = pd.DataFrame({"y": y, "school": school, "klass": klass})
    model = hier.Model("y ~ 1 + (1 | school/klass)", frame)
    assert len(model.design.groups[1].levels) == schools * classes
    fit = model.fit(**FIT)
    assert_recovered(fit.fixed_effects(), {"Intercept": 3.0})
    assert_recovered(fit.variance_components(), {("school", "Intercept"): 0.8,
                                                 ("school:klass", "Intercept"): 0.4,
                                                 ("residual", "sigma"): 0.5})


@pytest.mark.parametrize("family", ["poisson", "binomial", "bernoulli"])
def test_glmm_recovered(family):
    rng = np.random.default_rng({"poisson": 606, "binomial": 707, "bernoulli": 808}[family])
    J, per = 40, 20
    g = grouped(rng, J, per)
    x = rng.normal(size=g.size)
    u = rng.normal(0, 0.5, J)
    eta = -0.3 + 0.6 * x + u[g]
    frame = pd.DataFrame({"x": x, "g": g})
    if family == "poisson":
        exposure = rng.uniform(0.5, 2.0, g.size)
        frame["y"] = rng.poisson(exposure * np.exp(eta))
        frame["t"] = exposure
        spec = hier.poisson_glmm("y", group="g", predictors=["x"], exposure="t")
    elif family == "binomial":
        frame["n"] = rng.integers(5, 15, g.size)
        frame["y"] = rng.binomial(frame["n"], 1 / (1 + np.exp(-eta)))
        spec = hier.logit_glmm("y", group="g", predictors=["x"], trials="n")
    else:
        frame["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
        spec = hier.logit_glmm("y", group="g", predictors=["x"])
    fit = hier.Model(spec, frame).fit(**FIT)
    assert_recovered(fit.fixed_effects(), {"Intercept": -0.3, "x": 0.6})
    assert_recovered(fit.variance_components(), {("g", "Intercept"): 0.5})


def test_model_without_fixed_effects():
    rng = np.random.default_rng(909)
    g = grouped(rng, 12, 10)
    u = rng.normal(0, 1.0, 12)
    frame = pd.DataFrame({"y": u[g] + rng.normal(0, 0.3, g.size), "g": g})
    fit = hier.Model("y ~ 0 + (1 | g)", frame).fit(**FIT)
    assert fit.fixed_effects().empty and "mean" in fit.fixed_effects().columns
    effects = fit.group_effects(kind="total")["mean"].to_numpy()
    assert np.abs(effects - u).max() < 0.4  # each level has 10 rows with sd 0.3: se ~0.1
    assert fit.predict().shape == (g.size, 4)
