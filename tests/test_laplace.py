"""The embedded Laplace approximation (``marginalize="laplace"``): its value and gradient
against a dense implementation (Newton on the full Hessian, numpy), its effect draws against
the approximation's Gaussian, and how a model asks for it."""

import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xarray as xr
from scipy.linalg import block_diag

import hierarchical as hier
from hierarchical import laplace
from hierarchical.exceptions import SpecError


def simulated(family: str, seed: int = 0) -> pd.DataFrame:
    """Nested (b in a) and crossed (c) factors, a covariate, and counts or successes."""
    rng = np.random.default_rng(seed)
    n = 90
    a = rng.integers(0, 3, n)
    frame = pd.DataFrame({"a": a, "b": a * 3 + rng.integers(0, 3, n), "c": rng.integers(0, 4, n),
                          "x": rng.normal(size=n), "n": rng.integers(1, 6, n)})
    eta = 0.3 + 0.5 * frame["x"] + rng.normal(0, 0.5, 3)[a] + rng.normal(0, 0.5, 4)[frame["c"]]
    if family == "poisson":
        frame["y"] = rng.poisson(np.exp(eta))
    elif family == "binomial":
        frame["y"] = rng.binomial(frame["n"], 1 / (1 + np.exp(-eta)))
    else:
        frame["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return frame


CASES = [("poisson", "y ~ x + (x | a) + (1 | b) + (1 | c)"),    # nested, crossed, a slope
         ("binomial", "y ~ x + (1 | b) + (x | c)"),             # crossed, dense on c
         ("bernoulli", "y ~ x + (1 | a) + (1 | b)")]            # nested only


def model(family: str, formula: str) -> hier.Model:
    trials = "n" if family == "binomial" else None
    return hier.Model(formula, simulated(family), family=family, trials=trials,
                      marginalize="laplace")


def dense_parts(design, beta, Ls):
    """Z Lambda as a sparse matrix, and the fixed part of eta."""
    blocks = []
    for g, L in zip(design.groups, Ls):
        k = g.Z.shape[1]
        Z = np.zeros((design.n, len(g.levels) * k))
        for t in range(k):
            Z[np.arange(design.n), g.codes * k + t] = g.Z[:, t]
        blocks.append(Z @ np.kron(np.eye(len(g.levels)), L))
    return sp.csr_matrix(np.hstack(blocks)), design.X @ beta + (
        0 if design.offset is None else design.offset)


def dense_mode(design, beta, Ls):
    """The mode a* (whitened), H at a* and log p(y | a*) - |a*|^2 / 2, from the full
    Hessian, Newton to 1e-13."""
    ZL, eta_fixed = dense_parts(design, beta, Ls)
    y = design.y
    trials = 1.0 if design.trials is None else design.trials
    poisson = design.spec.family == "poisson"

    def terms(a):
        eta = eta_fixed + ZL @ a
        if poisson:
            mu = np.exp(eta)
            return (y * eta - mu).sum() - a @ a / 2, ZL.T @ (y - mu) - a, mu
        p = 1 / (1 + np.exp(-eta))
        return ((y * eta - trials * np.logaddexp(0, eta)).sum() - a @ a / 2,
                ZL.T @ (y - trials * p) - a, trials * p * (1 - p))

    a = np.zeros(ZL.shape[1])
    for _ in range(100):
        _, grad, W = terms(a)
        H = (ZL.T @ sp.diags(W) @ ZL).toarray() + np.eye(len(a))
        step = np.linalg.solve(H, grad)
        a = a + step
        if np.abs(step).max() < 1e-13:
            break
    value, _, W = terms(a)
    return a, (ZL.T @ sp.diags(W) @ ZL).toarray() + np.eye(len(a)), value


def dense_laplace(design, beta, Ls) -> float:
    """log p(y | a*) - |a*|^2 / 2 - log det H / 2."""
    _, H, value = dense_mode(design, beta, Ls)
    return value - np.linalg.slogdet(H)[1] / 2


def loglik_and_gradient(design):
    """The graph's approximation and its gradient as functions of (beta, L_1, ...)."""
    import pytensor
    import pytensor.tensor as pt

    st = laplace.structure(design)
    beta_t = pt.vector("beta")
    Ls_t = [pt.matrix(f"L{i}") for i in range(len(design.groups))]
    value = laplace.laplace_loglik(st, laplace.numpy_rows(design, st), beta_t, Ls_t,
                                   design.spec.family)
    return pytensor.function([beta_t, *Ls_t], [value, *pytensor.grad(value, [beta_t, *Ls_t])],
                             mode="FAST_COMPILE")


def random_point(design, rng):
    beta = rng.normal(0, 0.5, size=design.X.shape[1])
    Ls = [np.tril(np.linalg.cholesky(A @ A.T + 0.1 * np.eye(len(A))))
          for A in (rng.normal(0, 0.5, size=(len(g.term_names),) * 2) for g in design.groups)]
    return beta, Ls


@pytest.mark.parametrize("family, formula", CASES)
def test_laplace_equals_the_dense_approximation_and_its_gradient(family, formula):
    """Value to 1e-10 at a random point, and the implicit gradient (one differentiable
    Newton step from the mode) against central differences of the dense approximation,
    in beta and in every entry of every L."""
    design = model(family, formula).sampled_design
    f = loglik_and_gradient(design)
    beta, Ls = random_point(design, np.random.default_rng(4))
    value, *grads = f(beta, *Ls)
    assert value == pytest.approx(dense_laplace(design, beta, Ls), rel=1e-10)
    h = 1e-6
    for j in range(len(beta)):
        e = np.eye(len(beta))[j] * h
        fd = (dense_laplace(design, beta + e, Ls) - dense_laplace(design, beta - e, Ls)) / (2 * h)
        assert grads[0][j] == pytest.approx(fd, rel=1e-5, abs=1e-6)
    for i, L in enumerate(Ls):
        for r, c in zip(*np.tril_indices(len(L))):
            E = np.zeros_like(L)
            E[r, c] = h
            up = [M + E if m == i else M for m, M in enumerate(Ls)]
            down = [M - E if m == i else M for m, M in enumerate(Ls)]
            fd = (dense_laplace(design, beta, up) - dense_laplace(design, beta, down)) / (2 * h)
            assert grads[1 + i][r, c] == pytest.approx(fd, rel=1e-5, abs=1e-6)


def _draws(value, dims):
    return xr.DataArray(value, dims=dims)


# the draws after the mode do not depend on the family; the Poisson case (nested, with a
# correlated slope) is in the slow tier to keep the default run within 10 minutes
@pytest.mark.parametrize("family, formula", [pytest.param(*CASES[0], marks=pytest.mark.slow),
                                             CASES[1]])
def test_effect_draws_follow_the_approximations_gaussian(family, formula):
    """20,000 draws at one hyperparameter value: mean within 4.5 standard errors of the
    mode, covariance within 0.01 of H^-1 (both mapped to u = Lambda a)."""
    design = model(family, formula).sampled_design
    n = 20000
    rng = np.random.default_rng(2)
    beta, Ls = random_point(design, rng)
    posterior = {"beta": _draws(np.broadcast_to(beta, (1, n, len(beta))),
                                ("chain", "draw", "fixed_term"))}
    for g, L in zip(design.groups, Ls):
        k = len(g.term_names)
        sd = np.sqrt(np.diag(L @ L.T))
        posterior[f"{g.name}_sd"] = _draws(np.broadcast_to(sd, (1, n, k)),
                                           ("chain", "draw", f"{g.name}_term"))
        if k > 1:
            posterior[f"{g.name}_corr_chol"] = _draws(np.broadcast_to(L / sd[:, None], (1, n, k, k)),
                                                      ("chain", "draw", "r", "c"))
    st = laplace.structure(design)
    u = laplace.draw_effects(xr.Dataset(posterior), design, st, np.random.default_rng(0))
    a, H, _ = dense_mode(design, beta, Ls)
    blockdiag = block_diag(*[np.kron(np.eye(len(g.levels)), L) for g, L in zip(design.groups, Ls)])
    mean = blockdiag @ a
    cov = blockdiag @ np.linalg.inv(H) @ blockdiag.T
    draws = np.hstack([u[g.name][0].reshape(n, -1) for g in design.groups])
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 4.5 * np.sqrt(np.diag(cov) / n))
    assert np.abs(np.cov(draws.T) - cov).max() < 0.01


