"""Graph checks without sampling: dims, coords, priors table, finite logp and gradient."""

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest

import hierarchical as hier
from hierarchical import names

from .conftest import prior_fit, python_evaluation


def finite_logp_and_gradient(model: hier.Model):
    pm_model = model.pymc_model
    with python_evaluation():
        point = pm_model.initial_point()
        logp = pm_model.compile_logp(mode="FAST_COMPILE")(point)
        grad = pm_model.compile_dlogp(mode="FAST_COMPILE")(point)
    assert np.isfinite(logp)
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_sleepstudy_graph_dims_and_coords(sleepstudy):
    model = hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy, centered=False,
                       marginalize=False)
    m = model.pymc_model
    subjects = [str(s) for s in sorted(sleepstudy["Subject"].unique())]
    assert m.coords["fixed_term"] == ("Intercept", "Days")
    assert m.coords["Subject"] == tuple(subjects)
    assert m.coords["Subject_term"] == ("Intercept", "Days")
    assert m.coords["Subject_pair"] == ("corr(Intercept, Days)",)
    assert m.named_vars_to_dims["beta"] == ("fixed_term",)
    assert m.named_vars_to_dims["Subject_sd"] == ("Subject_term",)
    assert m.named_vars_to_dims["Subject_z"] == ("Subject", "Subject_term")
    assert m.named_vars_to_dims["Subject_effect"] == ("Subject", "Subject_term")
    assert m.named_vars_to_dims["Reaction"] == (names.OBS_DIM,)
    assert {v.name for v in m.free_RVs} == {"beta", "Subject_sd", "Subject_corr_chol",
                                             "Subject_z", "sigma"}
    finite_logp_and_gradient(model)


def test_priors_table_lists_every_prior_and_its_source(sleepstudy):
    table = hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy).priors
    assert list(table.index) == ["Intercept", "Days", "Subject_sd[Intercept]",
                                 "Subject_sd[Days]", "Subject_corr", "sigma"]
    sd_y = sleepstudy["Reaction"].std()
    sd_days = sleepstudy["Days"].std()
    assert table.loc["sigma", "prior"] == f"HalfNormal(sigma={sd_y:.4g})"
    assert table.loc["Days", "prior"] == f"Normal(mu=0, sigma={2.5 * sd_y / sd_days:.4g})"
    assert table.loc["Subject_sd[Days]", "prior"] == f"HalfNormal(sigma={sd_y / sd_days:.4g})"
    assert table.loc["Subject_corr", "prior"] == "LKJ(eta=2)"
    assert table["source"].str.startswith("default").all()


def test_prior_overrides_by_key_most_specific_wins(sleepstudy):
    priors = {"Subject_sd": hier.Prior("HalfNormal", sigma=10),
              "Subject_sd[Days]": hier.Prior("Exponential", lam=0.5),
              "fixed": hier.Prior("Normal", mu=0, sigma=100),
              "sigma": hier.Prior("HalfStudentT", nu=4, sigma=30),
              "Subject_corr": hier.Prior("LKJ", eta=4)}
    model = hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy, priors=priors,
                       marginalize=False)
    table = model.priors
    assert table.loc["Subject_sd[Intercept]", "prior"] == "HalfNormal(sigma=10)"
    assert table.loc["Subject_sd[Days]", "prior"] == "Exponential(lam=0.5)"
    assert table.loc["Days", "prior"] == "Normal(mu=0, sigma=100)"
    assert table.loc["Intercept", "source"].startswith("default")
    assert table.loc["Subject_sd[Days]", "source"] == "user: 'Subject_sd[Days]'"
    assert table.loc["Subject_sd[Intercept]", "source"] == "user: 'Subject_sd'"
    # mixed distributions still give one Subject_sd vector with named dims
    m = model.pymc_model
    assert m.named_vars_to_dims["Subject_sd"] == ("Subject_term",)
    assert {"Subject_sd[Intercept]", "Subject_sd[Days]"} <= set(m.named_vars)
    finite_logp_and_gradient(model)


def test_centred_and_independent_variants(sleepstudy):
    centred = hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy, centered=True,
                         marginalize=False).pymc_model
    assert "Subject_z" not in centred.named_vars
    # hierarchical centring: the free variable is beta + u_j, u_j is derived
    assert "Subject_total" in {v.name for v in centred.free_RVs}
    assert centred.named_vars_to_dims["Subject_effect"] == ("Subject", "Subject_term")
    indep = hier.Model("Reaction ~ Days + (Days || Subject)", sleepstudy,
                       marginalize=False).pymc_model
    assert "Subject_corr" not in indep.named_vars and "Subject_pair" not in indep.coords
    both = hier.Model("Reaction ~ Days + (Days || Subject)", sleepstudy, centered="Subject",
                      marginalize=False)
    assert both.spec.groups[0].centered
    finite_logp_and_gradient(both)


