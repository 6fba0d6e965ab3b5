"""`from_bambi`: a fitted bambi 0.21 model read by our Fit, pooling and ICC tools.

bambi is fitted once per module (radon, ``log_radon ~ floor + (1 | county)``); the converted
Fit must report bambi's own draws, and the log likelihood we recompute from them must equal
the one bambi computes, which checks the intercept (x = 0) and the level matching together.
"""

import numpy as np
import pytest

bmb = pytest.importorskip("bambi")

from scipy import stats
from xarray import DataTree

import hierarchical as hier
from hierarchical.bambi_interop import from_bambi, our_formula
from hierarchical.exceptions import SpecError

pytestmark = pytest.mark.interop   # bambi lives in the interop environment

SAMPLING = dict(draws=500, tune=500, chains=2, random_seed=1, progressbar=False)
COUNTY = "HENNEPIN"


@pytest.fixture(scope="module")
def bambi_fit(radon):
    model = bmb.Model("log_radon ~ floor + (1 | county)", radon.copy())
    return model, model.fit(**SAMPLING)


@pytest.fixture(scope="module")
def fit(bambi_fit):
    return from_bambi(*bambi_fit)


def with_posterior(idata: DataTree, posterior) -> DataTree:
    tree = idata.copy()
    tree["posterior"] = DataTree(posterior)
    return tree


def test_fixed_effects_are_bambis_draws(fit, bambi_fit):
    posterior = bambi_fit[1].posterior
    table = fit.fixed_effects()
    assert list(table.index) == ["Intercept", "floor"]
    for term in ["Intercept", "floor"]:
        assert table.loc[term, "mean"] == pytest.approx(float(posterior[term].mean()), abs=1e-10)


def test_variance_components_are_bambis_sds(fit, bambi_fit):
    posterior = bambi_fit[1].posterior
    table = fit.variance_components()
    assert list(table.index) == [("county", "Intercept"), ("residual", "sigma")]
    assert table.loc[("county", "Intercept"), "mean"] == pytest.approx(
        float(posterior["1|county_sigma"].mean()), abs=1e-10)
    assert table.loc[("residual", "sigma"), "mean"] == pytest.approx(
        float(posterior["sigma"].mean()), abs=1e-10)


def test_group_deviations_are_bambis_effects(fit, bambi_fit):
    theirs = bambi_fit[1].posterior["1|county"].sel(county__factor_dim=COUNTY)
    ours = fit.group_effects(kind="deviation").loc[("county", COUNTY, "Intercept"), "mean"]
    assert ours == pytest.approx(float(theirs.mean()), abs=1e-10)


def test_log_likelihood_equals_bambis(fit, bambi_fit):
    """Our eta uses beta["Intercept"] at x = 0 and the county effects by label: if bambi
    reported a centred intercept or the levels were shuffled, this would differ."""
    model, idata = bambi_fit
    theirs = model.compute_log_likelihood(idata, inplace=False)["log_likelihood"]["log_radon"]
    ours = fit.idata["log_likelihood"]["log_radon"]
    np.testing.assert_allclose(ours.values, theirs.values, rtol=0, atol=1e-10)


def test_icc_and_pooling_factor_of_radon(fit):
    icc = fit.icc().summary
    assert 0.05 < icc.loc["county", "mean"] < 0.4
    pooling = fit.pooling_factors()
    assert 0.2 < pooling.loc[("county", "Intercept"), "pooling_factor"] < 0.8


def test_fit_has_the_groups_of_our_own_fits(fit):
    groups = {"posterior", "sample_stats", "observed_data", "log_likelihood"}
    assert groups <= set(fit.idata.children)
    assert fit.sampler == "bambi"
    assert list(fit.posterior["county"].values) == fit.model.design.groups[0].levels


def test_formula_group_terms_become_uncorrelated():
    assert (our_formula("y ~ x + (1 + x | g) + (1 | h) + (0 + log(z) | k)")
            == "y ~ x + (1 + x || g) + (1 | h) + (0 + log(z) || k)")


def test_slopes_model_converts_to_independent_sds(radon):
    model = bmb.Model("log_radon ~ floor + (1 + floor | county)", radon.copy())
    idata = model.fit(draws=100, tune=200, chains=1, random_seed=2, progressbar=False)
    fit = from_bambi(model, idata)
    assert fit.spec.formula == "log_radon ~ floor + (1 + floor || county)"
    assert fit.variance_components().loc[("county", "floor"), "mean"] == pytest.approx(
        float(idata.posterior["floor|county_sigma"].mean()), abs=1e-10)
    theirs = model.compute_log_likelihood(idata, inplace=False)["log_likelihood"]["log_radon"]
    np.testing.assert_allclose(fit.idata["log_likelihood"]["log_radon"].values, theirs.values,
                               rtol=0, atol=1e-10)


def test_unsupported_family_is_refused(radon):
    counts = radon.assign(count=np.round(np.exp(radon["log_radon"])).astype(int))
    model = bmb.Model("count ~ floor + (1 | county)", counts, family="negativebinomial")
    with pytest.raises(SpecError, match="negativebinomial"):
        from_bambi(model, DataTree())


def test_missing_bambi_variable_is_named(bambi_fit):
    model, idata = bambi_fit
    posterior = idata.posterior.to_dataset().drop_vars("1|county_sigma")
    with pytest.raises(SpecError, match=r"1\|county_sigma"):
        from_bambi(model, with_posterior(idata, posterior))


def test_different_levels_are_refused(bambi_fit):
    model, idata = bambi_fit
    posterior = idata.posterior.to_dataset()
    levels = [str(v) for v in posterior["county__factor_dim"].values]
    posterior = posterior.assign_coords(county__factor_dim=["ELSEWHERE", *levels[1:]])
    with pytest.raises(SpecError, match="ELSEWHERE"):
        from_bambi(model, with_posterior(idata, posterior))


def test_compare_pooling_uses_the_bambi_fit_as_partial_pooling(bambi_fit):
    pc = hier.compare_pooling(bambi_fit, draws=500, tune=1000, chains=4, random_seed=2,
                              progressbar=False)
    assert pc.partial.sampler == "bambi"
    assert set(pc.fits) == {"partial pooling", "no pooling", "complete pooling"}
    bambi_county = bambi_fit[1].posterior["1|county"]
    assert np.isclose(pc.table.loc[("county", COUNTY, "Intercept"), "partial_mean"],
                      float((bambi_county.sel(county__factor_dim=COUNTY)
                             + bambi_fit[1].posterior["Intercept"]).mean()))
    rho, _ = stats.spearmanr(pc.table["n_obs"], pc.table["shrinkage"])
    assert rho < -0.2
    assert pc.compare["rmse_loo"].idxmin() == "partial pooling"
