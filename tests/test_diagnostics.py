"""Honest verdicts: a known pathological fit warns and fails; a healthy one stays quiet."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import hierarchical as hier
from hierarchical.diagnostics import check
from hierarchical.exceptions import ConvergenceWarning


@pytest.mark.integration
def test_centred_eight_schools_warns_and_fails():
    data = hier.datasets.load("eight_schools")
    model = hier.Model(hier.meta_analysis("y", se="se", group="school", centered=True), data)
    with pytest.warns(ConvergenceWarning) as record:
        fit = model.fit(draws=1000, tune=500, chains=4, random_seed=2, progressbar=False)
    assert len(record) == 1
    message = str(record[0].message)
    assert "school_sd[Intercept]" in message or "divergent" in message
    assert "target_accept" in message or "draws" in message
    diagnostics = fit.diagnostics()
    assert not diagnostics.passed and diagnostics.verdict == "FAIL"
    assert "FAIL" in repr(diagnostics)


@pytest.mark.integration
def test_healthy_fit_does_not_warn():
    rng = np.random.default_rng(3)
    import pandas as pd

    g = np.repeat(np.arange(20), 25)
    frame = pd.DataFrame({"y": rng.normal(0, 1, 20)[g] + rng.normal(size=g.size), "g": g})
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = hier.Model("y ~ 1 + (1 | g)", frame).fit(random_seed=4, progressbar=False)
    assert fit.diagnostics().passed
    assert "PASS" in fit.diagnostics()._repr_html_()


def test_e_bfmi_flags_a_random_walk_in_the_energy():
    rng = np.random.default_rng(0)
    white = rng.normal(size=(2, 4000))         # independent energies: E-BFMI ~ 2
    walk = np.cumsum(white, axis=1)            # a random walk: E-BFMI ~ 0
    stats = {name: xr.Dataset({"energy": (("chain", "draw"), energy),
                               "diverging": (("chain", "draw"), np.zeros_like(energy, bool))})
             for name, energy in (("white", white), ("walk", walk))}
    table = pd.DataFrame({"r_hat": [1.0], "ess_bulk": [1000.0], "ess_tail": [1000.0]}, index=["x"])
    assert np.allclose(check(table, stats["white"], []).bfmi, 2.0, atol=0.1)
    walked = check(table, stats["walk"], [])
    assert (walked.bfmi < 0.01).all() and "E-BFMI" in walked.problems[0]


def funnel_data():
    """20 groups of 2 rows whose true group SD is 0.05 against a residual SD of 1: the
    centred posterior is Neal's funnel in the group SD."""
    import pandas as pd

    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(20), 2)
    return pd.DataFrame({"y": rng.normal(0, 0.05, 20)[g] + rng.normal(size=g.size), "g": g})


@pytest.mark.integration
def test_centred_funnel_warns_naming_the_sd_and_non_centred_is_quiet():
    model = hier.Model("y ~ 1 + (1 | g)", funnel_data(), centered=True, marginalize=False)
    with pytest.warns(ConvergenceWarning) as record:
        fit = model.fit(random_seed=0, progressbar=False)
    assert "g_sd[Intercept]" in str(record[0].message)
    assert fit.diagnostics().verdict == "FAIL"
    fixed = hier.Model("y ~ 1 + (1 | g)", funnel_data(), centered=False, marginalize=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert fixed.fit(random_seed=0, progressbar=False).diagnostics().passed
