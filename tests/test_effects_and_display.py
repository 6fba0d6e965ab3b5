"""Effects on the response scale, posterior predictive draws, predictions without group
effects, and how fits show in a notebook: checked by hand on draws (no sampling)."""

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import hierarchical as hier
from hierarchical import effects, names, ppc
from hierarchical.exceptions import SpecError

from .conftest import frame_hash, prior_fit

NARROW = {"Intercept": hier.Prior("Normal", mu=1, sigma=0.3),
          "fixed": hier.Prior("Normal", mu=0, sigma=0.3),
          "g_sd": hier.Prior("HalfNormal", sigma=0.3)}


def counts(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(8), 6)
    frame = pd.DataFrame({"g": g, "x": rng.normal(size=g.size), "trt": np.tile(["a", "b", "c"], 16),
                          "site": np.where(g < 4, "north", "south")})
    frame["y"] = rng.poisson(np.exp(1 + 0.3 * frame["x"]))
    frame["hit"] = (rng.uniform(size=g.size) < expit(frame["x"])).astype(int)
    return frame


@pytest.fixture(scope="module")
def poisson_fit():
    return prior_fit(hier.Model("y ~ x + trt + (1 | g)", counts(), family="poisson",
                                priors=NARROW), draws=200, seed=1)


def _beta(fit, term):
    return fit.posterior["beta"].sel(fixed_term=term).values.ravel()


def test_rate_ratio_is_exp_beta_and_difference_is_by_hand(poisson_fit):
    table = poisson_fit.comparisons("trt", comparison="ratio")
    assert list(table.index.get_level_values("contrast")) == ["b / a", "c / a"]
    for contrast, term in (("b / a", "trt[b]"), ("c / a", "trt[c]")):
        row = table.xs(contrast, level="contrast").iloc[0]
        assert row["estimate"] == pytest.approx(np.exp(_beta(poisson_fit, term)).mean(), rel=1e-10)
        assert row["p_increase"] == pytest.approx((_beta(poisson_fit, term) > 0).mean())
    # the difference in expected counts, population level, averaged over the rows
    frame, design = counts(), poisson_fit.model.design
    beta = poisson_fit.posterior["beta"].values.reshape(-1, design.X.shape[1])
    X = design.X.copy()
    b, c = design.fixed_names.index("trt[b]"), design.fixed_names.index("trt[c]")
    lo, hi = X.copy(), X.copy()
    lo[:, [b, c]], hi[:, [b, c]] = 0, 0
    hi[:, b] = 1
    by_hand = (np.exp(hi @ beta.T) - np.exp(lo @ beta.T)).mean(axis=0)
    diff = poisson_fit.comparisons("trt").xs("b - a", level="contrast").iloc[0]
    assert diff["estimate"] == pytest.approx(by_hand.mean(), rel=1e-10)
    assert diff["sd"] == pytest.approx(by_hand.std(ddof=1), rel=1e-10)
    assert frame_hash(frame) == frame_hash(counts())


def test_numeric_variable_by_groups_and_group_effects(poisson_fit):
    one_unit = poisson_fit.comparisons("x", comparison="ratio", by="site", newdata=counts())
    assert list(one_unit.index) == [("+1", "north"), ("+1", "south")]
    np.testing.assert_allclose(one_unit["estimate"], np.exp(_beta(poisson_fit, "x")).mean())
    # with group effects the ratio is unchanged (log link, no interaction) but the
    # difference in counts grows with each level's effect
    with_groups = poisson_fit.comparisons("x", include_groups=True)
    without = poisson_fit.comparisons("x")
    assert with_groups["estimate"].iloc[0] != pytest.approx(without["estimate"].iloc[0])
    chosen = poisson_fit.comparisons("x", values=(0, 2), comparison="ratio")
    assert chosen.index[0][0] == "2 / 0"
    assert chosen["estimate"].iloc[0] == pytest.approx(np.exp(2 * _beta(poisson_fit, "x")).mean())


def test_odds_ratio_of_a_logit_model():
    fit = prior_fit(hier.Model("hit ~ x + (1 | g)", counts(), family="bernoulli",
                               priors=NARROW), draws=200, seed=2)
    table = fit.comparisons("x", comparison="oddsratio", values=(0, 1))
    assert table["estimate"].iloc[0] == pytest.approx(np.exp(_beta(fit, "x")).mean(), rel=1e-8)
    with pytest.raises(SpecError, match=r"comparison='oddsratio' needs probabilities.*'poisson'"):
        prior_fit(hier.Model("y ~ x + (1 | g)", counts(), family="poisson"), 5).comparisons(
            "x", comparison="oddsratio")


def test_comparison_arguments_are_checked(poisson_fit):
    with pytest.raises(SpecError, match=r"comparison must be one of .* but got 'diff'"):
        poisson_fit.comparisons("x", comparison="diff")
    with pytest.raises(SpecError, match=r"variable 'dose' is not a column"):
        poisson_fit.comparisons("dose")
    with pytest.raises(SpecError, match=r"by=\['region'\] not among.*pass your data as newdata="):
        poisson_fit.comparisons("x", by="region")


