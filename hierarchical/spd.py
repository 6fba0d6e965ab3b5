"""log det S and V' S^-1 V for a batch of small dense SPD blocks, as one PyTensor Op with a
closed-form gradient and a numba kernel of plain loops.

The exact marginal (``marginal.py``) needs these for the Schur complement's components
(crossed factors: Penicillin's 6 x 6, ScotsSec's 19 x 19) and for beta's posterior
precision (Assay's 30 x 30). Written with PyTensor's Cholesky and triangular solves, the
graph compiled LAPACK wrappers and the Cholesky's own gradient (BLAS products) into every
such model: a cold compile 12-25 s longer (Oats 64 -> 52 s, Penicillin 71 -> 55 s, Assay
113 -> 88 s). Here the kernel is loops over one Cholesky factor, compiled once and cached
by numba.

With X = S^-1 V and G = V' X (summed over the blocks), the gradient is

    d log det S = tr(S^-1 dS),   dG = dV' X + X' dV - X' dS X,

so for upstream gradients g (of log det) and Gbar (of G): Sbar = g S^-1 - X Gbar X' and
Vbar = X (Gbar + Gbar'); symmetrised, since the kernel reads S as (S + S') / 2.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch import basic as numba_basic

from .jax_dispatch import register_jax
from .kernels import kernel


@kernel
def _cholesky(A):
    """The lower Cholesky factor of (A + A') / 2, A SPD (NaN where it is not: the log
    density is then NaN, which NUTS rejects). Reading both triangles makes the value a
    function of every entry, whose gradient is the symmetric one of the docstring."""
    n = A.shape[0]
    F = np.zeros((n, n))
    for j in range(n):
        d = A[j, j]
        for t in range(j):
            d -= F[j, t] * F[j, t]
        F[j, j] = np.sqrt(d) if d > 0 else np.nan
        for i in range(j + 1, n):
            s = 0.5 * (A[i, j] + A[j, i])
            for t in range(j):
                s -= F[i, t] * F[j, t]
            F[i, j] = s / F[j, j]
    return F


@kernel
def _solve(F, B):
    """(F F')^-1 B for a lower-triangular F and a matrix B."""
    n, m = B.shape
    X = B.copy()
    for c in range(m):
        for i in range(n):
            s = X[i, c]
            for t in range(i):
                s -= F[i, t] * X[t, c]
            X[i, c] = s / F[i, i]
        for i in range(n - 1, -1, -1):
            s = X[i, c]
            for t in range(i + 1, n):
                s -= F[t, i] * X[t, c]
            X[i, c] = s / F[i, i]
    return X


@kernel
def logdet_and_gram(S, V):
    """Sum over blocks of log det S_c and V_c' S_c^-1 V_c, with S^-1 and X = S^-1 V per
    block (what the gradient reads). S: (blocks, n, n); V: (blocks, n, m)."""
    blocks, n, m = V.shape
    logdet = 0.0
    G = np.zeros((m, m))
    Sinv = np.empty((blocks, n, n))
    X = np.empty((blocks, n, m))
    eye = np.eye(n)
    for c in range(blocks):
        F = _cholesky(S[c])
        for i in range(n):
            logdet += 2.0 * np.log(F[i, i])
        X[c] = _solve(F, V[c])
        Sinv[c] = _solve(F, eye)
        for a in range(m):
            for b in range(m):
                s = 0.0
                for i in range(n):
                    s += V[c, i, a] * X[c, i, b]
                G[a, b] += s
    return logdet, G, Sinv, X


@kernel
def gram_gradient(g, Gbar, Sinv, X):
    """The pullback (module docstring), symmetrised as the value is (`_cholesky`): with
    H = (Gbar + Gbar') / 2, Sbar = g S^-1 - X H X' and Vbar = 2 X H."""
    blocks, n, m = X.shape
    Sbar = g * Sinv
    Vbar = np.empty((blocks, n, m))
    H = 0.5 * (Gbar + Gbar.T)
    for c in range(blocks):
        for i in range(n):
            for b in range(m):
                s = 0.0
                for a in range(m):
                    s += X[c, i, a] * H[a, b]
                Vbar[c, i, b] = 2.0 * s
        for i in range(n):
            for j in range(n):
                s = 0.0
                for b in range(m):
                    s += Vbar[c, i, b] * X[c, j, b]
                Sbar[c, i, j] -= 0.5 * s
    return Sbar, Vbar


class LogdetGram(Op):
    """(S, V) -> log det S summed over blocks, the Gram matrix V' S^-1 V, and S^-1 and
    S^-1 V (read by the gradient)."""

    __props__ = ()

    def make_node(self, S, V):
        S, V = (pt.as_tensor_variable(x).astype("float64") for x in (S, V))
        return Apply(self, [S, V], [pt.dscalar(), pt.dmatrix(), S.type(), V.type()])

    def perform(self, node, inputs, outputs):
        for out, value in zip(outputs, logdet_and_gram(*(np.asarray(x) for x in inputs))):
            out[0] = np.asarray(value)

    def pullback(self, inputs, outputs, output_grads):
        if any(not isinstance(g.type, DisconnectedType) for g in output_grads[2:]):
            raise NotImplementedError("S^-1 and S^-1 V are the gradient's, not outputs to use")
        g, Gbar = output_grads[:2]
        if isinstance(g.type, DisconnectedType):
            g = pt.constant(0.0)
        if isinstance(Gbar.type, DisconnectedType):
            Gbar = pt.zeros_like(outputs[1])
        Sbar, Vbar = GramGradient()(g, Gbar, outputs[2], outputs[3])
        return [Sbar, Vbar]


class GramGradient(Op):
    """`gram_gradient` as an Op."""

    __props__ = ()

    def make_node(self, g, Gbar, Sinv, X):
        inputs = [pt.as_tensor_variable(x).astype("float64") for x in (g, Gbar, Sinv, X)]
        return Apply(self, inputs, [inputs[2].type(), inputs[3].type()])

    def perform(self, node, inputs, outputs):
        g, Gbar, Sinv, X = (np.asarray(x) for x in inputs)
        for out, value in zip(outputs, gram_gradient(float(g), Gbar, Sinv, X)):
            out[0] = value


def logdet_gram(S, V):
    """log det S (summed over blocks) and V' S^-1 V; S (blocks, n, n), V (blocks, n, m)."""
    logdet, G, _, _ = LogdetGram()(S, V)
    return logdet, G


# PyTensor's disk cache keys a compiled graph by its Ops' props, and numba's cache of the
# graph's function does not notice a change in the functions it calls (laplace_chain.py)
SOURCE_KEY = int(hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:15], 16)


