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

from .design import Design
from .linpred import group_cholesky


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
    """Gaussian response, exactly one (partially pooled) grouping factor and at least one
    fixed effect."""
    return (design.spec.family == "gaussian" and len(design.groups) == 1
            and design.groups[0].term.pooled and design.X.shape[1] > 0)


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


def marginal_loglik(stats: SufficientStats, beta, L, sigma):
    """log p(y | beta, Sigma = L L^T, sigma) with the group effects integrated out (PyTensor)."""
    import pytensor.tensor as pt

    # Products are written as broadcast-and-sum, not dot / matmul: numba's BLAS-backed dot
    # takes tens of seconds to compile cold, and with k and p small nothing is lost.
    sigma2 = sigma ** 2
    k = stats.ZtZ.shape[1]
    rss = (stats.yty - 2 * (beta * stats.Xty).sum()
           + (stats.XtX * beta[:, None] * beta[None, :]).sum())
    Ztr = stats.Zty - (stats.ZtX * beta).sum(axis=2)                        # (J, k)
    w = (Ztr[:, :, None] * L[None, :, :]).sum(axis=1)                         # rows: L^T Z^T r
    ZtZ_L = (stats.ZtZ[:, :, :, None] * L[None, None, :, :]).sum(axis=2)     # (J, k, k)
    M = pt.eye(k) + (L[None, :, :, None] * ZtZ_L[:, :, None, :]).sum(axis=1) / sigma2
    logdet, wMw = _logdet_and_quadratic(M, w, k)
    quad = (rss - wMw / sigma2) / sigma2
    return -0.5 * (stats.n * np.log(2 * np.pi) + 2 * stats.n * pt.log(sigma) + logdet + quad)


def _logdet_and_quadratic(M, w, k: int):
    """sum_j log det M_j and sum_j w_j^T M_j^-1 w_j; closed forms for k <= 2 (the common
    intercept / intercept + slope cases) compile and run faster than batched Cholesky."""
    import pytensor.tensor as pt

    if k == 1:
        m = M[:, 0, 0]
        return pt.log(m).sum(), (w[:, 0] ** 2 / m).sum()
    if k == 2:
        a, b, c = M[:, 0, 0], M[:, 0, 1], M[:, 1, 1]
        det = a * c - b ** 2
        quad = (c * w[:, 0] ** 2 - 2 * b * w[:, 0] * w[:, 1] + a * w[:, 1] ** 2) / det
        return pt.log(det).sum(), quad.sum()
    C = pt.linalg.cholesky(M)
    v = pt.linalg.solve_triangular(C, w[:, :, None], lower=True)[:, :, 0]
    return 2 * pt.log(pt.diagonal(C, axis1=1, axis2=2)).sum(), (v ** 2).sum()


def draw_effects(posterior, design: Design, stats: SufficientStats,
                 rng: np.random.Generator) -> np.ndarray:
    """Exact draws of u_j given each posterior draw: array (chain, draw, J, k)."""
    g = design.groups[0]
    name, k = g.name, len(g.term_names)
    beta = posterior["beta"].values                                          # (c, d, p)
    sigma2 = posterior["sigma"].values[..., None, None] ** 2                 # (c, d, 1, 1)
    L = group_cholesky(posterior, name, k)                                   # (c, d, k, k)
    Ztr = stats.Zty - np.einsum("jkp,cdp->cdjk", stats.ZtX, beta)             # (c, d, J, k)
    w = np.einsum("cdjk,cdkl->cdjl", Ztr, L)                                   # L^T Z^T r
    LtZtZL = np.einsum("cdki,jkl,cdlm->cdjim", L, stats.ZtZ, L)
    M = np.eye(k) + LtZtZL / sigma2[..., None]
    C = np.linalg.cholesky(M)
    mean = np.linalg.solve(M, (w / sigma2)[..., None])[..., 0]
    eps = rng.standard_normal(mean.shape)
    # a = mean + C^-T eps has covariance (C C^T)^-1 = M^-1
    noise = np.linalg.solve(np.swapaxes(C, -1, -2), eps[..., None])[..., 0]
    a = mean + noise
    return np.einsum("cdkl,cdjl->cdjk", L, a)                                 # u = L a
