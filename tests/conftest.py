"""Shared fixtures: each real model is compiled and sampled once per test session."""

import pandas as pd
import pytensor
import pytest

import hierarchical as hier


@pytest.fixture(scope="session")
def sleepstudy() -> pd.DataFrame:
    return hier.datasets.load("sleepstudy")


@pytest.fixture(scope="session")
def radon() -> pd.DataFrame:
    return hier.datasets.load("radon")


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
