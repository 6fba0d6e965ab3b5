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
from hierarchical import laplace, laplace_chain, names
from hierarchical.exceptions import SpecError

from .test_marginal import assert_gaussian_draws


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
    Hessian, Newton (halving steps that lower the objective) to 1e-13."""
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
        f, grad, W = terms(a)
        H = (ZL.T @ sp.diags(W) @ ZL).toarray() + np.eye(len(a))
        step = np.linalg.solve(H, grad)
        while terms(a + step)[0] < f - 1e-12 * abs(f):   # f is concave: a shorter step gains
            step = step / 2
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
    check_effect_draws(model(family, formula).sampled_design)


def check_effect_draws(design):
    """20,000 draws at one hyperparameter value: mean and covariance within 4.5 standard
    errors of the mode and of H^-1 (both mapped to u = Lambda a)."""
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
    assert_gaussian_draws(np.hstack([u[g.name][0].reshape(n, -1) for g in design.groups]),
                          mean, cov)


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


@pytest.mark.parametrize("family, formula", [pytest.param(*CASES[0], marks=pytest.mark.slow),
                                             CASES[1]])
def test_weighted_rows_are_repeated_rows(family, formula):
    """Frequency weights 0 / 1 / 2 (cross-validation holds rows out with weight 0) give the
    approximation, and its gradient, of the data with each row repeated that many times.
    (The Poisson case, whose graph takes 33 s to build and compile, in the slow tier.)"""
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

    m = model(*CASES[1])          # crossed, with a slope: the graph, not the chain kernel
    logp = rewrite_graph(m.pymc_model.logp(), include=["canonicalize", "stabilize"])
    stops = [v for v in ancestors([logp]) if v.owner and isinstance(v.owner.op, StopGradient)]
    assert len(stops) == sum(len(g.term_names) for g in m.design.groups)
    with pytest.raises(DisconnectedInputError):
        pytensor.grad(stops[0].sum(), stops[0].owner.inputs[0])


# --- the compiled kernel for nesting chains of random intercepts (laplace_chain.py) -------

def nested_chain(seed: int = 0) -> pd.DataFrame:
    """Three nested factors (c in b in a), a covariate, an exposure, and counts, successes
    of n trials and binary outcomes."""
    rng = np.random.default_rng(seed)
    n = 120
    a = rng.integers(0, 3, n)
    b = a * 3 + rng.integers(0, 3, n)
    c = b * 2 + rng.integers(0, 2, n)
    x = rng.normal(size=n)
    eta = (0.2 + 0.5 * x + rng.normal(0, 0.5, 3)[a] + rng.normal(0, 0.4, 9)[b]
           + rng.normal(0, 0.3, 18)[c])
    frame = pd.DataFrame({"a": a, "b": b, "c": c, "x": x, "n": rng.integers(1, 6, n),
                          "t": rng.uniform(0.5, 2.0, n)})
    p = 1 / (1 + np.exp(-eta))
    return frame.assign(count=rng.poisson(frame["t"] * np.exp(eta)),
                        success=rng.binomial(frame["n"], p), y=rng.binomial(1, p))


CHAINS = [("poisson", "count ~ x + (1 | a) + (1 | b) + (1 | c)"),   # depth 3, an exposure
          ("binomial", "success ~ x + (1 | b) + (1 | a)"),         # depth 2, trials
          ("bernoulli", "y ~ x + (1 | c)")]                         # one factor


def chain_model(family: str, formula: str, frame=None, **options) -> hier.Model:
    frame = nested_chain() if frame is None else frame
    return hier.Model(formula, frame, family=family, marginalize="laplace",
                      trials="n" if family == "binomial" else None,
                      exposure="t" if family == "poisson" else None, **options)


def kernel(design, beta, sds):
    """laplace_chain's value and gradients, the sd gradient in design.groups' order."""
    order = laplace_chain.chain(design)
    value, grad_beta, grad_sd, steps = laplace_chain.laplace_chain(
        design.spec.family == "poisson", beta, np.asarray(sds, dtype=float)[order],
        *laplace_chain.kernel_arguments(design, order))
    assert steps <= laplace_chain.MAX_STEPS
    return value, grad_beta, grad_sd[np.argsort(order)]


def test_chains_are_recognised():
    frame = nested_chain()
    design = chain_model(*CHAINS[0], frame).design
    names = [g.name for g in design.groups]
    assert [names[i] for i in laplace_chain.chain(design)] == ["c", "b", "a"]
    for formula in ["count ~ x + (1 | a) + (1 | x2)",            # crossed
                    "count ~ x + (x | a) + (1 | b)",              # a slope
                    "count ~ x + (1 | a) + (1 | b) + (1 | b2)"]:  # two factors nested in a
        other = frame.assign(x2=np.arange(len(frame)) % 4, b2=frame["a"] * 2 + frame["c"] % 2)
        assert laplace_chain.chain(chain_model("poisson", formula, other).design) is None


@pytest.mark.parametrize("family, formula", CHAINS)
def test_the_chain_kernel_equals_the_dense_approximation_and_its_gradient(family, formula):
    """The kernel's value against the dense approximation (Newton on the full Hessian) to
    1e-9, and its closed-form gradient against central differences of the dense one, at
    three points (one far out, where NUTS's warm-up starts and full steps overshoot)."""
    design = chain_model(family, formula, aggregate_rows=False).design
    rng = np.random.default_rng(3)
    h = 1e-6
    for scale in (0.3, 0.6, 1.5):
        beta = rng.normal(0, scale, design.X.shape[1])
        sds = rng.uniform(0.2, 1.0, len(design.groups)) * scale * 2

        def dense(beta, sds):
            return dense_laplace(design, beta, [np.array([[sd]]) for sd in sds])

        value, grad_beta, grad_sd = kernel(design, beta, sds)
        assert value == pytest.approx(dense(beta, sds), rel=1e-9)
        for j, e in enumerate(np.eye(len(beta)) * h):
            fd = (dense(beta + e, sds) - dense(beta - e, sds)) / (2 * h)
            assert grad_beta[j] == pytest.approx(fd, rel=1e-5, abs=1e-6)
        for j, e in enumerate(np.eye(len(sds)) * h):
            fd = (dense(beta, sds + e) - dense(beta, sds - e)) / (2 * h)
            assert grad_sd[j] == pytest.approx(fd, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("family, formula", CHAINS)
def test_the_chain_kernel_returns_a_number_where_an_sd_or_beta_overflows(family, formula):
    """Far out in the warm-up an SD underflows to 0 or overflows to inf (exp of a log SD) and
    the linear predictor overflows: the kernel must return a value NUTS can reject (inf or
    NaN), not raise. Compiled with Python's error model it raised ZeroDivisionError from
    the sampler's thread, which killed the whole fit (grouseticks, 1 seed in 3 at
    target_accept 0.8)."""
    design = chain_model(family, formula, aggregate_rows=False).design
    order = laplace_chain.chain(design)
    arguments = laplace_chain.kernel_arguments(design, order)
    beta, sds = np.full(design.X.shape[1], 0.1), np.full(len(design.groups), 0.5)
    points = [(beta, np.where(np.arange(len(sds)) == j, extreme, sds))
              for extreme in (0.0, np.inf) for j in range(len(sds))]
    points += [(np.where(np.arange(len(beta)) == j, 800.0, beta), sds) for j in range(len(beta))]
    for b, s in points:
        value, grad_beta, grad_sd, _ = laplace_chain.laplace_chain(
            family == "poisson", b, s, *arguments)     # the steps may run out: no assert
        assert np.ndim(value) == 0 and grad_sd.shape == sds.shape, (b, s)


def test_the_chain_kernels_effect_draws_follow_the_approximations_gaussian():
    check_effect_draws(chain_model(*CHAINS[0], aggregate_rows=False).design)


@pytest.mark.parametrize("family, formula", CHAINS[:2])
def test_the_chain_kernel_takes_weighted_rows_as_repeated_rows(family, formula):
    frame = nested_chain()
    weights = np.random.default_rng(1).integers(0, 3, len(frame)).astype(float)
    weights[frame.groupby("c").head(1).index] = 1.0          # every level keeps a row
    weighted = chain_model(family, formula, frame.assign(w=weights), weights="w",
                           aggregate_rows=False).design
    repeated = chain_model(family, formula, frame.loc[frame.index.repeat(weights.astype(int))],
                           aggregate_rows=False).design
    beta, sds = np.array([0.1, 0.4]), np.linspace(0.3, 0.8, len(weighted.groups))
    for got, want in zip(kernel(weighted, beta, sds), kernel(repeated, beta, sds)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_a_chain_model_runs_the_kernel_with_the_graphs_value_and_gradient():
    """The model's log density and gradient (priors included) through the kernel's Op equal
    those of the PyTensor graph of the approximation, at two points."""
    import pytensor

    m = chain_model(*CHAINS[0])
    graph = laplace.build_laplace_model(m.sampled_design, m.prior_entries, m._stats,
                                        kernel=False)
    ops = {type(node.op).__name__ for node in pytensor.graph.traversal.applys_between(
        m.pymc_model.value_vars, [m.pymc_model.logp()])}
    assert "LaplaceChain" in ops

    def function(model):
        logp = model.logp()
        return pytensor.function(model.value_vars, [logp, *pytensor.grad(logp, model.value_vars)],
                                 mode="FAST_COMPILE")

    ours, theirs = function(m.pymc_model), function(graph)
    point = m.pymc_model.initial_point()
    values = [point[v.name] for v in m.pymc_model.value_vars]
    for shift in (0.0, 0.4):
        moved = [v + shift for v in values]
        for got, want in zip(ours(*moved), theirs(*moved)):
            np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8)


@pytest.mark.integration
@pytest.mark.parametrize("sampler", ["nutpie", "pymc",
                                     pytest.param("numpyro", marks=pytest.mark.interop)])
def test_a_chain_model_samples_with_every_back_end(sampler):
    """PyMC's NUTS runs the kernel's Op as nutpie does; numpyro (JAX cannot call it) takes
    the graph. A short run: every SD drawn, finite and positive, and the effects drawn."""
    m = chain_model(*CHAINS[1])
    fit = m.fit(draws=100, tune=100, chains=1, sampler=sampler, random_seed=1,
                progressbar=False, warn=False)
    for g in ("a", "b"):
        sd = fit.posterior[names.sd(g)].values
        assert np.isfinite(sd).all() and (sd > 0).all() and sd.std() > 0
        assert np.isfinite(fit.posterior[names.effect(g)].values).all()


def test_the_kernels_cache_key_follows_its_source(monkeypatch):
    """PyTensor's disk cache keys a graph by its Ops' props, and numba's cache of the
    graph's function misses a change in the kernel it calls: a graph compiled with an earlier
    kernel kept running it (other draws than a fresh cache gave, same seed). The key holds a
    hash of the kernel's source."""
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

    design = chain_model(*CHAINS[2]).sampled_design
    op = laplace_chain.LaplaceChain(False)
    node = op.make_node(np.zeros(design.X.shape[1]), np.ones(1), design.y, design.y, design.y,
                        design.y, design.X, np.arange(design.n), np.arange(2),
                        -np.ones((1, 1), dtype=int), np.arange(2))
    key = numba_funcify_and_cache_key(op, node)[1]
    monkeypatch.setattr(laplace_chain, "SOURCE_KEY", laplace_chain.SOURCE_KEY + 1)
    assert numba_funcify_and_cache_key(op, node)[1] != key
