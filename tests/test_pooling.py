"""Complete / no / partial pooling, shrinkage, pooling factors and ICC on real and simulated data.

Each comparison is fitted once per session (module fixtures); tolerances are Monte Carlo
errors of the quantities compared, or exact where the same draws enter both sides.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hierarchical as hier
from hierarchical import names
from hierarchical.pooling import complete_pooling_spec, no_pooling_spec
from hierarchical.shrinkage import _thinned

from .conftest import prior_fit, python_evaluation

SMALL = dict(draws=500, tune=1000, chains=4, progressbar=False)


@pytest.fixture(scope="module")
def radon_pooling(radon):
    model = hier.Model("log_radon ~ floor + (1 | county)", radon)
    return hier.compare_pooling(model, draws=1000, tune=1000, chains=2, random_seed=1,
                                progressbar=False)


def simulated_intercepts(tau: float, groups: int = 20, per_group: int = 10, seed: int = 3):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    y = 1.0 + 0.5 * x + tau * rng.normal(size=groups)[g] + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i:02d}" for i in g]})


# ---- specs (no sampling) --------------------------------------------------------------

def test_no_pooling_spec_replaces_shared_fixed_terms(radon):
    model = hier.Model("log_radon ~ floor + (1 | county)", radon)
    spec = no_pooling_spec(model, "county")
    assert spec.fixed == "0 + floor"
    assert spec.groups[0].pooling == "none"
    unpooled = hier.Model(spec, radon)
    assert unpooled.design.fixed_names == ["floor"]
    free = {v.name for v in unpooled.pymc_model.free_RVs}
    assert free == {"beta", "county_effect", "sigma"}
    assert unpooled.pymc_model.named_vars_to_dims["county_effect"] == ("county", "county_term")
    # each county's intercept gets the prior the pooled model gives the fixed intercept
    assert unpooled.priors.loc["county_coef[Intercept]", "prior"] == model.priors.loc["Intercept", "prior"]
    assert "no pooling" in unpooled.priors.loc["county_coef[Intercept]", "source"]


def test_no_pooling_spec_carries_user_priors_and_slopes(sleepstudy):
    model = hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy,
                       priors={"Days": hier.Prior("Normal", mu=10, sigma=3),
                               "Subject_sd": hier.Prior("HalfNormal", sigma=20)})
    spec = no_pooling_spec(model, "Subject")
    assert spec.fixed == "0"
    assert dict(spec.priors) == {"Subject_coef[Days]": hier.Prior("Normal", mu=10, sigma=3)}
    unpooled = hier.Model(spec, sleepstudy)
    assert unpooled.design.fixed_names == []
    assert unpooled.pymc_model.named_vars_to_dims["Subject_effect"] == ("Subject", "Subject_term")
    assert complete_pooling_spec(model.spec).formula == "Reaction ~ Days"
    assert dict(complete_pooling_spec(model.spec).priors) == {"Days": hier.Prior("Normal", mu=10, sigma=3)}


def test_unknown_pooling_is_a_spec_error():
    with pytest.raises(hier.exceptions.SpecError, match="pooling for 'g' must be one of"):
        hier.GroupTerm("g", pooling="some")


def test_compare_pooling_needs_a_pooled_factor(radon):
    model = hier.Model("log_radon ~ floor", radon)
    with pytest.raises(hier.exceptions.SpecError, match="at least one partially pooled"):
        hier.compare_pooling(model)


# ---- radon (Gelman & Hill), random intercepts ----------------------------------------------

@pytest.mark.integration
def test_radon_small_counties_shrink_most(radon_pooling):
    table = radon_pooling.table
    assert len(table) == 85 and table["n_obs"].sum() == 919
    rho, p = stats.spearmanr(table["n_obs"], table["shrinkage"])
    assert rho < -0.25 and p < 0.01
    # model-based shrinkage is a decreasing function of county size
    rho_model, _ = stats.spearmanr(table["n_obs"], table["shrinkage_model"])
    assert rho_model < -0.99


@pytest.mark.integration
def test_radon_complete_pooling_column_is_the_pooled_regression(radon_pooling):
    complete = radon_pooling.fits["complete pooling"].fixed_effects()
    assert np.allclose(radon_pooling.table["complete_mean"], complete.loc["Intercept", "mean"])
    no_pool = radon_pooling.fits["no pooling"].group_effects()
    assert np.allclose(radon_pooling.table["no_pool_mean"], no_pool["mean"].to_numpy())


@pytest.mark.integration
def test_radon_model_shrinkage_is_the_closed_form(radon_pooling):
    """lambda_j = n_j tau^2 / (sigma^2 + n_j tau^2): exact on the draws the code averages,
    and within 4 Monte Carlo SEs of the average over every draw."""
    fit, table = radon_pooling.partial, radon_pooling.table
    n = table["n_obs"].to_numpy()

    def closed(post):
        tau2 = post["county_sd"].values[..., 0, None] ** 2
        sigma2 = post["sigma"].values[..., None] ** 2
        return (n * tau2 / (sigma2 + n * tau2)).reshape(-1, len(n))

    assert np.allclose(table["lambda"], closed(_thinned(fit.posterior)).mean(axis=0), atol=1e-10)
    every = closed(fit.posterior)
    mcse = every.std(axis=0) / np.sqrt(fit.posterior["county_sd"].size / 4)  # ESS >= S / 4
    assert np.all(np.abs(table["lambda"] - every.mean(axis=0)) < 4 * mcse + 1e-12)
    assert np.allclose(table["lambda"] + table["shrinkage_model"], 1.0)


@pytest.mark.integration
def test_radon_partial_pooling_predicts_best(radon_pooling):
    compare = radon_pooling.compare
    assert compare.index[0] == "partial pooling"
    assert compare["rmse_loo"].idxmin() == "partial pooling"
    # PSIS-LOO is reliable for the pooled models; only a few 1-2 house counties are not
    assert compare.loc["complete pooling", "n_high_pareto_k"] == 0
    assert compare.loc["partial pooling", "n_high_pareto_k"] <= 3


@pytest.mark.integration
def test_radon_pooling_factor_and_icc(radon_pooling):
    pf = radon_pooling.partial.pooling_factors(prob=0.94).loc[("county", "Intercept")]
    assert 0.2 < pf["pooling_factor"] < 0.8
    assert pf["eti94_lb"] < pf["pooling_factor"] < pf["eti94_ub"]
    post = radon_pooling.partial.posterior
    tau2, sigma2 = post["county_sd"].values[..., 0] ** 2, post["sigma"].values ** 2
    icc = radon_pooling.icc
    assert np.allclose(icc.draws.sel(group="county").values, tau2 / (tau2 + sigma2))
    assert 0.08 < icc.summary.loc["county", "mean"] < 0.3
    assert icc.summary.loc["county", "residual_variance"] == "sigma^2"


# ---- simulated extremes --------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.parametrize("tau, low, high", [(0.0, 0.7, 1.0), (5.0, 0.0, 0.05)])
def test_shrinkage_follows_the_group_sd(tau, low, high):
    """tau -> 0: every group is pulled (almost) all the way; large tau: none is."""
    data = simulated_intercepts(tau)
    pc = hier.compare_pooling(hier.Model("y ~ x + (1 | g)", data), random_seed=2, **SMALL)
    model_based = pc.table["shrinkage_model"]
    assert model_based.between(low, high).all(), model_based.describe()
    empirical = pc.table["shrinkage"].median()
    assert low - 0.15 < empirical < high + 0.15


# ---- random slopes, GLMMs, meta-analysis, crossed factors ---------------------------------------

def test_sleepstudy_pooling_factors_and_icc(stored_fit):
    sleepstudy_fit = stored_fit("sleepstudy_slopes")
    pf = sleepstudy_fit.pooling_factors(prob=0.94)
    # the interval is the model-based factor's: near [0, 1], around G&P's point value
    assert (pf["eti94_lb"] >= 0).all() and (pf["eti94_ub"] <= 1.05).all(), pf
    assert ((pf["model_based"] - pf["pooling_factor"]).abs() < 0.1).all(), pf
    assert list(pf.index) == [("Subject", "Intercept"), ("Subject", "Days")]
    assert ((pf["pooling_factor"] > 0) & (pf["pooling_factor"] < 0.6)).all()
    icc = sleepstudy_fit.icc()
    # v = mean_i z_i' Sigma z_i with z_i = (1, Days_i)
    post = sleepstudy_fit.posterior
    sd = post["Subject_sd"].values
    rho = post["Subject_corr"].values[..., 0]
    days = sleepstudy_fit.model.design.data["Days"].to_numpy()
    v = (sd[..., 0, None] ** 2 + 2 * rho[..., None] * sd[..., 0, None] * sd[..., 1, None] * days
         + sd[..., 1, None] ** 2 * days ** 2).mean(axis=-1)
    assert np.allclose(icc.draws.sel(group="Subject").values, v / (v + post["sigma"].values ** 2))
    assert 0.5 < icc.summary.loc["Subject", "mean"] < 0.9


@pytest.mark.integration
def test_logit_icc_is_on_the_latent_scale():
    cbpp = hier.datasets.load("cbpp")
    fit = hier.Model(hier.logit_glmm("incidence", "herd", ["period"], trials="size"),
                     cbpp).fit(random_seed=4, **SMALL)
    tau2 = fit.posterior["herd_sd"].values[..., 0] ** 2
    assert np.allclose(fit.icc().draws.sel(group="herd").values, tau2 / (tau2 + np.pi ** 2 / 3))
    # intercept-only logit: S_j = 1 / (1 + tau^2 sum_i n_i p_i (1 - p_i)), p_i at each draw
    thinned = _thinned(fit.posterior)
    step = fit.posterior.sizes["draw"] // thinned.sizes["draw"]
    fit_thinned = hier.Fit(fit.model, fit.idata.isel(draw=slice(None, None, step)), settings=fit.settings)
    assert fit_thinned.posterior.sizes["draw"] == thinned.sizes["draw"]
    p = fit_thinned.predict(kind="mean", summary=False).transpose("chain", "draw", names.OBS_DIM).values
    info = cbpp["size"].to_numpy() * p * (1 - p)
    codes = fit.model.design.groups[0].codes
    per_herd = np.stack([info[..., codes == j].sum(axis=-1) for j in range(15)], axis=-1)
    tau2_t = thinned["herd_sd"].values[..., 0, None] ** 2
    expected = (1 / (1 + tau2_t * per_herd)).reshape(-1, 15).mean(axis=0)
    assert np.allclose(fit.shrinkage()["shrinkage_model"], expected)


@pytest.mark.integration
def test_meta_analysis_shrinkage_and_i2():
    """Eight schools: S_j = se_j^2 / (se_j^2 + tau^2) and ICC = I^2, exactly."""
    schools = hier.datasets.load("eight_schools")
    fit = hier.Model(hier.meta_analysis("y", se="se", group="school"), schools).fit(
        random_seed=5, **SMALL)
    se2 = schools["se"].to_numpy(float) ** 2
    tau2 = _thinned(fit.posterior)["school_sd"].values[..., 0, None] ** 2
    expected = (se2 / (se2 + tau2)).reshape(-1, 8).mean(axis=0)
    assert np.allclose(fit.shrinkage()["shrinkage_model"], expected)
    w = 1 / se2
    typical = 7 * w.sum() / (w.sum() ** 2 - (w ** 2).sum())
    tau2_all = fit.posterior["school_sd"].values[..., 0] ** 2
    assert np.allclose(fit.icc().draws.sel(group="school").values, tau2_all / (tau2_all + typical))


@pytest.mark.integration
def test_poisson_icc_uses_the_lognormal_approximation():
    epil = hier.datasets.load("epil")
    fit = hier.Model("y ~ trt + lbase + (1 | subject)", epil, family="poisson").fit(
        random_seed=6, **SMALL)
    post = fit.posterior
    tau2 = post["subject_sd"].values[..., 0] ** 2
    eta = np.einsum("cdp,np->cdn", post["beta"].values, fit.model.design.X)
    rate = np.exp(eta + 0.5 * tau2[..., None]).mean(axis=-1)
    expected = tau2 / (tau2 + np.log1p(1 / rate))
    assert np.allclose(fit.icc().draws.sel(group="subject").values, expected)
    assert "log-normal" in fit.icc().residual


def _crossed() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    a, b = rng.integers(0, 12, 400), rng.integers(0, 8, 400)
    y = 1.0 * rng.normal(size=12)[a] + 0.25 * rng.normal(size=8)[b] + rng.normal(size=400)
    return pd.DataFrame({"y": y, "a": a, "b": b})


def test_crossed_factors_get_one_table_each_from_draws():
    """The comparison's layout with two crossed factors, from prior draws (no sampling)."""
    from hierarchical import pooling

    data = _crossed()
    model = hier.Model("y ~ 1 + (1 | a) + (1 | b)", data)
    specs = {"partial pooling": model.spec, "complete pooling": complete_pooling_spec(model.spec),
             "no pooling (a)": no_pooling_spec(model, "a"),
             "no pooling (b)": no_pooling_spec(model, "b")}
    fits = {name: prior_fit(hier.Model(spec, data), draws=100, seed=i)
            for i, (name, spec) in enumerate(specs.items())}
    # the table and the ICC (prior draws make no sense to compare by LOO)
    table = pooling._estimates_table(fits["partial pooling"], fits["complete pooling"],
                                     {"a": fits["no pooling (a)"], "b": fits["no pooling (b)"]})
    assert table.groupby(level="group").size().to_dict() == {"a": 12, "b": 8}
    assert set(fits["partial pooling"].icc().summary.index) == {"a", "b"}


