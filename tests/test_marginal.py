"""Marginalised Gaussian group effects: exact likelihood, exact effect draws, same posterior.

One factor here; nested and crossed designs (the lme4 bank) in ``test_lme4_bank.py``, and
simulated designs with slopes on several factors below."""

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


def assert_gaussian_draws(draws, mean, cov):
    """draws (n, d) against N(mean, cov): every mean within 4.5 of its Monte Carlo standard
    error and every covariance within 5 of its (a sample covariance's: sqrt((S_ii S_jj +
    S_ij^2) / n)); a fixed absolute tolerance was within 1.2 standard errors for the largest
    variances, and failed when the draws' random stream changed."""
    n = len(draws)
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 4.5 * np.sqrt(np.diag(cov) / n))
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / n)
    assert np.all(np.abs(np.cov(draws.T) - cov) < 5 * se)


@pytest.mark.parametrize("k, expr", [(1, "1"), (2, "1 + x1"), (3, "1 + x1 + x2")])
def test_marginal_loglik_equals_brute_force_multivariate_normal(k, expr):
    """Closed forms (k <= 2) and the Cholesky path (k = 3) against scipy, at random points."""
    import pytensor
    import pytensor.tensor as pt

    model = hier.Model(f"y ~ x1 + ({expr} | g)", simulated(k))
    design, st = model.design, marginal.sufficient_stats(model.design)
    beta_t, L_t, sigma_t = pt.vector("beta"), pt.matrix("L"), pt.scalar("sigma")
    logp = pytensor.function([beta_t, L_t, sigma_t],
                             marginal.marginal_loglik(st, beta_t, [L_t], sigma_t),
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

    u = marginal.draw_effects(xr.Dataset(posterior), design, st, np.random.default_rng(0))["g"]
    Sigma = np.diag(sd) @ R @ np.diag(sd)
    g = design.groups[0]
    for j in range(len(g.levels)):
        rows = g.codes == j
        Zj, rj = g.Z[rows], design.y[rows] - design.X[rows] @ beta
        precision = np.linalg.inv(Sigma) + Zj.T @ Zj / sigma ** 2
        cov = np.linalg.inv(precision)
        mean = cov @ Zj.T @ rj / sigma ** 2
        assert_gaussian_draws(u[0, :, j, :], mean, cov)


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
    with pytest.raises(hier.exceptions.SpecError, match="the family is 'poisson'"):
        hier.Model("y ~ 1 + (1 | a) + (1 | b)",
                   pd.DataFrame({"y": np.arange(8.0), "a": [0, 1] * 4, "b": [0, 0, 1, 1] * 2}),
                   family="poisson", marginalize=True)


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


def several_factors(seed: int = 1) -> pd.DataFrame:
    """a nests b; c is crossed with both; x varies within every level."""
    rng = np.random.default_rng(seed)
    n = 90
    a = rng.integers(0, 3, n)
    frame = pd.DataFrame({"a": a, "b": a * 3 + rng.integers(0, 3, n), "c": rng.integers(0, 4, n),
                          "x": rng.normal(size=n)})
    frame["y"] = rng.normal(size=n) + 0.3 * a + frame["x"]
    return frame


def _dense_covariance(design, Ls, sigma):
    Zs, blocks = [], []
    for g, L in zip(design.groups, Ls):
        k = g.Z.shape[1]
        Z = np.zeros((design.n, len(g.levels) * k))
        for t in range(k):
            Z[np.arange(design.n), g.codes * k + t] = g.Z[:, t]
        Zs.append(Z)
        blocks.append(np.kron(np.eye(len(g.levels)), L @ L.T))
    from scipy.linalg import block_diag

    return np.hstack(Zs), block_diag(*blocks)


FORMULAS = ["y ~ x + (x | a) + (1 | b) + (1 | c)",   # nested, crossed, a slope
            "y ~ x + (1 | b) + (x | c)",             # crossed, dense on c (8 effects)
            "y ~ x + (x || b) + (x | c)"]


def marginal_loglik_function(design):
    """The marginal log likelihood of ``design`` as a function of (beta, L_1, ..., sigma)."""
    import pytensor
    import pytensor.tensor as pt

    st = marginal.sufficient_stats(design)
    beta_t, sigma_t = pt.vector("beta"), pt.scalar("sigma")
    Ls_t = [pt.matrix(f"L{i}") for i in range(len(design.groups))]
    return pytensor.function([beta_t, *Ls_t, sigma_t],
                             marginal.marginal_loglik(st, beta_t, Ls_t, sigma_t),
                             mode="FAST_COMPILE")


def dense_loglik(design, beta, Ls, sigma) -> float:
    """The same from the n x n covariance sigma^2 I + Z Sigma Z'."""
    Z, Sigma = _dense_covariance(design, Ls, sigma)
    cov = sigma ** 2 * np.eye(design.n) + Z @ Sigma @ Z.T
    return stats.multivariate_normal.logpdf(design.y, design.X @ beta, cov)


@pytest.mark.parametrize("formula", FORMULAS)
def test_several_factors_likelihood_equals_the_dense_multivariate_normal(formula):
    design = hier.Model(formula, several_factors()).design
    logp = marginal_loglik_function(design)
    rng = np.random.default_rng(5)
    for _ in range(3):
        beta, sigma = rng.normal(size=2), rng.uniform(0.5, 2)
        Ls = [np.linalg.cholesky(A @ A.T + 0.1 * np.eye(len(A)))
              for A in (rng.normal(size=(len(g.term_names),) * 2) for g in design.groups)]
        assert logp(beta, *Ls, sigma) == pytest.approx(dense_loglik(design, beta, Ls, sigma),
                                                       rel=1e-10)


def _fixed_covariances(design, posterior: dict, n: int, rng) -> list[np.ndarray]:
    """Each factor's SDs (and correlation 0.5) held at one random value for n draws, added
    to ``posterior``; returns the factors L_g."""
    Ls = []
    for g in design.groups:
        k = len(g.term_names)
        sd = rng.uniform(0.3, 1.2, k)
        posterior[f"{g.name}_sd"] = _draws(np.broadcast_to(sd, (1, n, k)), ("chain", "draw", f"{g.name}_term"))
        chol = np.linalg.cholesky(np.array([[1.0, 0.5], [0.5, 1.0]])) if k == 2 else np.eye(1)
        if k == 2:
            posterior[f"{g.name}_corr_chol"] = _draws(np.broadcast_to(chol, (1, n, 2, 2)),
                                                      ("chain", "draw", "r", "c"))
        Ls.append(np.diag(sd) @ chol)
    return Ls


@pytest.mark.parametrize("formula", FORMULAS[:2])
def test_several_factors_effect_draws_match_the_exact_joint_conditional(formula):
    """20,000 draws at one hyperparameter value: every effect's mean and the whole covariance
    (across factors) against the exact one (`assert_gaussian_draws`)."""
    import xarray as xr

    design = hier.Model(formula, several_factors()).design
    st = marginal.sufficient_stats(design)
    n, beta, sigma = 20000, np.array([0.5, 1.0]), 0.8
    rng = np.random.default_rng(2)
    posterior = {"beta": _draws(np.broadcast_to(beta, (1, n, 2)), ("chain", "draw", "fixed_term")),
                 "sigma": _draws(np.full((1, n), sigma), ("chain", "draw"))}
    Ls = _fixed_covariances(design, posterior, n, rng)
    u = marginal.draw_effects(xr.Dataset(posterior), design, st, np.random.default_rng(0))
    Z, Sigma = _dense_covariance(design, Ls, sigma)
    precision = np.linalg.inv(Sigma) + Z.T @ Z / sigma ** 2
    cov = np.linalg.inv(precision)
    mean = cov @ Z.T @ (design.y - design.X @ beta) / sigma ** 2
    assert_gaussian_draws(np.hstack([u[g.name][0].reshape(n, -1) for g in design.groups]),
                          mean, cov)


@pytest.mark.parametrize("formula", FORMULAS[:2])
def test_weighted_rows_are_repeated_rows(formula):
    """Frequency weights 0, 1 and 2 in the marginal likelihood: a row weighted 2 is that
    row twice and a row weighted 0 is no row (cross-validation folds), against the dense
    multivariate normal of the data so repeated. The weighted design keeps the full data's
    structure (level pairs, slots), so every fold shares one compiled graph."""
    frame = several_factors()
    frame["w"] = np.arange(len(frame)) % 3 * 1.0
    weighted = hier.Model(formula, frame, weights="w").design
    repeated = frame.loc[frame.index.repeat(frame["w"].astype(int))].reset_index(drop=True)
    dense = hier.Model(formula, repeated).design
    assert all(len(g.levels) == len(h.levels) for g, h in zip(weighted.groups, dense.groups))
    logp = marginal_loglik_function(weighted)
    rng = np.random.default_rng(3)
    beta, sigma = rng.normal(size=2), 0.9
    Ls = [np.linalg.cholesky(A @ A.T + 0.1 * np.eye(len(A)))
          for A in (rng.normal(size=(len(g.term_names),) * 2) for g in weighted.groups)]
    assert logp(beta, *Ls, sigma) == pytest.approx(dense_loglik(dense, beta, Ls, sigma), rel=1e-10)
    full = marginal.sufficient_stats(hier.Model(formula, frame).design)
    held_out = marginal.sufficient_stats(weighted)
    assert held_out.layout.size == full.layout.size
    for pair, pairs in full.within.items():
        assert np.array_equal(held_out.within[pair].row, pairs.row)


# --- beta integrated out with the effects (several factors, Normal priors) -----------------

INTEGRATED = [*FORMULAS, "y ~ x + x2 + x3 + (1 | b) + (1 | c)"]   # the last: P 4 x 4


def with_more_columns(seed: int = 1) -> pd.DataFrame:
    frame = several_factors(seed)
    rng = np.random.default_rng(seed + 10)
    frame["x2"], frame["x3"] = rng.normal(size=len(frame)), rng.uniform(size=len(frame))
    return frame


def integrated_loglik_function(design):
    """log p(y | L_1, ..., sigma) with beta ~ N(mu, diag(tau^2)) integrated out, as a
    function of (mu, tau, L_1, ..., sigma)."""
    import pytensor
    import pytensor.tensor as pt

    st = marginal.sufficient_stats(design)
    p = design.X.shape[1]
    mu_t, tau_t = pt.tensor("mu", shape=(p,)), pt.tensor("tau", shape=(p,))
    sigma_t = pt.scalar("sigma")
    Ls_t = [pt.matrix(f"L{i}") for i in range(len(design.groups))]
    out = marginal.integrated_loglik(st, mu_t, tau_t, Ls_t, sigma_t)
    return pytensor.function([mu_t, tau_t, *Ls_t, sigma_t], [out, pt.grad(out, sigma_t)],
                             mode="FAST_COMPILE")


def random_factors(design, rng):
    return [np.linalg.cholesky(A @ A.T + 0.1 * np.eye(len(A)))
            for A in (rng.normal(size=(len(g.term_names),) * 2) for g in design.groups)]


@pytest.mark.parametrize("formula", INTEGRATED)
def test_integrated_fixed_effects_likelihood_equals_the_dense_multivariate_normal(formula):
    """y ~ N(X mu, sigma^2 I + Z Sigma Z' + X D X'): the Gaussian integral over beta, and
    its gradient in sigma against central differences. (Python backend: a cold numba
    compile of each graph took 40 s; ``test_spd`` checks the numba kernel against Python.)"""
    design = hier.Model(formula, with_more_columns()).design
    rng = np.random.default_rng(7)
    p = design.X.shape[1]
    f = integrated_loglik_function(design)
    for _ in range(2):
        mu, tau, sigma = rng.normal(size=p), rng.uniform(0.5, 3, p), rng.uniform(0.5, 2)
        Ls = random_factors(design, rng)
        Z, Sigma = _dense_covariance(design, Ls, sigma)
        cov = sigma ** 2 * np.eye(design.n) + Z @ Sigma @ Z.T + design.X @ np.diag(tau ** 2) @ design.X.T
        value, gradient = f(mu, tau, *Ls, sigma)
        assert value == pytest.approx(stats.multivariate_normal.logpdf(design.y, design.X @ mu, cov),
                                      rel=1e-10)
        h = 1e-5
        central = (f(mu, tau, *Ls, sigma + h)[0] - f(mu, tau, *Ls, sigma - h)[0]) / (2 * h)
        assert gradient == pytest.approx(central, rel=1e-6)


@pytest.mark.parametrize("formula", [FORMULAS[0], INTEGRATED[-1]])
def test_integrated_fixed_effect_and_effect_draws_match_the_exact_conditional(formula):
    """20,000 draws at one hyperparameter value, beta not in the posterior: beta's and the
    effects' means and covariances against N(beta, u | y, Sigma, sigma) with beta's Normal
    prior (`assert_gaussian_draws`)."""
    import xarray as xr

    model = hier.Model(formula, with_more_columns())
    design = model.design
    assert model.integrated_fixed
    st = marginal.sufficient_stats(design)
    mu, tau = marginal.fixed_prior(design, model.prior_entries)
    n, sigma = 20000, 0.8
    rng = np.random.default_rng(4)
    posterior = {"sigma": _draws(np.full((1, n), sigma), ("chain", "draw"))}
    Ls = _fixed_covariances(design, posterior, n, rng)
    drawn = marginal.draw_effects(xr.Dataset(posterior), design, st, np.random.default_rng(0),
                                  model.prior_entries)
    Z, Sigma = _dense_covariance(design, Ls, sigma)
    W = np.hstack([design.X, Z])                         # (beta, u) jointly
    prior_cov = np.diag(np.concatenate([tau ** 2, np.diag(Sigma)]))
    prior_cov[len(tau):, len(tau):] = Sigma
    precision = np.linalg.inv(prior_cov) + W.T @ W / sigma ** 2
    cov = np.linalg.inv(precision)
    prior_mean = np.concatenate([mu, np.zeros(Z.shape[1])])
    mean = cov @ (np.linalg.solve(prior_cov, prior_mean) + W.T @ design.y / sigma ** 2)
    assert_gaussian_draws(np.hstack([drawn["beta"][0]] + [drawn[g.name][0].reshape(n, -1)
                                                         for g in design.groups]), mean, cov)


def test_beta_integrates_out_with_several_factors_and_normal_priors_only(sleepstudy):
    frame = with_more_columns()
    free = lambda m: {v.name for v in m.pymc_model.free_RVs}   # noqa: E731
    several = hier.Model("y ~ x + (1 | b) + (1 | c)", frame)
    assert several.integrated_fixed and "beta" not in free(several)
    t_prior = several.with_priors({"x": hier.Prior("StudentT", nu=3, mu=0, sigma=1)})
    assert not t_prior.integrated_fixed and {"beta[Intercept]", "beta[x]"} <= free(t_prior)
    normal = several.with_priors({"x": hier.Prior("Normal", mu=0.5, sigma=2.0)})
    assert normal.integrated_fixed
    assert marginal.fixed_prior(normal.design, normal.prior_entries)[1][1] == 2.0
    assert not several.with_priors({"x": hier.Prior("Normal", sigma=2.0)}).integrated_fixed
    assert not hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy).integrated_fixed
    assert hier.sensitivity.scaled_priors(several)[0] == "beta"


