"""Marginalised Gaussian group effects: exact likelihood, exact effect draws, same posterior."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hierarchical as hier
from hierarchical import marginal


def simulated(k: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(7), rng.integers(2, 6, 7))
    frame = pd.DataFrame({"g": g, "x1": rng.normal(size=g.size), "x2": rng.normal(size=g.size)})
    frame["y"] = 1 + frame["x1"] + rng.normal(0, 0.7, 7)[g] + rng.normal(size=g.size)
    return frame


@pytest.mark.parametrize("k, expr", [(1, "1"), (2, "1 + x1"), (3, "1 + x1 + x2")])
def test_marginal_loglik_equals_brute_force_multivariate_normal(k, expr):
    """Closed forms (k <= 2) and the Cholesky path (k = 3) against scipy, at random points."""
    import pytensor
    import pytensor.tensor as pt

    model = hier.Model(f"y ~ x1 + ({expr} | g)", simulated(k))
    design, st = model.design, marginal.sufficient_stats(model.design)
    beta_t, L_t, sigma_t = pt.vector("beta"), pt.matrix("L"), pt.scalar("sigma")
    logp = pytensor.function([beta_t, L_t, sigma_t],
                             marginal.marginal_loglik(st, beta_t, L_t, sigma_t, k),
                             mode="FAST_COMPILE")
    rng = np.random.default_rng(k)
    g = design.groups[0]
    for _ in range(5):
        beta = rng.normal(size=design.X.shape[1])
        A = rng.normal(size=(k, k))
        L = np.linalg.cholesky(A @ A.T + 0.1 * np.eye(k))
        sigma = rng.uniform(0.5, 2)
        expected = 0.0
        for j in range(len(g.levels)):
            rows = g.codes == j
            Zj = g.Z[rows]
            cov = sigma ** 2 * np.eye(rows.sum()) + Zj @ L @ L.T @ Zj.T
            expected += stats.multivariate_normal.logpdf(design.y[rows], design.X[rows] @ beta, cov)
        assert logp(beta, L, sigma) == pytest.approx(expected, rel=1e-10, abs=1e-8)


def test_effect_draws_match_the_exact_conditional():
    """Draws for one fixed hyperparameter value: mean and covariance of N(m_j, P_j^-1)."""
    model = hier.Model("y ~ x1 + (1 + x1 | g)", simulated(2, seed=3))
    design, st = model.design, marginal.sufficient_stats(model.design)
    beta, sd, sigma = np.array([1.0, 0.8]), np.array([0.7, 0.3]), 0.9
    R = np.array([[1.0, 0.4], [0.4, 1.0]])
    chol = np.linalg.cholesky(R)
    n = 20000
    posterior = {
        "beta": _draws(np.broadcast_to(beta, (1, n, 2)), ("chain", "draw", "fixed_term")),
        "g_sd": _draws(np.broadcast_to(sd, (1, n, 2)), ("chain", "draw", "g_term")),
        "g_corr_chol": _draws(np.broadcast_to(chol, (1, n, 2, 2)), ("chain", "draw", "a", "b")),
        "sigma": _draws(np.full((1, n), sigma), ("chain", "draw")),
    }
    import xarray as xr

    u = marginal.draw_effects(xr.Dataset(posterior), design, st, np.random.default_rng(0))
    Sigma = np.diag(sd) @ R @ np.diag(sd)
    g = design.groups[0]
    for j in range(len(g.levels)):
        rows = g.codes == j
        Zj, rj = g.Z[rows], design.y[rows] - design.X[rows] @ beta
        precision = np.linalg.inv(Sigma) + Zj.T @ Zj / sigma ** 2
        cov = np.linalg.inv(precision)
        mean = cov @ Zj.T @ rj / sigma ** 2
        draws = u[0, :, j, :]
        se = np.sqrt(np.diag(cov) / n)
        assert np.all(np.abs(draws.mean(axis=0) - mean) < 4.5 * se)
        assert np.allclose(np.cov(draws.T), cov, rtol=0.06, atol=1e-3)


def _draws(values, dims):
    import xarray as xr

    return xr.DataArray(np.ascontiguousarray(values), dims=dims)


def test_marginal_is_automatic_and_switchable(sleepstudy):
    model = hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    assert model.marginalized
    free = {v.name for v in model.pymc_model.free_RVs}
    assert free == {"beta", "Subject_sd", "Subject_corr_chol", "sigma"}
    assert "Subject_effect" in model.full_pymc_model.named_vars
    assert model.parameterisation.loc["Subject", "reason"].startswith("marginalised")
    assert not hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy,
                          marginalize=False).marginalized
    with pytest.raises(hier.exceptions.SpecError, match="one grouping factor"):
        hier.Model("y ~ 1 + (1 | a) + (1 | b)",
                   pd.DataFrame({"y": np.arange(8.0), "a": [0, 1] * 4, "b": [0, 0, 1, 1] * 2}),
                   marginalize=True)


@pytest.mark.slow   # repeats the exact likelihood check above at the cost of a fit
def test_marginal_and_explicit_effects_give_the_same_posterior(sleepstudy, sleepstudy_fit):
    """Every fixed effect, SD, correlation and group effect within 4 combined MCSEs."""
    explicit = hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy,
                          marginalize=False).fit(random_seed=12, progressbar=False)
    assert sleepstudy_fit.model.marginalized
    for table in ("fixed_effects", "variance_components", "group_effects"):
        a, b = getattr(sleepstudy_fit, table)(), getattr(explicit, table)()
        bound = 4 * np.sqrt(a["mcse_mean"] ** 2 + b["mcse_mean"] ** 2)
        assert ((a["mean"] - b["mean"]).abs() < bound).all(), table


def test_prior_predictive_of_a_marginal_model(sleepstudy):
    model = hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    prior = model.prior_predictive(draws=50, random_seed=1)
    assert prior.prior_predictive["Reaction"].shape == (1, 50, 180)
