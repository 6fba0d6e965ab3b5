"""Aggregating binomial / Poisson rows with one covariate pattern: fewer rows, same posterior."""

import numpy as np
import pandas as pd
import pytest

import hierarchical as hier

from .conftest import python_evaluation


def contraception() -> pd.DataFrame:
    data = hier.datasets.load("contraception")
    return data.assign(use01=(data["use"] == "Y").astype(int))


def logp_at(model: hier.Model, point: dict) -> float:
    with python_evaluation():
        return float(model.pymc_model.compile_logp(mode="FAST_COMPILE")(point))


@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
def test_aggregated_logp_differs_only_by_a_constant(family):
    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame({"a": rng.integers(0, 3, n).astype(str), "g": rng.integers(0, 8, n),
                          "t": rng.choice([1.0, 2.0], n)})
    frame["y"] = rng.binomial(1, 0.3, n) if family == "bernoulli" else rng.poisson(2 * frame["t"])
    extra = {} if family == "bernoulli" else {"exposure": "t"}
    kwargs = dict(family=family, centered=False, **extra)
    summed = hier.Model("y ~ a + (1 | g)", frame, **kwargs)
    rows = hier.Model("y ~ a + (1 | g)", frame, aggregate_rows=False, **kwargs)
    assert summed.sampled_design.n < 60 < rows.sampled_design.n == n
    differences = []
    for seed in range(3):
        point = {k: v + np.random.default_rng(seed).normal(0, 0.3, np.shape(v))
                 for k, v in rows.pymc_model.initial_point().items()}
        differences.append(logp_at(summed, point) - logp_at(rows, point))
    assert np.ptp(differences) < 1e-8


@pytest.mark.slow   # repeats the exact logp check above at the cost of two fits
def test_contraception_same_posterior_with_fewer_rows():
    data = contraception()
    kwargs = dict(family="bernoulli")
    summed = hier.Model("use01 ~ urban + livch + (1 | district)", data, **kwargs)
    rows = hier.Model("use01 ~ urban + livch + (1 | district)", data, aggregate_rows=False, **kwargs)
    assert summed.sampled_design.n == 357 and rows.sampled_design.n == 1934
    a = summed.fit(random_seed=1, progressbar=False)
    b = rows.fit(random_seed=2, progressbar=False)
    for table in ("fixed_effects", "variance_components"):
        x, y = getattr(a, table)(), getattr(b, table)()
        bound = 4 * np.sqrt(x["mcse_mean"] ** 2 + y["mcse_mean"] ** 2)
        assert ((x["mean"] - y["mean"]).abs() < bound).all(), table
    # LOO and observed data stay on the user's rows
    assert a.idata.log_likelihood["use01"].shape[-1] == 1934
    assert a.idata.observed_data["use01"].shape == (1934,)
    assert abs(a.loo().elpd - b.loo().elpd) < 2