def test_effect_draws_do_not_depend_on_how_many_threads_draw_them(monkeypatch):
    """Blocks of draws run on threads, each with its own generator and its own rows: one
    thread or four give the same numbers."""
    import xarray as xr

    model = hier.Model(INTEGRATED[0], with_more_columns())
    design, entries = model.design, model.prior_entries
    st = marginal.sufficient_stats(design)
    posterior = {"sigma": _draws(np.full((1, 64), 0.8), ("chain", "draw"))}
    _fixed_covariances(design, posterior, 64, np.random.default_rng(1))
    monkeypatch.setattr(marginal, "DRAW_BLOCK", 1 << 14)     # several blocks of draws

    def drawn(threads: int) -> dict:
        monkeypatch.setattr(marginal.os, "cpu_count", lambda: threads)
        return marginal.draw_effects(xr.Dataset(posterior), design, st,
                                     np.random.default_rng(3), entries)

    one, four = drawn(1), drawn(4)
    assert one.keys() == four.keys() and len(one) == len(design.groups) + 1
    for name in one:
        np.testing.assert_array_equal(one[name], four[name])


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_dense_blocks_of_the_draws_equal_lapack(size):
    """The draws' dense solves (entry-wise up to UNROLLED effects, LAPACK above) against
    numpy's Cholesky and solves, on a batch of random SPD blocks with two right-hand sides;
    the noise enters through one call of the batch's shape, so the draws' random stream is
    the same on both paths."""
    rng = np.random.default_rng(size)
    A = rng.normal(size=(5, 3, size, size))
    S = A @ np.swapaxes(A, -1, -2) + size * np.eye(size)        # (draws, components, k, k)
    v = rng.normal(size=(2, 5, 3, size))                          # (columns, draws, ...)
    F = np.linalg.cholesky(S)
    z = np.linalg.solve(F, v[..., None])[..., 0]
    logdet, Q = marginal._dense_gram_numpy(S, v, size)
    assert logdet == pytest.approx(np.linalg.slogdet(S)[1].sum(axis=-1), rel=1e-12)
    assert Q == pytest.approx(np.einsum("a...ij,b...ij->...ab", z, z), rel=1e-10)
    e = rng.normal(size=(5, 3, size))
    expected = np.linalg.solve(np.swapaxes(F, -1, -2),
                               (np.linalg.solve(F, v[0][..., None])[..., 0] + e)[..., None])[..., 0]
    drawn = marginal._dense_solve_numpy(S, v[0], size, noise=lambda shape: e.reshape(shape))
    assert drawn == pytest.approx(expected, rel=1e-10)


