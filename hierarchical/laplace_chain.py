"""The Laplace approximation of ``laplace.py`` as one compiled kernel, for the designs it
is most used on: random intercepts of factors nested in a chain, each in the next
(observations in broods in locations; districts by urban status in districts), or of one
factor. ``laplace.build_laplace_model`` takes it for those; other designs (slopes,
crossed factors) keep the PyTensor graph.

Why a kernel. As a PyTensor graph the approximation unrolls a fixed number of Newton steps,
each a handful of scatters, gathers and small batched factorisations, and took 400-700 us
per gradient on the lme4 bank's grouseticks and Contraception. Here a level's rows are all
its ancestors' rows, so H = I + Lambda' Z' W Z Lambda needs only the sums of W over each
level's rows (one pass over the rows, then up the tree), and an LDL' factor that eliminates
the deepest levels first has no fill beyond each level's ancestors. Newton's method runs to
convergence (MODE_TOLERANCE), and the gradient comes in closed form from the implicit
function theorem (Margossian et al. 2020), with H^-1's diagonal and ancestor entries from
Takahashi's recursion on the same factor. With f(a) = log p(y | a) - |a|^2 / 2 at the mode
a*, s, W and w' = dW/deta per row, c_i = (Z Lambda H^-1 Lambda' Z')_ii, v = c w' / 2,
r = H^-1 Lambda' Z' v and q = Z Lambda r:

    d/d beta  = X' (s - v + W q)
    d/d sd_g  = sum over g's levels j of  a_j (Z' (s - v + W q))_j - r_j (Z' s)_j
                - (1 - (H^-1)_jj) / sd_g

Measured per gradient (the kernel alone, at lme4's estimates): grouseticks 110 us,
Contraception 190 us, Arabidopsis 30 us. Tests compare the value with a dense
implementation to 1e-9 and the gradient with its central differences, and the model's log
density with the graph's. The effects are drawn by ``chain_effects`` from the same factor.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch import basic as numba_basic

from .design import Design, parents
from .kernels import kernel

# Newton's method stops when no whitened effect moves by more than this (convergence is
# quadratic near the mode, so the value is then exact to rounding), or after MAX_STEPS
MODE_TOLERANCE = 1e-6
MAX_STEPS = 50
# step halvings allowed when a full Newton step lowers the objective, and the largest
# change in a whitened effect after which steps are no longer checked (see _mode)
MAX_HALVINGS = 30
SEARCHED_UNTIL = 1e-2


def chain(design: Design) -> list[int] | None:
    """The factors' indices from the deepest to the outermost when every factor has a
    random intercept only, is pooled, and each is nested in the next; None otherwise."""
    groups = design.groups
    if not groups or any(not g.term.pooled or not g.intercept_only for g in groups):
        return None
    parent = parents(design)
    index = {g.name: i for i, g in enumerate(groups)}
    children = [name for name in parent.values() if name is not None]
    if list(parent.values()).count(None) != 1 or len(set(children)) != len(children):
        return None
    order = [index[next(name for name, p in parent.items() if p is None)]]
    while len(order) < len(groups):
        child = [index[name] for name, p in parent.items() if p == groups[order[-1]].name]
        if len(child) != 1:
            return None
        order.append(child[0])
    return order[::-1]


def chain_arrays(design: Design, order: list[int]) -> dict[str, np.ndarray]:
    """The chain as arrays. Levels are numbered over all factors, the deepest factor's
    first, so that a level's ancestors come after it: ``ancestors`` (levels, depth - 1),
    the ancestor at distance 1, 2, ... (-1 past the root); ``starts``, each factor's first
    level. The rows are read by deepest level (``rows``, cut by ``segments``): a row's
    levels are the chain of its deepest level, so a pass sums W and the working response
    over each deepest level's rows and adds the sums to the chain's entries of H once.
    (Adding row by row cost 2.5 times as much per pass: every addition to a level waits
    for the last.)"""
    sizes = [len(design.groups[g].levels) for g in order]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    levels = np.stack([design.groups[g].codes + starts[d] for d, g in enumerate(order)],
                      axis=1).astype(np.int64)
    depth = len(order)
    ancestors = np.full((starts[-1], max(depth - 1, 1)), -1, dtype=np.int64)
    for d in range(depth):
        for e in range(d + 1, depth):
            ancestors[levels[:, d], e - d - 1] = levels[:, e]
    leaf = levels[:, 0]
    rows = np.argsort(leaf, kind="stable").astype(np.int64)
    segments = np.searchsorted(leaf[rows], np.arange(sizes[0] + 1)).astype(np.int64)
    return {"rows": rows, "segments": segments, "ancestors": ancestors, "starts": starts}


def kernel_arguments(design: Design, order: list[int]) -> tuple:
    """The kernels' data arguments as numpy arrays, in their order: y, trials, weights and
    offset (1, 1 and 0 where the design has none), X, and the chain's arrays."""
    arrays, ones = chain_arrays(design, order), np.ones(design.n)
    return (design.y.astype(float),
            ones if design.trials is None else design.trials.astype(float),
            ones if design.weights is None else design.weights,
            np.zeros(design.n) if design.offset is None else design.offset, design.X,
            arrays["rows"], arrays["segments"], arrays["ancestors"], arrays["starts"])


