"""Gaussian group effects integrated out analytically, then drawn exactly after sampling.

For y = X beta + Z_j u_j + e with u_j ~ N(0, Sigma), Sigma = L L^T, e ~ N(0, sigma^2 I), the
marginal of group j is N(X_j beta, V_j), V_j = sigma^2 I + Z_j L L^T Z_j^T. With
M_j = I + L^T Z_j^T Z_j L / sigma^2 (k x k) the Woodbury identity and the matrix determinant
lemma give

    log det V_j = 2 n_j log sigma + log det M_j
    r_j^T V_j^-1 r_j = (r_j^T r_j - w_j^T M_j^-1 w_j / sigma^2) / sigma^2,  w_j = L^T Z_j^T r_j

with r_j = y_j - X_j beta. Every term is a function of per-group sufficient statistics
(Z^T Z, Z^T X, Z^T y) and of global ones (X^T X, X^T y, y^T y), so a gradient costs
O(groups x k^3), independent of the number of rows. Given a posterior draw, the effects are
Gaussian: in whitened form a_j = L^-1 u_j ~ N(M_j^-1 w_j / sigma^2, M_j^-1), drawn exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from . import names
from .design import Design
from .graph import coords, covariance_factor, family_parameters, fixed_effects_prior
from .linpred import group_cholesky
from .priors import PriorEntry


@dataclass
class SufficientStats:
    n: int
    XtX: np.ndarray        # (p, p)
    Xty: np.ndarray        # (p,)
    yty: float
    ZtZ: np.ndarray        # (J, k, k)
    ZtX: np.ndarray        # (J, k, p)
    Zty: np.ndarray        # (J, k)


def applies(design: Design) -> bool:
    """Gaussian response, exactly one (partially pooled) grouping factor, at least one fixed
    effect, and no frequency weights."""
    return (design.spec.family == "gaussian" and len(design.groups) == 1
            and design.groups[0].term.pooled and design.X.shape[1] > 0 and design.weights is None)


def sufficient_stats(design: Design) -> SufficientStats:
    g = design.groups[0]
    X, y, Z = design.X, design.y, g.Z
    J, k, p = len(g.levels), Z.shape[1], X.shape[1]
    ZtZ = np.zeros((J, k, k))
    ZtX = np.zeros((J, k, p))
    Zty = np.zeros((J, k))
    np.add.at(ZtZ, g.codes, Z[:, :, None] * Z[:, None, :])
    np.add.at(ZtX, g.codes, Z[:, :, None] * X[:, None, :])
    np.add.at(Zty, g.codes, Z * y[:, None])
    return SufficientStats(n=len(y), XtX=X.T @ X, Xty=X.T @ y, yty=float(y @ y),
                           ZtZ=ZtZ, ZtX=ZtX, Zty=Zty)


def as_model_data(stats: SufficientStats) -> SufficientStats:
    """The statistics as ``pm.Data`` in the current model, named ``marginal:<stat>``.

    Held as data rather than constants, they reach the compiled function as arguments: the
    compile cost no longer grows with the number of groups (radon, 386 counties: 13 s ->
    see benchmarks) and the numba cache serves every data set with the same structure.
    """
    def data(name: str):
        value = np.asarray(getattr(stats, name), dtype=float)
        static = (None, *value.shape[1:]) if name.startswith("Zt") else value.shape  # J free
        return pm.Data(f"marginal:{name}", value, shape=static)

    return SufficientStats(n=stats.n, **{name: data(name)
                                         for name in ("XtX", "Xty", "yty", "ZtZ", "ZtX", "Zty")})


def marginal_loglik(stats: SufficientStats, beta, L, sigma, k: int):
    """log p(y | beta, Sigma = L L^T, sigma) with the group effects integrated out (PyTensor).

    Written per entry as length-J vectors (k is small): M_j[a, b] = delta_ab +
    sum_il L_ia ZtZ_j[i, l] L_lb / sigma^2. Broadcast 4-d tensors and their gradients made
    numba compile for 5-10 s; these vector expressions compile in about one. No dot /
    matmul either: numba's BLAS-backed dot takes tens of seconds to compile cold.
    """
    sigma2 = sigma ** 2
    rss = (stats.yty - 2 * (beta * stats.Xty).sum()
           + (stats.XtX * beta[:, None] * beta[None, :]).sum())
    Ztr = [stats.Zty[:, i] - (stats.ZtX[:, i, :] * beta).sum(axis=1) for i in range(k)]
    w = [sum(L[i, a] * Ztr[i] for i in range(a, k)) for a in range(k)]          # L^T Z^T r
    ZtZ = [[stats.ZtZ[:, i, j] for j in range(k)] for i in range(k)]
    M = [[(1.0 if a == b else 0.0)
          + sum(L[i, a] * ZtZ[i][j] * L[j, b] for i in range(a, k) for j in range(b, k)) / sigma2
          for b in range(k)] for a in range(k)]
    logdet, wMw = _logdet_and_quadratic(M, w, k)
    quad = (rss - wMw / sigma2) / sigma2
    return -0.5 * (stats.n * np.log(2 * np.pi) + 2 * stats.n * pt.log(sigma) + logdet + quad)


def _logdet_and_quadratic(M, w, k: int):
    """sum_j log det M_j and sum_j w_j^T M_j^-1 w_j from the entries of M and w; closed
    forms for k <= 2 (intercepts, intercept + slope), batched Cholesky beyond."""
    if k == 1:
        return pt.log(M[0][0]).sum(), (w[0] ** 2 / M[0][0]).sum()
    if k == 2:
        a, b, c = M[0][0], M[0][1], M[1][1]
        det = a * c - b ** 2
        quad = (c * w[0] ** 2 - 2 * b * w[0] * w[1] + a * w[1] ** 2) / det
        return pt.log(det).sum(), quad.sum()
    matrix = pt.stack([pt.stack(row, axis=-1) for row in M], axis=-2)          # (J, k, k)
    C = pt.linalg.cholesky(matrix)
    v = pt.linalg.solve_triangular(C, pt.stack(w, axis=-1)[:, :, None], lower=True)[:, :, 0]
    return 2 * pt.log(pt.diagonal(C, axis1=1, axis2=2)).sum(), (v ** 2).sum()


def build_marginal_model(design: Design, entries: list[PriorEntry], stats) -> pm.Model:
    """The Gaussian model with its one factor's effects integrated out.

    Free variables: beta, <g>_sd, <g>_corr_chol (if correlated), sigma; the likelihood is a
    Potential named after the response. The effects are drawn after sampling.
    """
    by_label = {e.label: e for e in entries}
    g = design.groups[0]
    model_coords = {k: v for k, v in coords(design).items() if k != names.OBS_DIM}
    with pm.Model(coords=model_coords) as model:
        beta = fixed_effects_prior(design, by_label)
        sd, chol = covariance_factor(g, by_label)
        L = pt.diag(sd) if chol is None else sd[:, None] * chol
        sigma = family_parameters(design, by_label)[names.SIGMA]
        loglik = marginal_loglik(as_model_data(stats), beta, L, sigma, len(g.term_names))
        pm.Potential(f"{names.observed_name(design)}_marginal", loglik)
    return model



def draw_effects(posterior, design: Design, stats: SufficientStats,
                 rng: np.random.Generator) -> np.ndarray:
    """Exact draws of u_j given each posterior draw: array (chain, draw, J, k)."""
    g = design.groups[0]
    name, k = g.name, len(g.term_names)
    beta = posterior[names.FIXED].values                                          # (c, d, p)
    sigma2 = posterior[names.SIGMA].values[..., None, None, None] ** 2           # (c, d, 1, 1, 1)
    L = group_cholesky(posterior, name, k)[:, :, None]                      # (c, d, 1, k, k)
    Lt = np.swapaxes(L, -1, -2)
    # Batched matmul throughout: einsum without BLAS was most of this function's time.
    Ztr = stats.Zty[..., None] - stats.ZtX @ beta[:, :, None, :, None]       # (c, d, J, k, 1)
    w = Lt @ Ztr                                                            # L^T Z^T r
    M = np.eye(k) + (Lt @ stats.ZtZ @ L) / sigma2                           # (c, d, J, k, k)
    C = np.linalg.cholesky(M)
    mean = np.linalg.solve(M, w / sigma2)
    eps = rng.standard_normal(mean.shape)
    # a = mean + C^-T eps has covariance (C C^T)^-1 = M^-1
    a = mean + np.linalg.solve(np.swapaxes(C, -1, -2), eps)
    return (L @ a)[..., 0]                                                  # u = L a