@numba_basic.register_funcify_default_op_cache_key(LogdetGram)
def _numba_logdet_gram(op, node, **kwargs):
    @numba_basic.numba_njit
    def kernel(S, V):
        logdet, G, Sinv, X = logdet_and_gram(S, V)
        return np.asarray(logdet), G, Sinv, X

    return kernel, SOURCE_KEY


@numba_basic.register_funcify_default_op_cache_key(GramGradient)
def _numba_gram_gradient(op, node, **kwargs):
    @numba_basic.numba_njit
    def kernel(g, Gbar, Sinv, X):
        return gram_gradient(g.item(), Gbar, Sinv, X)

    return kernel, SOURCE_KEY


@register_jax(LogdetGram)
def _jax_logdet_gram(op, **kwargs):
    import jax.numpy as jnp
    from jax.scipy.linalg import cho_solve

    def logdet_gram_jax(S, V):
        F = jnp.linalg.cholesky(0.5 * (S + jnp.swapaxes(S, -1, -2)))
        logdet = 2 * jnp.log(jnp.diagonal(F, axis1=-2, axis2=-1)).sum()
        X = cho_solve((F, True), V)
        Sinv = cho_solve((F, True), jnp.broadcast_to(jnp.eye(S.shape[-1]), S.shape))
        return logdet, jnp.einsum("cia,cib->ab", V, X), Sinv, X

    return logdet_gram_jax


@register_jax(GramGradient)
def _jax_gram_gradient(op, **kwargs):
    import jax.numpy as jnp

    def gram_gradient_jax(g, Gbar, Sinv, X):
        Vbar = 2 * jnp.einsum("cia,ab->cib", X, 0.5 * (Gbar + Gbar.T))
        return g * Sinv - 0.5 * jnp.einsum("cib,cjb->cij", Vbar, X), Vbar

    return gram_gradient_jax