def test_auto_parameterisation_is_recorded(sleepstudy):
    model = hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy, marginalize=False)
    row = model.parameterisation.loc["Subject"]
    assert bool(row["centered"]) and row["median_ratio"] > 1 and row["reason"].startswith("auto")
    forced = hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy, centered=False,
                        marginalize=False)
    assert forced.parameterisation.loc["Subject", "reason"] == "set by the user"


def test_crossed_nested_and_categorical_coords():
    rng = np.random.default_rng(1)
    n = 120
    frame = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                          "school": np.repeat(["s1", "s2", "s3"], 40),
                          "klass": np.tile(np.repeat(["k1", "k2"], 20), 3),
                          "rater": np.tile(["r1", "r2", "r3", "r4"], 30),
                          "arm": np.tile(["control", "drugA", "drugB"], 40)})
    model = hier.Model("y ~ x * arm + (1 | school/klass) + (1 | rater)", frame)
    c = model.pymc_model.coords
    assert c["fixed_term"] == ("Intercept", "x", "arm[drugA]", "arm[drugB]",
                               "x:arm[drugA]", "x:arm[drugB]")
    assert c["school"] == ("s1", "s2", "s3")
    assert c["school:klass"] == ("s1:k1", "s1:k2", "s2:k1", "s2:k2", "s3:k1", "s3:k2")
    assert c["rater"] == ("r1", "r2", "r3", "r4")
    finite_logp_and_gradient(model)


