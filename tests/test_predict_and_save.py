"""Predictions (link / mean / response, new groups) and save -> load round trips."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import hierarchical as hier
from hierarchical import names
from hierarchical.exceptions import DataError

from .conftest import prior_fit


@pytest.fixture(scope="module")
def radon_fit(stored_fit):
    return stored_fit("radon_intercepts")


def test_unseen_county_is_wider_than_a_well_measured_one(radon_fit, radon):
    big = radon["county"].value_counts().idxmax()            # St Louis, 116 houses
    new = pd.DataFrame({"floor": [0, 0], "county": [big, "NOT A COUNTY"]})
    link = radon_fit.predict(new, kind="link", new_groups="population", random_seed=1)
    assert link.loc[1, "sd"] > 3 * link.loc[0, "sd"]
    # population draws centre on the population mean; the sd matches sqrt(var(beta0) + tau^2)
    post = radon_fit.posterior
    tau = post["county_sd"].sel(county_term="Intercept").values
    beta0 = post["beta"].sel(fixed_term="Intercept").values
    expected_sd = np.sqrt(beta0.var() + (tau ** 2).mean())
    assert link.loc[1, "sd"] == pytest.approx(expected_sd, rel=0.05)


def test_new_groups_error_names_the_level(radon_fit):
    new = pd.DataFrame({"floor": [0], "county": ["ATLANTIS"]})
    with pytest.raises(DataError, match="'county'.*ATLANTIS"):
        radon_fit.predict(new, new_groups="error")


def test_new_groups_zero_uses_the_population_average(radon_fit):
    new = pd.DataFrame({"floor": [1], "county": ["ATLANTIS"]})
    zero = radon_fit.predict(new, kind="link", new_groups="zero", summary=False)
    beta = radon_fit.posterior["beta"]
    expected = beta.sel(fixed_term="Intercept") + beta.sel(fixed_term="floor")
    assert np.allclose(zero.isel({names.OBS_DIM: 0}).values, expected.values)


def test_in_sample_mean_and_response(radon_fit, radon):
    mean = radon_fit.predict(kind="mean")
    assert list(mean.index) == list(radon.index)
    assert np.corrcoef(mean["mean"], radon["log_radon"])[0, 1] > 0.4
    draws = radon_fit.predict(kind="response", summary=False, random_seed=5)
    assert isinstance(draws, xr.DataArray) and draws.dims == ("chain", "draw", names.OBS_DIM)
    # posterior predictive spread includes the residual SD
    assert float(draws.std()) > float(radon_fit.posterior["sigma"].mean())


def test_same_seed_same_predictions(radon_fit):
    new = pd.DataFrame({"floor": [0, 1], "county": ["AITKIN", "NOWHERE"]})
    a = radon_fit.predict(new, kind="response", random_seed=11, summary=False)
    b = radon_fit.predict(new, kind="response", random_seed=11, summary=False)
    c = radon_fit.predict(new, kind="response", random_seed=12, summary=False)
    assert np.array_equal(a.values, b.values) and not np.array_equal(a.values, c.values)


def test_bad_predict_arguments(radon_fit):
    with pytest.raises(DataError, match="'floor'.*not found"):
        radon_fit.predict(pd.DataFrame({"county": ["AITKIN"]}))
    with pytest.raises(DataError, match="'floor'.*nan"):
        radon_fit.predict(pd.DataFrame({"county": ["AITKIN"], "floor": [np.nan]}))
    with pytest.raises(hier.exceptions.SpecError, match="kind"):
        radon_fit.predict(kind="probability")


def test_unseen_category_of_a_predictor_is_an_error():
    data = hier.datasets.load("epil")
    fit = prior_fit(hier.Model("y ~ trt + lbase + (1 | subject)", data, family="poisson"))
    new = pd.DataFrame({"trt": ["aspirin"], "lbase": [0.0], "subject": [1]})
    with pytest.raises(DataError, match="aspirin"):
        fit.predict(new)
    rate = fit.predict(pd.DataFrame({"trt": ["placebo"], "lbase": [0.0], "subject": [1]}))
    assert rate.loc[0, "mean"] > 0


def test_loo_uses_the_stored_log_likelihood(radon_fit):
    loo = radon_fit.loo()
    assert loo.n_data_points == 919
    assert -1100 < loo.elpd < -1000  # Gelman & Hill's varying-intercept radon model


def test_the_log_likelihood_is_computed_on_first_use(radon_fit, tmp_path):
    """Summaries, diagnostics, effects, predictions and saving never compute it; idata
    does, once."""
    loaded = (radon_fit.save(tmp_path / "radon.nc"), hier.load(tmp_path / "radon.nc"))[1]
    loaded.summary(), loaded.diagnostics(), loaded.group_effects(), loaded.predict(random_seed=1)
    loaded.save(tmp_path / "again.nc")
    assert "log_likelihood" not in loaded.tree.children
    stored = radon_fit.idata.log_likelihood["log_radon"]
    xr.testing.assert_allclose(loaded.idata.log_likelihood["log_radon"], stored)
    assert loaded.idata.log_likelihood is loaded.idata.log_likelihood    # kept


def test_save_load_round_trip(radon_fit, tmp_path):
    path = tmp_path / "radon.nc"
    radon_fit.save(path)
    loaded = hier.load(path)
    for table in ("fixed_effects", "variance_components", "group_effects"):
        pd.testing.assert_frame_equal(getattr(loaded, table)(), getattr(radon_fit, table)())
    new = pd.DataFrame({"floor": [0, 1], "county": ["AITKIN", "NOWHERE"]})
    pd.testing.assert_frame_equal(loaded.predict(new, kind="response", random_seed=3),
                                  radon_fit.predict(new, kind="response", random_seed=3))
    assert loaded.diagnostics().verdict == radon_fit.diagnostics().verdict
    np.testing.assert_array_equal(loaded.posterior["beta"].values, radon_fit.posterior["beta"].values)


def test_version_mismatch_warns(radon_fit, tmp_path):
    import json

    import h5py

    path = tmp_path / "old.nc"
    radon_fit.save(path)
    with h5py.File(path, "r+") as f:
        meta = json.loads(f.attrs["hierarchical"])
        meta["versions"]["pymc"] = "5.0.0"
        f.attrs["hierarchical"] = json.dumps(meta)
    with pytest.warns(UserWarning, match="pymc 5.0.0"):
        hier.load(path)