# --- the kernel (every function compiled by kernels.kernel: cached, numpy's error model) ---

@kernel(inline="always")
def _row(poisson, with_f, y, n, w, eta):
    """Log likelihood (up to a constant; 0 unless ``with_f``: a logit's costs a log1p),
    score, W and dW/deta of one row, times its weight."""
    if poisson:
        mu = np.exp(eta)
        return w * (y * eta - mu), w * (y - mu), w * mu, w * mu
    if eta > 0:
        e = np.exp(-eta)
        p = 1.0 / (1.0 + e)
        softplus = eta + np.log1p(e) if with_f else 0.0
    else:
        e = np.exp(eta)
        p = e / (1.0 + e)
        softplus = np.log1p(e) if with_f else 0.0
    q = p * (1.0 - p)
    return w * (y * eta - n * softplus), w * (y - n * p), w * n * q, w * n * q * (1.0 - 2.0 * p)


@kernel
def _factor(Hd, Ho, ancestors):
    """LDL' in place, deepest levels first: Hd becomes D, Ho the multipliers."""
    for j in range(Hd.shape[0]):
        dj = Hd[j]
        for t in range(ancestors.shape[1]):
            if ancestors[j, t] < 0:
                break
            Ho[j, t] /= dj
        for t in range(ancestors.shape[1]):
            at = ancestors[j, t]
            if at < 0:
                break
            lt = Ho[j, t]
            Hd[at] -= lt * lt * dj
            for u in range(t + 1, ancestors.shape[1]):
                if ancestors[j, u] < 0:
                    break
                Ho[at, u - t - 1] -= lt * Ho[j, u] * dj


@kernel
def _backward(Hd, Ho, ancestors, b):
    """b := L'^-1 b, H = L D L' (Hd holding D, Ho L's multipliers)."""
    for j in range(Hd.shape[0] - 1, -1, -1):
        for t in range(ancestors.shape[1]):
            at = ancestors[j, t]
            if at < 0:
                break
            b[j] -= Ho[j, t] * b[at]


@kernel
def _solve(Hd, Ho, ancestors, b):
    """b := H^-1 b from the factor."""
    for j in range(Hd.shape[0]):
        for t in range(ancestors.shape[1]):
            at = ancestors[j, t]
            if at < 0:
                break
            b[at] -= Ho[j, t] * b[j]
        b[j] /= Hd[j]
    _backward(Hd, Ho, ancestors, b)


@kernel
def _selected_inverse(Hd, Ho, ancestors, Sd, So):
    """The diagonal Sd and ancestor entries So of H^-1 (Takahashi's recursion)."""
    T = ancestors.shape[1]
    for j in range(Hd.shape[0] - 1, -1, -1):
        for t in range(T):
            at = ancestors[j, t]
            if at < 0:
                break
            total = 0.0
            for u in range(T):
                au = ancestors[j, u]
                if au < 0:
                    break
                if u == t:
                    total += Ho[j, u] * Sd[at]
                elif u < t:
                    total += Ho[j, u] * So[au, t - u - 1]
                else:
                    total += Ho[j, u] * So[at, u - t - 1]
            So[j, t] = -total
        diagonal = 1.0 / Hd[j]
        for t in range(T):
            if ancestors[j, t] < 0:
                break
            diagonal -= Ho[j, t] * So[j, t]
        Sd[j] = diagonal