@pytest.mark.slow   # four fits with dense crossed blocks: about 50 s with cold caches
def test_crossed_factors_get_one_table_each():
    pc = hier.compare_pooling(hier.Model("y ~ 1 + (1 | a) + (1 | b)", _crossed()),
                              random_seed=9, **SMALL)
    assert set(pc.compare.index) == {"partial pooling", "complete pooling", "no pooling (a)",
                                     "no pooling (b)"}
    assert pc.table.groupby(level="group").size().to_dict() == {"a": 12, "b": 8}
    assert set(pc.icc.summary.index) == {"a", "b"}
    # b's SD is smaller, so its levels are pulled harder
    shrink = pc.table.groupby(level="group")["shrinkage_model"].mean()
    assert shrink["b"] > shrink["a"]


@pytest.mark.integration
def test_unpooled_factor_cannot_predict_unseen_levels(radon):
    model = hier.Model("log_radon ~ floor + (1 | county)", radon)
    fit = hier.Model(no_pooling_spec(model, "county"), radon).fit(random_seed=1, **SMALL)
    new = pd.DataFrame({"floor": [0], "county": ["NOT A COUNTY"]})
    with pytest.raises(hier.exceptions.DataError, match="unpooled"):
        fit.predict(new, new_groups="population")
    assert list(fit.variance_components().index) == [("residual", "sigma")]
    with pytest.raises(hier.exceptions.SpecError, match=r"partially pooled.*unpooled\(1 \| county\)"):
        fit.icc()


