"""Prior sensitivity: power-scaling, prior grids, prior predictive checks (issue 5).

Reference behaviour (scripts/prior_sensitivity.py prints the numbers these tolerances come
from): with default priors, Dyestuff's between-batch SD has a prior CJS of 0.07-0.09 over
seeds (6 batches), radon's county SD about 0.004 (85 counties).
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hierarchical as hier
from hierarchical import names, sensitivity
from hierarchical.exceptions import PriorError, SpecError
from hierarchical.spec import Prior

DYESTUFF = "Yield ~ 1 + (1 | Batch)"


@pytest.fixture(scope="module")
def dyestuff():
    return hier.datasets.load("dyestuff")


@pytest.fixture(scope="module")
def dyestuff_fits(stored_fit):
    """The same model marginalised (default), centred and non-centred, 4 x 1000 draws
    (stored by ``tests/data/make_fits.py``; the centred one is divergence-free)."""
    fits = {label: stored_fit(f"dyestuff_{name}") for label, name in
            (("marginalised", "marginalised"), ("centred", "centred"),
             ("non-centred", "noncentred"))}
    assert all(int(f.idata.sample_stats["diverging"].sum()) == 0 for f in fits.values())
    return fits


@pytest.fixture(scope="module")
def radon_fit(stored_fit):
    return stored_fit("radon_intercepts")


def test_dyestuff_batch_sd_is_flagged_and_radon_county_sd_is_not(dyestuff_fits, radon_fit):
    dye = sensitivity.power_scale(dyestuff_fits["marginalised"])
    assert list(dye.columns) == ["prior", "likelihood", "diagnosis"]
    assert dye.loc["Batch_sd[Intercept]", "prior"] >= 0.05
    assert dye.loc["Batch_sd[Intercept]", "diagnosis"] != "-"
    assert dye.loc["Intercept", "prior"] < 0.05 and dye.loc["sigma", "prior"] < 0.05
    radon = sensitivity.power_scale(radon_fit)
    assert radon.loc["county_sd[Intercept]", "prior"] < 0.02
    assert (radon["diagnosis"] == "-").all()
    assert radon.loc["county_sd[Intercept]", "likelihood"] > 0.05    # the data do speak


def test_parameterisations_agree_when_only_top_level_priors_are_scaled(dyestuff_fits):
    """Over 6 seeds per form the Batch_sd prior CJS is 0.082 (SD 0.006) marginalised, 0.084
    (0.005) centred, 0.073 (0.006) non-centred; two single fits differ by SD ~0.009 plus
    that small shift: allow 0.03. Scaling every prior instead gives 0.436 centred against
    0.115 non-centred."""
    tables = {k: sensitivity.power_scale(f) for k, f in dyestuff_fits.items()}
    for quantity in ["Batch_sd[Intercept]", "icc[Batch]", "pooling_factor[Batch, Intercept]", "sigma"]:
        values = [t.loc[quantity, "prior"] for t in tables.values()]
        assert max(values) - min(values) < 0.03, (quantity, values)
    for table in tables.values():
        assert table.attrs["scaled_priors"] == ["beta", "Batch_sd", "sigma"]
    # scaling every prior, as arviz.psense does, makes the answer depend on the form
    everything = {k: sensitivity.power_scale(dyestuff_fits[k], scale_priors="all")
                  for k in ("centred", "non-centred")}
    centred = everything["centred"].loc["Batch_sd[Intercept]", "prior"]
    non_centred = everything["non-centred"].loc["Batch_sd[Intercept]", "prior"]
    assert centred > 2 * non_centred
    assert "Batch_total" in everything["centred"].attrs["scaled_priors"]   # centred effects


def test_log_prior_is_the_density_of_the_top_level_priors(dyestuff_fits):
    fit = dyestuff_fits["non-centred"]
    log_prior = sensitivity._log_prior(fit, "top-level")
    priors = {e.label: e.prior.params for e in fit.model.prior_entries}
    post = fit.posterior
    expected = {
        "beta": stats.norm(priors["Intercept"]["mu"], priors["Intercept"]["sigma"]).logpdf(
            post["beta"].values[..., 0]),
        "Batch_sd": stats.halfnorm(scale=priors["Batch_sd[Intercept]"]["sigma"]).logpdf(
            post["Batch_sd"].values[..., 0]),
        "sigma": stats.halfnorm(scale=priors["sigma"]["sigma"]).logpdf(post["sigma"].values),
    }
    for name, values in expected.items():
        np.testing.assert_allclose(log_prior[name].values, values, rtol=1e-9)


def test_lkj_log_prior_and_labels_on_correlated_slopes(stored_fit):
    fit = stored_fit("sleepstudy_slopes")
    log_prior = sensitivity._log_prior(fit, "top-level")
    assert set(log_prior.data_vars) == {"beta", "Subject_sd", "Subject_corr_chol", "sigma"}
    # LKJ(eta = 2) on a 2 x 2 correlation: log p = (eta - 1) log(1 - r^2) + const
    r = fit.posterior["Subject_corr"].values[..., 0].ravel()
    lp = log_prior["Subject_corr_chol"].values.ravel()
    np.testing.assert_allclose(lp - lp[0], np.log1p(-r ** 2) - np.log1p(-r[0] ** 2), atol=1e-8)
    table = sensitivity.power_scale(fit)
    assert list(table.index) == [
        "Intercept", "Days", "Subject_sd[Intercept]", "Subject_sd[Days]",
        "Subject_corr[Intercept, Days]", "sigma", "icc[Subject]",
        "pooling_factor[Subject, Intercept]", "pooling_factor[Subject, Days]"]
    assert (table[["prior", "likelihood"]] >= 0).all().all()
    np.testing.assert_allclose(
        sensitivity.quantity_draws(fit, ["Subject_corr[Intercept, Days]"])[
            "Subject_corr[Intercept, Days]"].values,
        fit.posterior["Subject_corr"].values[..., 0], rtol=1e-9, atol=1e-12)


def test_per_draw_pooling_factor_is_the_closed_form_for_random_intercepts(dyestuff_fits):
    fit = dyestuff_fits["marginalised"]
    draws = sensitivity.quantity_draws(fit, ["pooling_factor[Batch, Intercept]"])
    tau2 = fit.posterior["Batch_sd"].values[..., 0] ** 2
    sigma2 = fit.posterior["sigma"].values ** 2
    expected = sigma2 / (sigma2 + 5 * tau2)                    # 5 observations per batch
    np.testing.assert_allclose(draws["pooling_factor[Batch, Intercept]"].values, expected, rtol=1e-9)


def test_custom_and_unknown_targets(dyestuff_fits):
    fit = dyestuff_fits["marginalised"]
    ratio = {"sd ratio": lambda f: f.posterior["Batch_sd"].values[..., 0] / f.posterior["sigma"].values,
             "sigma": None}
    table = sensitivity.power_scale(fit, ratio)
    assert list(table.index) == ["sd ratio", "sigma"]
    with pytest.raises(SpecError, match=r"unknown sensitivity target\(s\) \['county_sd\[Intercept\]'\].*Batch_sd"):
        sensitivity.power_scale(fit, ["county_sd[Intercept]"])
    with pytest.raises(SpecError, match="one value per draw"):
        sensitivity.power_scale(fit, {"bad": lambda f: np.zeros(3)})
    with pytest.raises(SpecError, match="scale_priors"):
        sensitivity.power_scale(fit, scale_priors="some")


@pytest.mark.integration
def test_with_priors_reuses_the_compiled_sampler(dyestuff):
    model = hier.Model(DYESTUFF, dyestuff)
    model.compiled_nutpie()
    tight = model.with_priors({"Batch_sd": Prior("HalfNormal", sigma=5)})
    assert tight.is_compiled
    assert tight.prior_data()["prior:Batch_sd:sigma"] == pytest.approx([5.0])
    assert tight.priors.loc["Batch_sd[Intercept]", "prior"] == "HalfNormal(sigma=5)"
    other = model.with_priors({"Batch_sd": Prior("HalfCauchy", beta=5)})
    assert not other.is_compiled                                 # a new distribution compiles
    fit = tight.fit(draws=500, random_seed=1, progressbar=False, warn=False)
    assert fit.posterior["Batch_sd"].mean() < 10                 # HalfNormal(5) pulls it in


@pytest.mark.integration
def test_prior_grid_in_process(dyestuff):
    model = hier.Model(DYESTUFF, dyestuff)
    grid = {"Batch_sd": [Prior("HalfNormal", sigma=s) for s in (5, 50)] + [Prior("HalfCauchy", beta=25)]}
    table = sensitivity.prior_grid(model, grid, targets=["Batch_sd[Intercept]", "icc[Batch]"],
                                   draws=400, tune=400, workers=1, progressbar=False)
    assert list(table.columns[:3]) == ["point", "Batch_sd", "target"]
    assert len(table) == 6 and list(table["point"]) == [0, 0, 1, 1, 2, 2]
    sd = table[table["target"] == "Batch_sd[Intercept]"].set_index("point")
    assert sd.loc[0, "Batch_sd"] == "HalfNormal(sigma=5)"
    # HalfNormal(5) holds the SD near 5; HalfNormal(50) lets it reach lme4's 42.
    assert sd.loc[0, "mean"] < 10 < 30 < sd.loc[1, "mean"] < 60
    compiles = table.drop_duplicates("point")["compile_seconds"].to_numpy()
    assert compiles[0] > 0 and compiles[1] == 0 and compiles[2] > 0   # new distribution: compile
    assert table.attrs["grid"][2] == {"Batch_sd": Prior("HalfCauchy", beta=25)}


@pytest.mark.interop
def test_prior_grid_local_processes_and_dask_give_the_same_table(dyestuff):
    distributed = pytest.importorskip("distributed")
    model = hier.Model(DYESTUFF, dyestuff)
    grid = {"Batch_sd": [Prior("HalfNormal", sigma=s) for s in (10, 40, 160)]}
    kwargs = dict(targets=["Batch_sd[Intercept]", "Intercept"], draws=300, tune=300,
                  progressbar=False)
    local = sensitivity.prior_grid(model, grid, workers=2, **kwargs)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = sensitivity.prior_grid(model, grid, client=client, **kwargs)
    columns = [c for c in local.columns if c not in ("worker", "compile_seconds", "sample_seconds")]
    pd.testing.assert_frame_equal(local[columns], remote[columns])
    assert local["worker"].nunique() == 2
    assert (local.drop_duplicates("point")["compile_seconds"] > 0).sum() == 2   # once per worker


def test_prior_grid_rejects_bad_grids_before_fitting(dyestuff):
    model = hier.Model(DYESTUFF, dyestuff)
    with pytest.raises(PriorError, match="Batchx_sd"):
        sensitivity.prior_grid(model, {"Batchx_sd": [Prior("HalfNormal", sigma=1)]})
    with pytest.raises(SpecError, match="every entry must be a hier.Prior"):
        sensitivity.prior_grid(model, {"Batch_sd": [Prior("HalfNormal", sigma=1), 3.0]})
    with pytest.raises(SpecError, match="non-empty list"):
        sensitivity.prior_grid(model, {"Batch_sd": []})
    with pytest.raises(SpecError, match="workers"):
        sensitivity.prior_grid(model, {"Batch_sd": [Prior("HalfNormal", sigma=1)]}, workers=0)


def test_prior_predictive_summaries(dyestuff):
    model = hier.Model(DYESTUFF, dyestuff)
    check = model.prior_predictive(draws=400, random_seed=2)
    summary = check.summary
    assert list(summary.index) == ["icc[Batch]", "sd of Batch means", "min(Yield)", "max(Yield)"]
    observed_sd = dyestuff.groupby("Batch")["Yield"].mean().std()
    assert summary.loc["sd of Batch means", "observed"] == pytest.approx(observed_sd)
    assert summary.loc["min(Yield)", "observed"] == dyestuff["Yield"].min()
    prior = check.prior
    tau2, sigma2 = prior["Batch_sd"].values[..., 0] ** 2, prior["sigma"].values ** 2
    np.testing.assert_allclose(check.icc.draws.values[..., 0], tau2 / (tau2 + sigma2), rtol=1e-9)
    share = summary.loc["max(Yield)", "share_at_or_above_observed"]
    assert 0.05 < share < 0.95          # default priors put the observed range in the bulk


def test_prior_predictive_of_binomial_rows_is_on_the_proportion_scale():
    cbpp = hier.datasets.load("cbpp")
    model = hier.Model("incidence ~ period + (1 | herd)", cbpp, family="binomial", trials="size")
    check = model.prior_predictive(draws=200, random_seed=1)
    assert check.prior_predictive["incidence"].sizes[names.OBS_DIM] == len(cbpp)   # rows as given
    draws, observed = check.statistics["max(incidence)"]
    assert observed == pytest.approx((cbpp["incidence"] / cbpp["size"]).max())
    assert draws.min() >= 0 and draws.max() <= 1


def test_sensitivity_plots_render(dyestuff_fits, dyestuff, tmp_path):
    fit = dyestuff_fits["marginalised"]
    table = sensitivity.power_scale(fit)
    fig = hier.plots.power_scale(fit, ["Batch_sd[Intercept]", "sigma"], table=table)
    assert len(fig.axes) == 4
    hier.plots.save(fig, tmp_path / "power.png")
    check = fit.model.prior_predictive(draws=200, random_seed=1)
    fig = hier.plots.prior_predictive(check, fit)
    assert [ax.get_xlabel() for ax in fig.axes if ax.get_visible()] == list(check.statistics)
    hier.plots.save(fig, tmp_path / "prior_predictive.png")
    grid = pd.DataFrame({"point": [0, 1], "Batch_sd": ["HalfNormal(sigma=5)", "HalfNormal(sigma=50)"],
                         "target": ["Batch_sd[Intercept]"] * 2, "mean": [4.9, 44.0],
                         "eti94_lb": [0.3, 15.0], "eti94_ub": [12.7, 88.0]})
    grid.attrs["grid"] = [{"Batch_sd": Prior("HalfNormal", sigma=s)} for s in (5, 50)]
    fig = hier.plots.prior_grid(grid)
    assert fig.axes[0].get_xlabel() == "Batch_sd: HalfNormal sigma"
    hier.plots.save(fig, tmp_path / "grid.png")
    for name in ("power.png", "prior_predictive.png", "grid.png"):
        assert (tmp_path / name).stat().st_size > 10_000


@pytest.mark.integration
def test_eight_schools_tau_is_prior_dominated():
    """Kallioinen et al. (2024) find the eight-schools tau sensitive to its prior with a weak
    likelihood; ours (tau ~ HalfNormal(sd of the estimates)) reads the same way (0.098 / <0.05)."""
    schools = hier.datasets.load("eight_schools")
    fit = hier.Model(hier.meta_analysis("y", "se", "school"), schools).fit(random_seed=1, progressbar=False)
    table = sensitivity.power_scale(fit)
    assert table.loc["school_sd[Intercept]", "diagnosis"] == "strong prior / weak likelihood"
    assert "sigma" not in table.index                  # known standard errors: no residual SD


def test_an_integrated_beta_keeps_its_prior_in_the_power_scaling():
    """With several Gaussian factors beta is integrated out of the sampled graph
    (``marginal.integrates_fixed``) and drawn afterwards; its Normal prior is still scaled."""
    from .conftest import prior_fit
    from .test_marginal import with_more_columns

    model = hier.Model("y ~ x + (1 | b) + (1 | c)", with_more_columns())
    assert model.integrated_fixed
    fit = prior_fit(model, draws=30)
    assert sensitivity.scaled_priors(model) == ["beta", "b_sd", "c_sd", "sigma"]
    log_prior = sensitivity._log_prior(fit, "top-level")
    priors = {e.label: e.prior.params for e in model.prior_entries}
    expected = sum(stats.norm(priors[t]["mu"], priors[t]["sigma"]).logpdf(
        fit.posterior["beta"].sel(fixed_term=t).values) for t in ("Intercept", "x"))
    np.testing.assert_allclose(log_prior["beta"].values, expected, rtol=1e-9)
    assert set(log_prior.data_vars) == {"beta", "b_sd", "c_sd", "sigma"}