def test_components_pack_into_blocks_as_large_as_the_largest():
    """First fit, largest first: sizes 3, 1, 2, 1, 1 -> blocks {3}, {2, 1}, {1, 1}."""
    assert marginal.pack(np.array([3, 1, 2, 1, 1])).tolist() == [0, 1, 1, 2, 2]


def unequal_components(seed: int = 3) -> pd.DataFrame:
    """b (10 levels, eliminated) crossed with c: c0-c2 joined through b0-b4, then c3, c4 and c5
    each alone (b5-b9): components of 3, 1, 1 and 1 levels of c."""
    rng = np.random.default_rng(seed)
    cells = [(b, c) for b in range(5) for c in range(3)] + [(5, 3), (6, 3), (7, 4), (8, 5), (9, 5)]
    rows = [cell for cell in cells for _ in range(rng.integers(1, 4))]
    frame = pd.DataFrame(rows, columns=["b", "c"]).astype(str)
    frame["x"] = rng.normal(size=len(frame))
    frame["y"] = frame["x"] + rng.normal(size=len(frame))
    return frame


def test_unequal_components_share_dense_blocks_exactly():
    """The three single-level components share one block with room for three: 2 blocks, not
    4; the likelihood is still the dense multivariate normal's, and the draws the exact
    conditional's."""
    import xarray as xr

    design = hier.Model("y ~ x + (1 | b) + (1 | c)", unequal_components()).design
    plan = marginal.layout(design)
    assert (design.groups[plan.eliminated].name, plan.components, plan.size) == ("b", 2, 3)
    logp = marginal_loglik_function(design)
    rng = np.random.default_rng(6)
    beta, sigma = np.array([0.2, 0.9]), 0.7
    Ls = [np.array([[rng.uniform(0.3, 1.5)]]) for _ in design.groups]
    assert logp(beta, *Ls, sigma) == pytest.approx(dense_loglik(design, beta, Ls, sigma), rel=1e-10)
    st = marginal.sufficient_stats(design)
    n = 20000
    posterior = {"beta": _draws(np.broadcast_to(beta, (1, n, 2)), ("chain", "draw", "fixed_term")),
                 "sigma": _draws(np.full((1, n), sigma), ("chain", "draw"))}
    for g, L in zip(design.groups, Ls):
        posterior[f"{g.name}_sd"] = _draws(np.full((1, n, 1), L[0, 0]), ("chain", "draw", f"{g.name}_term"))
    u = marginal.draw_effects(xr.Dataset(posterior), design, st, np.random.default_rng(0))
    Z, Sigma = _dense_covariance(design, Ls, sigma)
    cov = np.linalg.inv(np.linalg.inv(Sigma) + Z.T @ Z / sigma ** 2)
    mean = cov @ Z.T @ (design.y - design.X @ beta) / sigma ** 2
    assert_gaussian_draws(np.hstack([u[g.name][0].reshape(n, -1) for g in design.groups]),
                          mean, cov)