def test_laplace_is_asked_for_and_refused_with_the_reason():
    frame = simulated("poisson")
    m = hier.Model("y ~ x + (1 | a) + (1 | b)", frame, family="poisson", marginalize="laplace")
    assert m.marginalized and m.integration == "laplace"
    assert m.options["marginalize"] == "laplace"
    assert m.parameterisation["reason"].str.contains("Laplace").all()
    assert [v.name for v in m.pymc_model.free_RVs] == ["beta", "a_sd", "b_sd"]
    assert hier.Model("y ~ x + (1 | a) + (1 | b)", frame, family="poisson",
                      marginalize=False).integration is None
    with pytest.raises(SpecError, match="Laplace.*Poisson.*not gaussian"):
        hier.Model("x ~ 1 + (1 | a)", frame, marginalize="laplace")
    with pytest.raises(SpecError, match="marginalize must be.*'laplace'"):
        hier.Model("y ~ x + (1 | a)", frame, family="poisson", marginalize="lapalce")


@pytest.mark.parametrize("family, formula", CASES[:2])
def test_weighted_rows_are_repeated_rows(family, formula):
    """Frequency weights 0 / 1 / 2 (cross-validation holds rows out with weight 0) give the
    approximation, and its gradient, of the data with each row repeated that many times."""
    frame = simulated(family)
    weights = np.random.default_rng(1).integers(0, 3, len(frame)).astype(float)
    for g in "abc":                                   # every level keeps a row
        weights[frame.groupby(g).head(1).index] = 1.0
    trials = "n" if family == "binomial" else None
    options = dict(family=family, trials=trials, marginalize="laplace", aggregate_rows=False)
    weighted = hier.Model(formula, frame.assign(w=weights), weights="w", **options).design
    repeated = hier.Model(formula, frame.loc[frame.index.repeat(weights.astype(int))],
                          **options).design
    beta, Ls = random_point(weighted, np.random.default_rng(2))
    ours = loglik_and_gradient(weighted)(beta, *Ls)
    expected = loglik_and_gradient(repeated)(beta, *Ls)
    for got, want in zip(ours, expected):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_auto_takes_laplace_for_nested_factors_where_it_is_accurate():
    poisson, binomial = simulated("poisson"), simulated("binomial")
    nested = hier.Model("y ~ x + (1 | a) + (1 | b)", poisson, family="poisson")
    assert nested.integration == "laplace"
    assert nested.parameterisation["reason"].str.contains("chosen for nested factors").all()
    assert hier.Model("y ~ x + (1 | a) + (1 | b)", binomial, family="binomial",
                      trials="n").integration == "laplace"      # about 30 trials per b level
    # one factor, or crossed factors: sampled
    assert hier.Model("y ~ x + (1 | a)", poisson, family="poisson").integration is None
    crossed = hier.Model("y ~ x + (1 | b) + (1 | c)", poisson, family="poisson")
    assert crossed.integration is None
    assert "not nested" in laplace.automatic(crossed.design)
    # binary data with small clusters: about 5 rows per level of b
    small = hier.Model("y ~ x + (1 | a) + (1 | b)", simulated("bernoulli").iloc[:45],
                       family="bernoulli")
    assert small.integration is None
    assert re.search(r"'b' has a median of [3-7] trials per level",
                     laplace.automatic(small.design))
    # Poisson counts too small: an observation-level factor of counts with a median under 2
    rows = hier.Model("y ~ x + (1 | a) + (1 | row)", poisson.assign(row=range(len(poisson))),
                      family="poisson")
    assert float(np.median(poisson["y"])) < laplace.MIN_COUNT_PER_LEVEL
    assert rows.integration is None
    assert "'row' has a median of" in laplace.automatic(rows.design)
    # Gaussian models stay exact
    assert hier.Model("x ~ 1 + (1 | a) + (1 | b)", poisson).integration == "exact"


def test_the_gradient_stops_at_the_newton_iterations_after_the_samplers_rewrites():
    """nutpie and our callback route rewrite the log density (canonicalize, stabilize)
    before differentiating it; PyTensor's disconnected_grad does not survive that, and the
    gradient then ran back through every Newton step (more than 20 GB to compile with the
    line search). The stops must still be there, one per effect vector, and disconnect."""
    import pytensor
    from pytensor.gradient import DisconnectedInputError
    from pytensor.graph import rewrite_graph
    from pytensor.graph.traversal import ancestors

    from hierarchical.stop_gradient import StopGradient

    m = model(*CASES[2])
    logp = rewrite_graph(m.pymc_model.logp(), include=["canonicalize", "stabilize"])
    stops = [v for v in ancestors([logp]) if v.owner and isinstance(v.owner.op, StopGradient)]
    assert len(stops) == len(m.design.groups)
    with pytest.raises(DisconnectedInputError):
        pytensor.grad(stops[0].sum(), stops[0].owner.inputs[0])