@kernel
def _down(ancestors, lam, x, out):
    """out[j] := lam_j x_j + out[parent of j]: the sum over j's chain (itself and its
    ancestors), for every level, the root first. With x = a it is Z Lambda a of j's rows."""
    for j in range(lam.shape[0] - 1, -1, -1):
        out[j] = lam[j] * x[j]
        if ancestors[j, 0] >= 0:
            out[j] += out[ancestors[j, 0]]


@kernel
def _up(ancestors, x):
    """x[j] := the sum of x over j's subtree, the deepest levels first: given sums over
    each deepest level's rows, the sum over every level's rows (Z' x)."""
    for j in range(x.shape[0]):
        if ancestors[j, 0] >= 0:
            x[ancestors[j, 0]] += x[j]


@kernel
def _newton_pass(poisson, start, with_f, y, n, w, eta_fixed, rows, segments, ancestors, lam,
                 a, s, W, dW, U, S, T):
    """One pass over the rows at the effects a: score s, W and dW per row, and the sums of
    W (S) and of the working response t = W Z Lambda a + s (T) over each level's rows, which
    give H and the right-hand side Lambda' Z' t of the next Newton step (IRLS, `_precision`).
    Returns f(a) = log p(y | a) - |a|^2 / 2 (if ``with_f``). ``start``: W and t of the data
    themselves instead (glm()'s start: mu = y + 1/2, p = (y + 1/2) / (n + 1))."""
    _down(ancestors, lam, a, U)
    total = 0.0
    for j in range(a.shape[0]):
        total -= 0.5 * a[j] * a[j]
        S[j] = 0.0
        T[j] = 0.0
    for j in range(segments.shape[0] - 1):
        zu, weight, t = U[j], 0.0, 0.0
        for k in range(segments[j], segments[j + 1]):
            i = rows[k]
            if start:
                if poisson:
                    Wi = w[i] * (y[i] + 0.5)
                    t += Wi * (np.log(y[i] + 0.5) - eta_fixed[i])
                else:
                    p = (y[i] + 0.5) / (n[i] + 1.0)
                    Wi = w[i] * n[i] * p * (1.0 - p)
                    t += Wi * (np.log(p) - np.log1p(-p) - eta_fixed[i])
                weight += Wi
            else:
                ll, s[i], W[i], dW[i] = _row(poisson, with_f, y[i], n[i], w[i],
                                             eta_fixed[i] + zu)
                total += ll
                weight += W[i]
                t += W[i] * zu + s[i]
        S[j], T[j] = weight, t
    _up(ancestors, S)
    _up(ancestors, T)
    return total


@kernel
def _precision(ancestors, lam, S, T, Hd, Ho, b):
    """H = I + Lambda' Z' W Z Lambda and b = Lambda' Z' t from the sums over each level's
    rows: a level's rows are all its ancestors' rows, so Z'WZ between a level and an
    ancestor is the level's own sum of W."""
    for j in range(lam.shape[0]):
        Hd[j] = 1.0 + lam[j] * lam[j] * S[j]
        b[j] = lam[j] * T[j]
        for t in range(ancestors.shape[1]):
            at = ancestors[j, t]
            if at < 0:
                break
            Ho[j, t] = lam[j] * lam[at] * S[j]


@kernel
def _linear(X, beta, offset):
    """X beta + offset, in loops: BLAS's sums can take another order by the arrays'
    alignment, and the same seed must give the same draws."""
    eta = offset.copy()
    for i in range(X.shape[0]):
        for k in range(X.shape[1]):
            eta[i] += X[i, k] * beta[k]
    return eta


@kernel
def _per_level(sd, starts):
    """Each level's factor's sd."""
    lam = np.empty(starts[-1])
    for d in range(sd.shape[0]):
        lam[starts[d]:starts[d + 1]] = sd[d]
    return lam