def test_comparisons_at_given_rows(poisson_fit):
    newdata = counts().head(3)
    table = poisson_fit.comparisons("x", comparison="ratio", newdata=newdata)
    assert len(table) == 3
    np.testing.assert_allclose(table["estimate"], np.exp(_beta(poisson_fit, "x")).mean())


def test_include_groups(poisson_fit):
    frame = counts()
    population = poisson_fit.predict(frame, kind="link", include_groups=False, summary=False)
    fixed = poisson_fit.posterior["beta"].values @ poisson_fit.model.design.X.T
    np.testing.assert_allclose(population.values, fixed)
    everything = poisson_fit.predict(frame, kind="link", summary=False)
    only_g = poisson_fit.predict(frame, kind="link", include_groups=["g"], summary=False)
    np.testing.assert_array_equal(everything.values, only_g.values)
    # without group effects the factor's column is not needed
    poisson_fit.predict(frame.drop(columns="g"), include_groups=False)
    with pytest.raises(SpecError, match=r"include_groups must be True, False or a list of "
                                        r"grouping factors from \['g'\], but got \['county'\]"):
        poisson_fit.predict(frame, include_groups=["county"])


def test_posterior_predictive_aligns_with_observed_data_after_dropna():
    frame = counts().set_index(pd.Index([f"row{i}" for i in range(48)]))
    frame.loc["row3", "x"] = np.nan
    with pytest.warns(UserWarning, match="dropped 1 of 48 rows"):
        model = hier.Model("y ~ x + (1 | g)", frame, family="poisson", dropna=True, priors=NARROW)
    fit = prior_fit(model, draws=30)
    fit.idata["observed_data"] = model._observed_data()
    idata = fit.posterior_predictive(random_seed=4)
    rep, observed = idata["posterior_predictive"]["y"], idata["observed_data"]["y"]
    assert rep.sizes[names.OBS_DIM] == observed.sizes[names.OBS_DIM] == 47
    np.testing.assert_array_equal(rep[names.OBS_DIM].values, observed[names.OBS_DIM].values)
    assert (rep.values >= 0).all() and np.all(rep.values == np.round(rep.values))
    again = fit.posterior_predictive(random_seed=4)["posterior_predictive"]["y"]
    np.testing.assert_array_equal(again.values, rep.values)


def test_ppc_statistics_are_bayesian_p_values(poisson_fit):
    table = ppc.statistics(poisson_fit, random_seed=3)
    assert list(table.index.get_level_values("statistic")) == ["mean", "sd", "zeros", "max"]
    rep = poisson_fit.idata["posterior_predictive"]["y"].values.reshape(-1, 48)
    y = poisson_fit.model.design.y
    assert table.loc[("max", "all"), "p_value"] == pytest.approx((rep.max(axis=1) >= y.max()).mean())
    by_g = ppc.statistics(poisson_fit, "mean", by="g")
    assert len(by_g) == 8 and (by_g["n"] == 6).all()
    with pytest.raises(SpecError, match="stat must be one of"):
        ppc.statistics(poisson_fit, "median")


def test_conditional_effects_are_population_predictions(poisson_fit):
    table = effects.conditional_effects(poisson_fit, "x", by="trt", points=5)
    assert len(table) == 15 and list(table["trt"].unique()) == ["a", "b", "c"]
    grid = effects.conditional_grid(poisson_fit, "x", "trt", points=5)
    expected = poisson_fit.predict(grid, include_groups=False)
    np.testing.assert_allclose(table["mean"], expected["mean"])


def test_intervals_follow_arviz_rcparams(stored_fit):
    fit = stored_fit("sleepstudy_slopes")
    assert "eti89_lb" in fit.fixed_effects().columns          # ArviZ's default
    with az.rc_context({"stats.ci_prob": 0.95}):
        assert "eti95_lb" in fit.fixed_effects().columns
        assert "eti95_ub" in fit.summary().fixed.columns
    assert "eti50_lb" in fit.summary(prob=0.5).variance.columns


def test_notebook_display(stored_fit, stored_comparison):
    fit = stored_fit("sleepstudy_slopes")
    summary = fit.summary()
    text = repr(summary)
    assert "Fixed effects:" in text and "Variance components:" in text and "Convergence:" in text
    assert summary.fixed.index.tolist() == ["Intercept", "Days"]
    page = fit._repr_html_()
    assert "<table" in page and "Subject" in page and "Convergence" in page
    assert "Priors" in fit.model._repr_html_() and "Subject" in fit.model._repr_html_()
    assert "Pooling factors" in stored_comparison("sleepstudy_pooling")._repr_html_()


def test_group_effects_and_icc_are_computed_once_per_interval(stored_fit):
    """A report asks for them in several sections: the second call returns the first's
    numbers (a copy the caller may change), another interval recomputes them."""
    fit = stored_fit("sleepstudy_slopes")
    first = fit.group_effects()
    first.iloc[0, 0] = np.nan
    again = fit.group_effects()
    assert np.isfinite(again.iloc[0, 0])
    assert fit.icc() is fit.icc()
    with az.rc_context({"stats.ci_prob": 0.5}):
        narrow = fit.group_effects()
    assert "eti50_lb" in narrow.columns and "eti50_lb" not in again.columns
    assert fit.group_effects(kind="deviation")["mean"].abs().mean() < again["mean"].abs().mean()
