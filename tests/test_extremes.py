"""Extreme data still fit (the cases of ``benchmarks/extremes.py``, which reports time and
memory): one row per group, all-zero Poisson groups, separated logit groups, responses in
units of 1e6 and 1e-6, and 10,000 groups."""

import numpy as np
import pytest

from benchmarks import extremes

pytestmark = pytest.mark.integration   # real fits


@pytest.fixture(scope="module")
def units():
    return {name: extremes.CASES[name]().fit(random_seed=1, progressbar=False)
            for name in ("units_1", "units_1e6", "units_1e-6")}


def converged(fit) -> bool:
    """Mixing good enough to read the estimates: no divergence, r_hat <= 1.02, bulk ESS >=
    200 of 4,000 draws. Looser than the verdict's 1.01 / 400, which a single seed can miss by
    a hair (r_hat 1.011) on a correct build: the verdict itself is tested in test_diagnostics."""
    d = fit.diagnostics()
    return (d.divergences == 0 and d.table["r_hat"].max() <= 1.02
            and d.table["ess_bulk"].min() >= 200)


def test_one_row_per_group_fits_and_keeps_the_total_variance():
    fit = extremes.CASES["one_row_per_group"]().fit(random_seed=1, progressbar=False, warn=False)
    assert converged(fit), fit.diagnostics()
    sd = fit.variance_components()["mean"].to_numpy()
    # sigma and the group SD are not separately identified, their total is: sd(y) = 0.86
    total = np.sqrt((sd ** 2).sum())
    assert abs(total - extremes.one_row_per_group()["y"].std()) < 0.15, sd


def test_all_zero_poisson_groups_get_finite_shrunken_effects():
    fit = extremes.CASES["poisson_zero_groups"]().fit(random_seed=1, progressbar=False, warn=False)
    assert converged(fit), fit.diagnostics()
    effects = fit.group_effects("deviation").xs(("g", "Intercept"), level=("group", "term"))["mean"]
    zero = effects.loc[[f"g{j:05d}" for j in range(5)]]
    assert (zero < 0).all() and (zero > -2.5).all(), zero   # no-pooling estimate: -inf


def test_separated_logit_groups_get_finite_effects_of_the_right_sign():
    fit = extremes.CASES["logit_separation"]().fit(random_seed=1, progressbar=False, warn=False)
    assert converged(fit), fit.diagnostics()
    effects = fit.group_effects("deviation").xs(("g", "Intercept"), level=("group", "term"))["mean"]
    all_one = effects.loc[[f"g{j:05d}" for j in range(3)]]
    all_zero = effects.loc[[f"g{j:05d}" for j in range(3, 6)]]
    assert (all_one > 0.5).all() and (all_one < 4).all(), all_one
    assert (all_zero < -0.5).all() and (all_zero > -4).all(), all_zero


@pytest.mark.parametrize("name, factor", [("units_1e6", 1e6), ("units_1e-6", 1e-6)])
def test_priors_follow_the_units(units, name, factor):
    """The same radon posterior in other units: the data-scaled priors scale with them."""
    scaled, base = units[name], units["units_1"]
    assert converged(scaled), scaled.diagnostics()
    for table in ("fixed_effects", "variance_components"):
        a, b = getattr(scaled, table)(), getattr(base, table)()
        bound = 4 * np.hypot(a["mcse_mean"] / factor, b["mcse_mean"])
        assert (abs(a["mean"] / factor - b["mean"]) < bound).all(), (a["mean"], b["mean"])


@pytest.mark.slow
def test_ten_thousand_gaussian_groups():
    model = extremes.CASES["gaussian_10000_groups"]()
    assert model.marginalized
    fit = model.fit(random_seed=1, progressbar=False)
    assert fit.diagnostics().divergences == 0
    assert fit.group_effects().shape[0] == 10_000
    sd = fit.variance_components()["mean"]
    assert abs(sd.iloc[0] - 0.5) < 0.05 and abs(sd.iloc[1] - 1.0) < 0.03, sd


@pytest.mark.slow
def test_ten_thousand_poisson_groups():
    fit = extremes.CASES["poisson_10000_groups"]().fit(random_seed=1, progressbar=False)
    assert fit.diagnostics().divergences == 0
    assert abs(fit.variance_components()["mean"].iloc[0] - 0.5) < 0.05
