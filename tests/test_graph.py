"""Graph checks without sampling: dims, coords, priors table, finite logp and gradient."""

import numpy as np
import pandas as pd
import pytest

import hierarchical as hier

from .conftest import python_evaluation


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
    assert m.named_vars_to_dims["Reaction"] == ("obs",)
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