def test_group_level_predictors_leave_the_no_pooling_model(radon):
    model = hier.Model("log_radon ~ floor + log_uranium + (1 | county)", radon)
    with pytest.warns(UserWarning, match=r"leaves out \['log_uranium'\]"):
        spec = no_pooling_spec(model, "county")
    assert spec.fixed == "0 + floor"


@pytest.mark.integration
def test_poisson_pooling_with_group_level_predictors():
    """Epilepsy: treatment and baseline are constant per patient, so the no-pooling model
    drops them and every model's per-patient intercept includes them."""
    epil = hier.datasets.load("epil")
    model = hier.Model("y ~ trt + lbase + period + (1 | subject)", epil, family="poisson")
    with pytest.warns(UserWarning, match=r"leaves out \['lbase', 'trt'\]"):
        pc = hier.compare_pooling(model, random_seed=7, **SMALL)
    table = pc.table
    assert len(table) == 59 and "rmse_loo" not in pc.compare.columns
    # complete pooling differs per patient through trt and lbase: beta0 + x_j gamma
    beta = pc.fits["complete pooling"].fixed_effects()["mean"]
    first = epil.groupby("subject").first()
    expected = (beta["Intercept"] + beta["trt[progabide]"] * (first["trt"] == "progabide")
                + beta["lbase"] * first["lbase"])
    got = table.xs("Intercept", level="term")["complete_mean"].to_numpy()
    assert np.allclose(got, expected.loc[[int(lvl) for lvl in pc.partial.model.design.groups[0].levels]],
                       atol=1e-10)
    assert table["shrinkage_model"].between(0, 1).all()
    # patients with more seizures carry more information and are shrunk less
    counts = epil.groupby("subject")["y"].sum()
    levels = [int(lvl) for lvl in table.index.get_level_values("level")]
    rho, _ = stats.spearmanr(counts.loc[levels], table["shrinkage_model"])
    assert rho < -0.8
    assert pc.compare.index[0] == "partial pooling"


def test_unpooled_terms_with_different_prior_families(sleepstudy):
    model = hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    spec = no_pooling_spec(model, "Subject").with_priors(
        {"Subject_coef[Days]": hier.Prior("StudentT", nu=3, mu=0, sigma=10)})
    graph = hier.Model(spec, sleepstudy).pymc_model
    assert [v.name for v in graph.free_RVs] == ["Subject_effect[Intercept]", "Subject_effect[Days]",
                                                "sigma"]
    assert graph.named_vars_to_dims["Subject_effect"] == ("Subject", "Subject_term")
    assert graph.named_vars_to_dims["Subject_effect[Days]"] == ("Subject",)
    with python_evaluation():
        assert np.isfinite(graph.compile_logp(mode="FAST_COMPILE")(graph.initial_point()))
