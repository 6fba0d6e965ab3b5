"""lme4 sleepstudy, Reaction ~ Days + (Days | Subject), default settings.

lme4 REML (Bates et al. 2015): fixed effects 251.405, 10.467; SD(Intercept) 24.74,
SD(Days) 5.92, corr 0.066, residual SD 25.59. The Bayesian posterior is not REML, so the
fixed effects must lie within 2 posterior SD of lme4's estimates and each SD inside the
94% interval (the posterior of a variance from 18 subjects is wide and right-skewed).
"""

import pytest

pytestmark = pytest.mark.integration   # real fits

LME4_FIXED = {"Intercept": 251.405, "Days": 10.467}
LME4_SD = {("Subject", "Intercept"): 24.74, ("Subject", "Days"): 5.92, ("residual", "sigma"): 25.59}


@pytest.mark.parametrize("term", sorted(LME4_FIXED))
def test_fixed_effects_match_lme4(sleepstudy_fit, term):
    row = sleepstudy_fit.fixed_effects().loc[term]
    assert abs(row["mean"] - LME4_FIXED[term]) < 2 * row["sd"]


@pytest.mark.parametrize("component", sorted(LME4_SD))
def test_variance_components_cover_lme4(sleepstudy_fit, component):
    row = sleepstudy_fit.variance_components(prob=0.94).loc[component]
    assert row["eti94_lb"] < LME4_SD[component] < row["eti94_ub"]


def test_correlation_is_reported_and_covers_lme4(sleepstudy_fit):
    row = sleepstudy_fit.variance_components(prob=0.94).loc[("Subject", "corr(Intercept, Days)")]
    assert row["eti94_lb"] < 0.066 < row["eti94_ub"]


def test_defaults_converge(sleepstudy_fit):
    diagnostics = sleepstudy_fit.diagnostics()
    assert diagnostics.divergences == 0
    assert diagnostics.table["r_hat"].max() <= 1.01
    assert diagnostics.passed, repr(diagnostics)


def test_result_tables_have_the_documented_layout(sleepstudy_fit, sleepstudy):
    fe = sleepstudy_fit.fixed_effects()
    assert fe.index.name == "term" and list(fe.index) == ["Intercept", "Days"]
    assert {"mean", "sd", "r_hat", "ess_bulk", "ess_tail", "mcse_mean"} <= set(fe.columns)
    vc = sleepstudy_fit.variance_components()
    assert vc.index.names == ["group", "name"]
    assert list(vc.index) == [("Subject", "Intercept"), ("Subject", "Days"),
                              ("Subject", "corr(Intercept, Days)"), ("residual", "sigma")]
    ge = sleepstudy_fit.group_effects(kind="total")
    assert ge.index.names == ["group", "level", "term"]
    assert len(ge) == 18 * 2
    assert ge.index[0] == ("Subject", str(sorted(sleepstudy["Subject"].unique())[0]), "Intercept")


def test_total_effects_are_fixed_plus_deviation(sleepstudy_fit):
    total = sleepstudy_fit.group_effects(kind="total")["mean"]
    deviation = sleepstudy_fit.group_effects(kind="deviation")["mean"]
    fixed = sleepstudy_fit.fixed_effects()["mean"]
    terms = total.index.get_level_values("term")
    expected = deviation.to_numpy() + fixed.loc[terms].to_numpy()
    assert abs(total.to_numpy() - expected).max() < 1e-9
    # Subject 309 barely reacts to sleep deprivation (lme4 BLUP slope ~ -0.2 + 10.5 = 1.7)
    assert total.loc[("Subject", "309", "Days")] < 5


def test_idata_groups(sleepstudy_fit):
    groups = set(sleepstudy_fit.idata.children)
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood"} <= groups
    ll = sleepstudy_fit.idata.log_likelihood["Reaction"]
    assert ll.shape == (4, 1000, 180)