@kernel
def _mode(poisson, lam, y, n, w, eta_fixed, rows, segments, ancestors, s, W, dW, Hd, Ho):
    """Newton's method on f(a) from glm()'s start: the mode a, f there and the steps taken
    (more than MAX_STEPS: not converged). Leaves the rows' s, W and dW at the mode, and H
    there factored (Hd, Ho).

    Far from the mode, where NUTS's warm-up starts, full logit and Poisson steps can
    overshoot and oscillate, so a step that lowers f is halved. Once a step moves no effect
    by SEARCHED_UNTIL, Newton's method is in its quadratic phase: f is no longer computed
    (for a logit, a log1p per row) until the pass at the mode."""
    m = ancestors.shape[0]
    a, previous, b = np.zeros(m), np.zeros(m), np.empty(m)
    U, S, T = np.empty(m), np.empty(m), np.empty(m)
    _newton_pass(poisson, True, False, y, n, w, eta_fixed, rows, segments, ancestors, lam,
                 a, s, W, dW, U, S, T)
    _precision(ancestors, lam, S, T, Hd, Ho, a)
    _factor(Hd, Ho, ancestors)
    _solve(Hd, Ho, ancestors, a)
    f_previous, steps, halvings, change = -np.inf, 0, 0, np.inf
    while True:
        converged = change < MODE_TOLERANCE
        searched = change >= SEARCHED_UNTIL
        with_f = searched or converged or steps > MAX_STEPS
        f = _newton_pass(poisson, False, with_f, y, n, w, eta_fixed, rows, segments,
                         ancestors, lam, a, s, W, dW, U, S, T)
        if searched and f < f_previous - 1e-12 * abs(f_previous) and halvings < MAX_HALVINGS:
            a = 0.5 * (a + previous)
            halvings += 1
            continue
        _precision(ancestors, lam, S, T, Hd, Ho, b)
        _factor(Hd, Ho, ancestors)
        if converged or steps > MAX_STEPS:
            break
        previous[:] = a
        f_previous, halvings = f, 0
        _solve(Hd, Ho, ancestors, b)
        change = np.max(np.abs(b - a))
        a[:] = b
        steps += 1
    return a, f, steps


@kernel
def laplace_chain(poisson, beta, sd, y, n, w, offset, X, rows, segments, ancestors, starts):
    """The Laplace log likelihood of a nesting chain, its gradient in beta and in each
    factor's sd, and the Newton steps taken (more than MAX_STEPS: not converged)."""
    size, m, depth = y.shape[0], ancestors.shape[0], sd.shape[0]
    lam = _per_level(sd, starts)
    s, W, dW = np.empty(size), np.empty(size), np.empty(size)
    Hd, Ho = np.empty(m), np.zeros(ancestors.shape)
    a, f, steps = _mode(poisson, lam, y, n, w, _linear(X, beta, offset), rows, segments,
                        ancestors, s, W, dW, Hd, Ho)
    value = f
    for j in range(m):
        value -= 0.5 * np.log(Hd[j])
    # the gradient (module docstring); c, and so v = c dW / 2, and q = Z Lambda r are one
    # value per deepest level, c the sum of lam lam H^-1 over the level's chain
    Sd, So = np.empty(m), np.empty(ancestors.shape)
    _selected_inverse(Hd, Ho, ancestors, Sd, So)
    c = np.empty(m)
    for j in range(m - 1, -1, -1):
        c[j] = lam[j] * lam[j] * Sd[j]
        for t in range(ancestors.shape[1]):
            at = ancestors[j, t]
            if at < 0:
                break
            c[j] += 2.0 * lam[j] * lam[at] * So[j, t]
        if ancestors[j, 0] >= 0:
            c[j] += c[ancestors[j, 0]]
    v, r = np.empty(size), np.zeros(m)
    for j in range(segments.shape[0] - 1):
        for k in range(segments[j], segments[j + 1]):
            i = rows[k]
            v[i] = 0.5 * c[j] * dW[i]
            r[j] += v[i]
    _up(ancestors, r)
    for j in range(m):
        r[j] *= lam[j]
    _solve(Hd, Ho, ancestors, r)
    q, with_row, with_s = np.empty(m), np.zeros(m), np.zeros(m)
    _down(ancestors, lam, r, q)
    row = np.empty(size)
    for j in range(segments.shape[0] - 1):
        for k in range(segments[j], segments[j + 1]):
            i = rows[k]
            row[i] = s[i] - v[i] + W[i] * q[j]
            with_row[j] += row[i]
            with_s[j] += s[i]
    _up(ancestors, with_row)
    _up(ancestors, with_s)
    grad_sd = np.zeros(depth)
    for d in range(depth):
        for j in range(starts[d], starts[d + 1]):
            grad_sd[d] += a[j] * with_row[j] - r[j] * with_s[j] - (1.0 - Sd[j]) / sd[d]
    grad_beta = np.zeros(beta.shape[0])
    for i in range(size):
        for k in range(beta.shape[0]):
            grad_beta[k] += X[i, k] * row[i]
    return value, grad_beta, grad_sd, steps


