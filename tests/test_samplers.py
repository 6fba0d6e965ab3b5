"""Every back-end returns the same kind of DataTree, reproducibly, and the same posterior."""


import numpy as np
import pandas as pd
import pytest

import hierarchical as hier
from hierarchical.exceptions import SamplerError

SMALL = dict(draws=500, tune=500, chains=2, progressbar=False)


def small_frame() -> pd.DataFrame:
    rng = np.random.default_rng(9)
    g = np.repeat(np.arange(12), 10)
    return pd.DataFrame({"y": 2 + rng.normal(0, 0.8, 12)[g] + rng.normal(size=g.size), "g": g})


@pytest.fixture(scope="module")
def small_model():
    return hier.Model("y ~ 1 + (1 | g)", small_frame())


# numpyro (JAX) is an optional back-end: its checks run in the interop environment
SAMPLERS = ["nutpie", "pymc", pytest.param("numpyro", marks=pytest.mark.interop)]


@pytest.fixture(scope="module")
def fits(small_model):
    """Two fits per back-end with one seed, made on first use."""
    out = {}

    def get(sampler):
        if sampler not in out:
            out[sampler] = [small_model.fit(sampler=sampler, random_seed=7, warn=False, **SMALL)
                            for _ in range(2)]
        return out[sampler]
    return get


@pytest.mark.integration
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_same_seed_same_draws(fits, sampler):
    first, second = fits(sampler)
    for name in ("beta", "g_sd", "sigma", "g_effect"):
        assert np.array_equal(first.posterior[name].values, second.posterior[name].values)


@pytest.mark.integration
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_back_end_output_is_complete(fits, sampler):
    fit = fits(sampler)[0]
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood"} <= set(fit.idata.children)
    assert fit.posterior.sizes["chain"] == 2 and fit.posterior.sizes["draw"] == 500
    assert fit.idata.log_likelihood["y"].shape == (2, 500, 120)
    assert fit.diagnostics().divergences == 0


@pytest.mark.integration
@pytest.mark.parametrize("sampler", SAMPLERS[1:])
def test_back_ends_agree_with_nutpie(fits, sampler):
    """Posterior means within 4 combined Monte Carlo standard errors."""
    for table_name in ("fixed_effects", "variance_components"):
        ours, ref = (getattr(fits(s)[0], table_name)() for s in (sampler, "nutpie"))
        bound = 4 * np.sqrt(ours["mcse_mean"] ** 2 + ref["mcse_mean"] ** 2)
        assert ((ours["mean"] - ref["mean"]).abs() < bound).all(), (ours["mean"], ref["mean"])


@pytest.mark.integration
def test_different_seeds_differ(small_model):
    a = small_model.fit(random_seed=1, warn=False, **SMALL).posterior["beta"].values
    b = small_model.fit(random_seed=2, warn=False, **SMALL).posterior["beta"].values
    assert not np.array_equal(a, b)


def test_unknown_sampler(small_model):
    with pytest.raises(SamplerError, match="nutpie.*'stan'"):
        small_model.fit(sampler="stan")


@pytest.mark.integration
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_the_default_target_accept_follows_whether_effects_are_sampled(small_model, fits,
                                                                       sampler):
    """0.9 where the effects are integrated out (no funnel), 0.95 where they are sampled;
    the fit records the value every back-end ran with."""
    assert small_model.marginalized and fits(sampler)[0].settings["target_accept"] == 0.9
    sampled = hier.Model("y ~ 1 + (1 | g)", small_frame(), marginalize=False)
    fit = sampled.fit(sampler=sampler, random_seed=1, warn=False, draws=20, tune=20, chains=1,
                      progressbar=False)
    assert fit.settings["target_accept"] == 0.95


@pytest.mark.parametrize("argument, value", [("draws", 0), ("chains", -1), ("tune", 1.5),
                                             ("target_accept", 1.0), ("target_accept", "high")])
def test_bad_sampling_arguments(small_model, argument, value):
    with pytest.raises(hier.exceptions.SpecError, match=f"{argument} must be"):
        small_model.fit(**{argument: value})
