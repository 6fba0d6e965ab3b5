"""Sampling coordinates for the LKJ correlation prior: Stan's canonical partial
correlations, written entry by entry.

A correlation Cholesky factor L (k x k, lower triangular, unit rows) is sampled as
m = k (k - 1) / 2 unconstrained reals y_ij (i > j, row by row), as Stan does:

    z_ij = tanh(y_ij)                           canonical partial correlations
    L_ij = z_ij sqrt(prod_{t<j} (1 - z_it^2))   j < i
    L_ii = sqrt(prod_{t<i} (1 - z_it^2))

with log |dL/dy| = sum_ij (1 + (i - 1 - j) / 2) log(1 - z_ij^2) over L's strictly lower
entries, the coordinates PyMC's LKJCorr density is written in. Everything is computed from
log(1 - z^2) = 2 (log 2 + y - softplus(2 y)), which does not round to log(0) for large |y|.

Why not PyMC's own transform: its graph (a spiral fill, pad, row norms, set-subtensor and
their gradients) took numba about 10 s to compile, cold, and PyMC's support point put the
LKJCorr random graph (a scan) into nutpie's initial-point function, which PyTensor's C
back-end compiled for about 5 s more (issue 21: radon ``(1 + floor | county)``, first fit
with empty caches 37 s -> 18.5 s, as the same model without the correlation, 17 s). The
prior (``pm.LKJCorr``'s density, its draws, its name and the value it stores) is PyMC's;
only NUTS's coordinates change.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.multivariate import LKJCorrRV
from pymc.distributions.shape_utils import rv_size_is_none
from pymc.logprob.transforms import Transform

LOG2 = float(np.log(2.0))


def _lower(k: int) -> list[tuple[int, int]]:
    """(i, j) of the strictly lower entries, in the order of the unconstrained vector."""
    return [(i, j) for i in range(1, k) for j in range(i)]


def _log1m_tanh2(y):
    """log(1 - tanh(y)^2), without cancellation for large |y|."""
    return 2.0 * (LOG2 + y - pt.softplus(2.0 * y))


def jacobian_weights(k: int) -> np.ndarray:
    """c_ij with log |dL/dy| = sum c_ij log(1 - z_ij^2)."""
    return np.array([1.0 + 0.5 * (i - 1 - j) for i, j in _lower(k)])


class CholeskyCorrCPC(Transform):
    """LKJCorr's value (a lower-triangular correlation Cholesky factor) <-> its canonical
    partial correlations on the real line (see the module docstring)."""

    name = "cpc"
    ndim_supp = 1

    def __init__(self, k: int):
        self.k = k

    def backward(self, value, *inputs):
        k = self.k
        z = pt.tanh(value)
        ell = _log1m_tanh2(value)
        index = {pair: n for n, pair in enumerate(_lower(k))}
        one, zero = pt.ones_like(value[..., 0]), pt.zeros_like(value[..., 0])
        rows = [[one] + [zero] * (k - 1)]
        for i in range(1, k):
            row, log_rest = [], None          # log prod_{t<j} (1 - z_it^2)
            for j in range(i):
                n = index[i, j]
                row.append(z[..., n] if log_rest is None else z[..., n] * pt.exp(0.5 * log_rest))
                log_rest = ell[..., n] if log_rest is None else log_rest + ell[..., n]
            row.append(pt.exp(0.5 * log_rest))
            rows.append(row + [zero] * (k - 1 - i))
        # one MakeVector reshaped: its gradient is scalar indexing (a Join's is a Split)
        flat = pt.stack([entry for row in rows for entry in row], axis=-1)
        return flat.reshape((*flat.shape[:-1], k, k))

    def forward(self, value, *inputs):
        k = self.k
        out = []
        for i, j in _lower(k):
            rest = 1.0 - sum(value[..., i, t] ** 2 for t in range(j)) if j else 1.0
            z = value[..., i, j] / pt.sqrt(rest) if j else value[..., i, j]
            out.append(pt.arctanh(z))
        return pt.stack(out, axis=-1)

    def log_jac_det(self, value, *inputs):
        return (jacobian_weights(self.k) * _log1m_tanh2(value)).sum(axis=-1)


class _LKJCorrRV(LKJCorrRV):
    """PyMC's LKJCorr random variable, unchanged but for its support point (below)."""


class LKJCorr(pm.LKJCorr):
    """``pm.LKJCorr``: the same density (PyMC's, inherited), draws and value, sampled through
    `CholeskyCorrCPC`, with a support point (the identity) built from ``n``.

    PyMC's support point reads the variable's shape, which puts the variable itself, and
    with it its random graph (a scan) and its RNG update, into the initial-point function:
    nutpie compiles that function in FAST_COMPILE mode, and PyTensor's C back-end spent
    about 5 s compiling the scan (gcc), cold. An ``initval`` would avoid it too, but PyMC's
    model transforms (``pm.do``, ``pm.observe``, ``remove_value_transforms``) refuse models
    with initial values.
    """

    rv_type = _LKJCorrRV
    rv_op = _LKJCorrRV.rv_op

    def __new__(cls, name, n: int, eta, **kwargs):
        return super().__new__(cls, name, n=n, eta=eta, default_transform=None,
                               transform=CholeskyCorrCPC(n), **kwargs)

    @staticmethod
    def support_point(rv, *params):
        size, (n, _eta) = (params[0], params[1:]) if len(params) == 3 else (None, params)
        eye = pt.eye(n)
        if size is None or rv_size_is_none(size):
            return eye
        return pt.broadcast_to(eye, (*size, n, n))