@kernel
def chain_effects(poisson, beta, sd, y, n, w, offset, X, rows, segments, ancestors, starts,
                  normals):
    """Effects drawn from the approximation's Gaussian N(a*, H^-1), one draw per row of
    beta (draws, p) and sd (draws, depth), from standard normals (draws, levels): u = Lambda
    (a* + L'^-1 D^-1/2 z), H = L D L'. Also the Newton steps taken per draw."""
    size, m = y.shape[0], ancestors.shape[0]
    s, W, dW = np.empty(size), np.empty(size), np.empty(size)
    Hd, Ho = np.empty(m), np.zeros(ancestors.shape)
    u = np.empty((beta.shape[0], m))
    steps = np.empty(beta.shape[0], np.int64)
    for k in range(beta.shape[0]):
        lam = _per_level(sd[k], starts)
        a, _, steps[k] = _mode(poisson, lam, y, n, w, _linear(X, beta[k], offset), rows,
                               segments, ancestors, s, W, dW, Hd, Ho)
        x = normals[k] / np.sqrt(Hd)
        _backward(Hd, Ho, ancestors, x)
        for j in range(m):
            u[k, j] = lam[j] * (a[j] + x[j])
    return u, steps


def warm_up() -> None:
    """Call both kernels once on a tiny chain (two levels in one), so that numba compiles
    them into its disk cache: ``hierarchical warm`` (``make install``) does, and a first
    nested GLMM then skips about 8 s of LLVM. One signature serves every model: Poisson
    or logit is an argument, not a compile-time constant."""
    rows, segments = np.arange(4), np.array([0, 2, 4])
    ancestors, starts = np.array([[2], [2], [-1]]), np.array([0, 2, 3])
    data = (np.array([0.0, 1.0, 2.0, 1.0]), np.ones(4), np.ones(4), np.zeros(4),
            np.ones((4, 1)), rows, segments, ancestors, starts)
    laplace_chain(True, np.zeros(1), np.ones(2), *data)
    chain_effects(False, np.zeros((1, 1)), np.ones((1, 2)), *data, np.zeros((1, 3)))


# --- as a PyTensor Op ----------------------------------------------------------------------

class LaplaceChain(Op):
    """Outputs the Laplace log likelihood and its gradient in beta and sd (the gradient's
    graph reads them: one kernel call gives the log density and its gradient)."""

    __props__ = ("poisson",)

    def __init__(self, poisson: bool):
        self.poisson = bool(poisson)

    def make_node(self, beta, sd, y, n, w, offset, X, rows, segments, ancestors, starts):
        floats = [pt.as_tensor_variable(x).astype("float64")
                  for x in (beta, sd, y, n, w, offset, X)]
        ints = [pt.as_tensor_variable(x).astype("int64")
                for x in (rows, segments, ancestors, starts)]
        return Apply(self, floats + ints, [pt.dscalar(), floats[0].type(), floats[1].type()])

    def perform(self, node, inputs, outputs):
        value, grad_beta, grad_sd, _ = laplace_chain(self.poisson, *inputs)
        outputs[0][0] = np.asarray(value)
        outputs[1][0] = grad_beta
        outputs[2][0] = grad_sd

    def connection_pattern(self, node):
        return [[True, True, True], [True, True, True]] + [[False] * 3] * 9

    def pullback(self, inputs, outputs, output_grads):
        if any(not isinstance(g.type, DisconnectedType) for g in output_grads[1:]):
            raise NotImplementedError("the Laplace kernel has no second derivatives")
        g = output_grads[0]
        return [g * outputs[1], g * outputs[2]] + [disconnected_type() for _ in inputs[2:]]


# PyTensor's disk cache keys a compiled graph by its Ops' props, and numba's cache of the
# graph's function does not notice a change in the functions it calls: without this salt a
# graph compiled with an earlier version of the kernel kept running that version's code.
SOURCE_KEY = int(hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:15], 16)


@numba_basic.register_funcify_default_op_cache_key(LaplaceChain)
def _numba_laplace_chain(op, node, **kwargs):
    poisson = op.poisson

    @numba_basic.numba_njit
    def laplace(beta, sd, y, n, w, offset, X, rows, segments, ancestors, starts):
        value, grad_beta, grad_sd, _ = laplace_chain(poisson, beta, sd, y, n, w, offset, X,
                                                     rows, segments, ancestors, starts)
        return np.asarray(value), grad_beta, grad_sd

    return laplace, SOURCE_KEY