def test_a_factor_named_obs_keeps_its_own_dim():
    """lme4's cbpp example writes (1 | obs); the rows' dim must not be the factor's."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"y": rng.poisson(3, 50), "x": rng.normal(size=50),
                          "obs": np.repeat(list("abcde"), 10)})
    model = hier.Model("y ~ x + (1 | obs)", frame, family="poisson")
    m = model.pymc_model
    assert m.coords["obs"] == tuple("abcde")
    assert len(m.coords[names.OBS_DIM]) == 50
    assert m.named_vars_to_dims["obs_effect"] == ("obs", "obs_term")
    fit = prior_fit(model)
    assert list(fit.group_effects().loc["obs"].index.get_level_values("level")) == list("abcde")
    assert fit.predict(summary=False).sizes[names.OBS_DIM] == 50


@pytest.mark.parametrize("family, response, extra", [
    ("poisson", "count", {"offset": "log_t"}),
    ("poisson", "count", {"exposure": "t"}),
    ("bernoulli", "hit", {}),
    ("binomial", "succ", {"trials": "n"}),
])
def test_glmm_families_compile(family, response, extra):
    rng = np.random.default_rng(2)
    n = 60
    frame = pd.DataFrame({"x": rng.normal(size=n), "g": np.repeat(list("abcdef"), 10),
                          "count": rng.poisson(3, n), "t": rng.uniform(1, 3, n),
                          "hit": rng.integers(0, 2, n), "n": rng.integers(5, 10, n)})
    frame["log_t"] = np.log(frame["t"])
    frame["succ"] = rng.binomial(frame["n"], 0.4)
    model = hier.Model(f"{response} ~ x + (1 + x | g)", frame, family=family, **extra)
    assert "sigma" not in model.pymc_model.named_vars
    assert model.priors.loc["g_sd[Intercept]", "prior"] == "HalfNormal(sigma=1)"
    finite_logp_and_gradient(model)


@pytest.mark.slow   # NUTS checking PyMC's own distribution
def test_lkj_prior_has_the_right_marginal():
    """For 2 terms, LKJ(eta) gives r = 2B - 1 with B ~ Beta(eta, eta): Var(r) = 1 / (2 eta + 1)."""
    import pymc as pm

    with pm.Model(), python_evaluation():
        chol = pm.LKJCorr("c", n=2, eta=2.0)
        pm.Deterministic("r", chol[1, 0])
        draws = pm.sample(draws=2000, tune=500, chains=2, random_seed=3, progressbar=False,
                          nuts_sampler="nutpie", compute_convergence_checks=False)
    r = draws.posterior["r"].values.ravel()
    assert abs(r.var() - 1 / 5) < 0.02  # MC sd of the variance estimate here is ~0.005


def _centring_cases():
    """Nested chains (every layout of grouseticks' three factors that the rule can pick),
    slopes passed down a chain, and level-constant covariates (w, YEAR, height_z)."""
    ticks = hier.datasets.load("grouseticks")
    formula = "TICKS ~ YEAR + height_z + (1|BROOD) + (1|INDEX) + (1|LOCATION)"
    slopes = pd.DataFrame({"y": np.arange(60) % 7, "x": np.tile(np.linspace(-1, 1, 6), 10),
                           "w": np.repeat(np.arange(10) % 3, 6).astype(float),
                           "a": np.repeat(np.arange(5), 12), "b": np.repeat(np.arange(10), 6)})
    return [(formula, ticks, "poisson", True),
            (formula, ticks, "poisson", {"INDEX": True, "BROOD": False, "LOCATION": False}),
            (formula, ticks, "poisson", {"INDEX": False, "BROOD": True, "LOCATION": False}),
            ("y ~ x + w + (x | a) + (x | a:b)", slopes, "poisson", True),
            ("y ~ x + w + (x | a) + (1 | a:b)", slopes, "poisson", {"a": False, "a:b": True})]


@pytest.mark.parametrize("formula, data, family, centered", _centring_cases())
def test_hierarchical_centring_is_a_reparameterisation(formula, data, family, centered):
    """The centred graph (totals holding fixed terms, level-constant covariates and parents'
    totals) and the non-centred one give the same likelihood and the same effects at
    matching points: theta_g = u_g + mean_g, with mean_g read from the centred graph."""
    options = dict(family=family, aggregate_rows=False, marginalize=False)   # sampled effects
    nc = hier.Model(formula, data, centered=False, **options)
    c = hier.Model(formula, data, centered=centered, **options)
    rng = np.random.default_rng(0)
    beta = rng.normal(0, 0.3, len(nc.design.fixed_names))
    nc_point, c_point, u = dict(nc.pymc_model.initial_point()), dict(c.pymc_model.initial_point()), {}
    for g in nc.design.groups:
        k = len(g.term_names)
        sd = rng.uniform(0.2, 0.8, k)
        u[g.name] = rng.normal(0, sd, (len(g.levels), k))
        for point in (nc_point, c_point):
            point[f"{g.name}_sd_log__"] = np.log(sd)
            if f"{g.name}_corr_chol_interval__" in point:   # identity correlation
                point[f"{g.name}_corr_chol_interval__"] = np.zeros_like(point[f"{g.name}_corr_chol_interval__"])
        nc_point[f"{g.name}_z"] = u[g.name] / sd
    for point, m in ((nc_point, nc), (c_point, c)):
        rv = m.pymc_model["beta"]
        transform = m.pymc_model.rvs_to_transforms.get(rv)
        point[m.pymc_model.rvs_to_values[rv].name] = (
            beta if transform is None else transform.forward(pt.as_tensor(beta)).eval())
    effects = [c.pymc_model[f"{g.name}_effect"] for g in c.design.groups]
    read = _point_function(c.pymc_model, effects)
    for g in sorted(c.design.groups, key=lambda g: len(g.levels)):   # parents first
        name = f"{g.name}_total" if f"{g.name}_total" in c_point else f"{g.name}_z"
        if name.endswith("_z"):
            c_point[name] = nc_point[name]
            continue
        c_point[name] = np.zeros_like(u[g.name])
        mean = -read(c_point)[c.design.groups.index(g)]                  # effect at theta = 0
        c_point[name] = u[g.name] + mean
    for g, effect in zip(c.design.groups, read(c_point)):
        assert np.allclose(effect, u[g.name], atol=1e-12), g.name
    name = c.design.spec.response
    loglik = [_point_function(m.pymc_model, [m.pymc_model.logp(vars=[m.pymc_model[name]])])
              for m in (nc, c)]
    assert loglik[1](c_point)[0] == pytest.approx(loglik[0](nc_point)[0], rel=1e-12)


def _point_function(model, outputs):
    """outputs as a function of a dict of the model's value variables."""
    import pytensor

    outputs = model.replace_rvs_by_values(outputs)
    f = pytensor.function(model.value_vars, outputs, mode="FAST_COMPILE", on_unused_input="ignore")
    return lambda point: f(*[point[v.name] for v in model.value_vars])


def test_the_intercept_is_sampled_centred_and_drawn_as_given():
    """NUTS moves c_0 = beta_0 + mean(floor) beta_floor; the prior and the draws are beta's."""
    from hierarchical import graph

    radon = hier.datasets.load("radon")
    model = hier.Model("log_radon ~ floor + (1 | county)", radon, marginalize=False)
    transform = model.pymc_model.rvs_to_transforms[model.pymc_model["beta"]]
    assert isinstance(transform, graph.CentredIntercept)
    beta = np.array([1.0, -0.7])
    c = transform.forward(pt.as_tensor(beta)).eval()
    assert c == pytest.approx([1.0 - 0.7 * radon["floor"].mean(), -0.7])
    assert transform.backward(pt.as_tensor(c)).eval() == pytest.approx(beta)
    assert transform.log_jac_det(pt.as_tensor(c)).eval() == 0.0
    centred = radon.assign(floor=radon["floor"] - radon["floor"].mean())
    assert graph.centred_intercept(hier.Model("log_radon ~ floor + (1 | county)", centred).design) is None
    assert graph.centred_intercept(hier.Model("log_radon ~ 0 + floor + (1 | county)", radon).design) is None
