"""Shared fixtures (each real model is compiled and sampled once per test session) and the
tiers: a test runs NUTS only when it is marked ``integration``, ``slow`` or ``interop``, so the
unit tier (``make test-unit``) stays seconds long and runs no sampler."""

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytest
import xarray as xr
from xarray import DataTree

import hierarchical as hier
from hierarchical import names, sampling
from hierarchical.linpred import log_likelihood_group
from hierarchical.nutpie_sampler import NutpieSampler

from .data import make_fits

SAMPLING_TIERS = ("integration", "slow", "interop")
_GUARD = pytest.MonkeyPatch()


def _refuse_nuts(*args, **kwargs):
    raise AssertionError("this test runs NUTS but is not marked integration (or slow, interop): "
                         "mark it, or test on stored or synthetic draws")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Unit tests (and the fixtures they set up) may not sample."""
    if not any(item.get_closest_marker(tier) for tier in SAMPLING_TIERS):
        _GUARD.setattr(NutpieSampler, "sample", _refuse_nuts)
        _GUARD.setattr(sampling, "sample_pymc", _refuse_nuts)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    _GUARD.undo()


@pytest.fixture(scope="session")
def sleepstudy() -> pd.DataFrame:
    return hier.datasets.load("sleepstudy")


@pytest.fixture(scope="session")
def radon() -> pd.DataFrame:
    return hier.datasets.load("radon")


@pytest.fixture(scope="session")
def stored_fit():
    """Real fits stored by ``tests/data/make_fits.py``, by name (no sampling)."""
    return make_fits.load_fit


@pytest.fixture(scope="session")
def stored_comparison():
    """Pooling comparisons stored by ``tests/data/make_fits.py``, by name (no sampling)."""
    return make_fits.load_comparison


def prior_fit(model: hier.Model, draws: int = 20, seed: int = 0) -> hier.Fit:
    """A `Fit` whose draws come from the prior (forward sampling in PyTensor's Python mode:
    no NUTS, no compiled code), for unit tests of code that only reads draws."""
    with python_evaluation():
        prior = pm.sample_prior_predictive(draws, model=model.full_pymc_model,
                                           random_seed=seed).prior.to_dataset()
    posterior = prior.drop_vars([v for v in prior.data_vars if names.OBS_DIM in prior[v].dims])
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((1, draws), bool)),
                        "energy": (("chain", "draw"), np.random.default_rng(seed).normal(size=(1, draws)))})
    idata = DataTree.from_dict({"posterior": posterior, "sample_stats": stats,
                                "log_likelihood": log_likelihood_group(posterior, model.design)})
    return hier.Fit(model, idata, settings={"sampler": "prior"})


@pytest.fixture(scope="session")
def sleepstudy_fit(sleepstudy):
    """lme4's reference model with every default (4 chains x 1000 draws, nutpie)."""
    model = hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    return model.fit(random_seed=11, progressbar=False)


@pytest.fixture(scope="session")
def radon_slopes_model(radon):
    return hier.Model("log_radon ~ floor + (1 + floor | county)", radon)


def frame_hash(frame: pd.DataFrame) -> int:
    """Content hash of a DataFrame, values and labels, to prove callers' data are untouched."""
    return int(pd.util.hash_pandas_object(frame, index=True).sum()) ^ hash(tuple(map(str, frame.columns)))


def python_evaluation():
    """PyTensor with no C compiler: FAST_COMPILE graphs and PyMC's helpers run the ops'
    Python code (one-off checks need no compiled C, which would also look for a BLAS)."""
    return pytensor.config.change_flags(cxx="")
