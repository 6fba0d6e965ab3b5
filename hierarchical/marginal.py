"""Gaussian group effects integrated out analytically, then drawn exactly after sampling.

lme4's formulation (Bates, Maechler, Bolker & Walker 2015, JSS 67(1), section 3), for any
number of grouping factors, nested or crossed, with or without slopes. Write the effects as
u = Lambda a with a ~ N(0, I), Lambda block-diagonal with each level's Cholesky factor L_g,
and residuals r = y - X beta. Then, with M = I + Lambda' Z' Z Lambda / sigma^2 and
w = Lambda' Z' r / sigma^2,

    log p(y | beta, Lambda, sigma) = -1/2 [n log(2 pi sigma^2) + log det M
                                           + r'r / sigma^2 - w' M^-1 w]

and a | y ~ N(M^-1 w, M^-1) is drawn exactly after sampling. Every term is a function of
sufficient statistics (X'X, X'y, y'y, and Z'Z, Z'X, Z'y per level or pair of levels), so a
gradient costs nothing per row.

M is sparse. We factor it by blocks, the way a sparse Cholesky would with a fill-reducing
order: first the factor with the most effects ("eliminated", E), whose own block is
block-diagonal by level (k x k, factored entry by entry in closed form), then the Schur
complement S = M_RR - M_RE M_EE^-1 M_ER on the other factors R. S splits into independent
components (connected levels), each factored densely. This gives the three structures:

- one factor: no S at all;
- nested factors: E is the innermost; each component is one top-level level with what it
  contains (Oats, Pastes: 1 x 1; egsingle's schools: 2 x 2);
- two crossed factors: S is dense on the smaller one (Penicillin: 6 x 6; ScotsSec: 19 x 19).

Designs whose largest component is too big for a dense factor per gradient (InstEval's
1,128 lecturers crossed with 2,972 students) are not marginalised: ``unsupported`` says why.

With several factors and Normal priors beta is integrated out as well (``integrates_fixed``,
``integrated_loglik``): w is linear in beta, so one elimination of y and X's columns (beta =
COLUMNS) makes the likelihood quadratic in beta, and NUTS samples the variance parameters
only; beta is drawn exactly after sampling, before the effects.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from types import SimpleNamespace

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from . import names, spd
from .design import Design, GroupDesign
from .graph import coords, covariance_factor, family_parameters, fixed_effects_prior
from .graph import prior_parameter
from .graph import as_data as graph_data
from .linpred import group_cholesky
from .priors import PriorEntry

# The largest dense component, in effects, that a gradient may factor (about 1e7 flops);
# the dense factor is also unrolled entry by entry up to UNROLLED (no LAPACK to compile).
MAX_COMPONENT = 300
MAX_DENSE_FLOPS = 3e7
UNROLLED = 3


@dataclass
class Pairs:
    """Pairs of levels of two factors that share rows: sum over those rows of z_g z_h'.

    ``row`` and ``col`` locate each pair's block: for the eliminated factor its level; for
    the others the slot of the level's first effect (component x size + position), reduced
    to the position within the component for ``col``."""

    ZtZ: np.ndarray      # (P, k_g, k_h)
    row: np.ndarray      # (P,)
    col: np.ndarray      # (P,)
    aligned: bool = False   # row is 0, 1, ..., P - 1 (nested: one pair per eliminated level)


@dataclass
class Triples:
    """Pairs (p, q) of cross blocks E x g and E x h that meet in the same eliminated level:
    each adds -G_p' G_q to S at (row, col)."""

    left: np.ndarray     # (T,) index into the E x g blocks
    right: np.ndarray    # (T,) index into the E x h blocks
    row: np.ndarray      # (T,) slot of the g level
    col: np.ndarray      # (T,) position of the h level in its component
    aligned: bool = False   # left and right are 0, 1, ..., T - 1 (nested designs)
    weight: np.ndarray | None = None   # (T,) levels the shared eliminated class stands for


@dataclass
class Layout:
    """The elimination order and where every non-eliminated effect sits in S."""

    eliminated: int                  # index into design.groups
    rest: list[int]
    slot: dict[int, np.ndarray]      # rest factor -> (J_g,) slot of each level's first effect
    components: int                  # dense blocks: one or more packed components (`pack`)
    size: int                        # effects per block (the largest component's; padded)

    @property
    def dense_flops(self) -> float:
        return self.components * self.size ** 3 / 3


@dataclass
class SufficientStats:
    n: np.ndarray                    # the number of rows (their total weight), 0-d
    k: list[int]                     # effects per level, per factor
    XtX: np.ndarray
    Xty: np.ndarray
    yty: np.ndarray
    ZtX: list[np.ndarray]            # per factor (J_g, k_g, p)
    Zty: list[np.ndarray]            # per factor (J_g, k_g)
    ZtZ: np.ndarray                  # eliminated factor, per level (J_E, k_E, k_E)
    slot: dict[int, np.ndarray]      # see Layout
    within: dict[tuple[int, int], Pairs]    # (g, h) in rest, ordered; g == h: diagonal blocks
    cross: dict[int, Pairs]                 # E x g, g in rest
    triples: dict[tuple[int, int], Triples]
    layout: Layout
    classes: "Classes | None" = None   # the eliminated factor's levels merged (`compress`)


@dataclass
class Classes:
    """Levels of the eliminated factor merged into classes of equal Z'Z and equal cross
    blocks (the same parent levels, the same counts): they share M_EE's block and the cross
    blocks G, so per class the graph needs only how many levels it holds, the sums of their
    Z'r (linear terms: the Schur complement's v) and the sums of their products (the
    quadratic term w' M^-1 w). Per-level work in a gradient becomes per-class work."""

    multiplicity: np.ndarray   # (C,)
    moments: np.ndarray        # (C, k_E, k_E, 1 + p, 1 + p): sum of a_s a_t', a_s = [Z_s'y, Z_s'X]


def pair_index(a: GroupDesign, b: GroupDesign):
    """Level pairs of a and b present in the rows (a's level, b's level) and each row's pair."""
    key = a.codes.astype(np.int64) * len(b.levels) + b.codes
    unique, inverse = np.unique(key, return_inverse=True)
    return unique // len(b.levels), unique % len(b.levels), inverse


def _pair_sums(a: GroupDesign, b: GroupDesign, w: np.ndarray):
    """Level pairs of a and b present in the rows, and sum w z_a z_b' over each pair's rows.

    Pairs come from the rows, not the weights: rows weighted 0 keep their pairs (with zero
    sums), so every cross-validation fold has the structure of the full data."""
    left, right, inverse = pair_index(a, b)
    ka, kb = a.Z.shape[1], b.Z.shape[1]
    ZtZ = np.empty((len(left), ka, kb))
    for s in range(ka):
        for t in range(kb):
            ZtZ[:, s, t] = np.bincount(inverse, w * a.Z[:, s] * b.Z[:, t], minlength=len(left))
    return left, right, ZtZ


def _is_range(index: np.ndarray) -> bool:
    """Whether gathering with ``index`` changes nothing (0, 1, ..., n - 1): nested designs,
    where the graph can skip the gather and fuse the arithmetic around it."""
    return bool(np.array_equal(index, np.arange(len(index))))


def _incidence(rows: np.ndarray, cols: np.ndarray, shape) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)


def layout(design: Design) -> Layout:
    """Eliminate the factor with the most effects; group the others' levels into components
    (levels joined by shared rows or by a shared eliminated level), pack those into dense
    blocks (`pack`) and number their slots."""
    groups = design.groups
    effects = [len(g.levels) * g.Z.shape[1] for g in groups]
    E = max(range(len(groups)), key=lambda i: (effects[i], len(groups[i].levels)))
    rest = [i for i in range(len(groups)) if i != E]
    if not rest:
        return Layout(E, [], {}, 0, 0)
    offset = np.cumsum([0] + [len(groups[i].levels) for i in rest])
    start = dict(zip(rest, offset[:-1]))
    total = int(offset[-1])
    links = []
    for i in rest:   # every level joins the eliminated level of each of its rows
        links.append(_incidence(groups[E].codes, start[i] + groups[i].codes,
                                (len(groups[E].levels), total)))
    incidence = sum(links[1:], links[0]).tocsr()
    adjacency = (incidence.T @ incidence).tocsr()    # includes pairs sharing rows directly
    count, component = connected_components(adjacency, directed=False)
    k = np.concatenate([np.full(len(groups[i].levels), groups[i].Z.shape[1]) for i in rest])
    label = pack(np.bincount(component, k, minlength=count).astype(np.int64))[component]
    count = int(label.max()) + 1
    order = np.lexsort((np.arange(total), label))    # by block, then factor and level
    position = np.empty(total, dtype=np.int64)
    ends = np.zeros(count, dtype=np.int64)
    for node in order:                               # running position within the block
        position[node] = ends[label[node]]
        ends[label[node]] += k[node]
    size = int(ends.max())
    slot_all = label * size + position
    slot = {i: slot_all[start[i]:start[i] + len(groups[i].levels)] for i in rest}
    return Layout(E, rest, slot, count, size)


def pack(sizes: np.ndarray) -> np.ndarray:
    """The dense block of each component: components packed first-fit, largest first, into
    blocks as large as the largest one (the kernel factors equal-size blocks, and a block
    of several components is still exact: S has no entries between them). Padded each to
    the largest instead, STAR's 80 schools (students who changed schools join them into
    one component of 67 and eight of 1-4) made 9 blocks of 67, not 2."""
    capacity = int(sizes.max())
    block = np.empty(len(sizes), dtype=np.int64)
    room: list[int] = []
    for c in np.argsort(-sizes, kind="stable"):
        fits = next((b for b, free in enumerate(room) if free >= sizes[c]), None)
        if fits is None:
            fits = len(room)
            room.append(capacity)
        room[fits] -= int(sizes[c])
        block[c] = fits
    return block


def unsupported(design: Design) -> str | None:
    """Why the effects cannot be integrated out (None when they can)."""
    if design.spec.family != "gaussian":
        return f"the family is {design.spec.family!r}, not Gaussian"
    return unsupported_structure(design)


def unsupported_structure(design: Design) -> str | None:
    """Why the factors' effects cannot be eliminated by blocks (None when they can)."""
    if not design.groups:
        return "there is no grouping factor"
    if any(not g.term.pooled for g in design.groups):
        return "a factor has no pooling"
    if design.X.shape[1] == 0:
        return "the fixed part is empty"
    plan = layout(design)
    if plan.size > MAX_COMPONENT or plan.dense_flops > MAX_DENSE_FLOPS:
        other = ", ".join(design.groups[i].name for i in plan.rest)
        return (f"after integrating {design.groups[plan.eliminated].name!r} out, the effects of "
                f"{other} form {plan.components} dense block(s) of up to {plan.size} effects, "
                f"too costly per gradient (limit {MAX_COMPONENT})")
    return None


def sufficient_stats(design: Design) -> SufficientStats:
    """X'WX, X'Wy, y'Wy and the Z'WZ, Z'WX, Z'Wy blocks, W the frequency weights: a row of
    weight w counts as w copies of it (sharing its group effects), as in the unmarginalised
    graph, and a row of weight 0 as absent (cross-validation folds)."""
    plan = layout(design)
    groups, X, y = design.groups, design.X, design.y
    w = np.ones(len(y)) if design.weights is None else design.weights
    E = plan.eliminated
    ZtX, Zty = [], []
    for g in groups:
        J, k = len(g.levels), g.Z.shape[1]
        zx = np.empty((J, k, X.shape[1]))
        for s in range(k):
            for j in range(X.shape[1]):
                zx[:, s, j] = np.bincount(g.codes, w * g.Z[:, s] * X[:, j], minlength=J)
        ZtX.append(zx)
        Zty.append(np.stack([np.bincount(g.codes, w * g.Z[:, s] * y, minlength=J)
                             for s in range(k)], axis=1))
    _, _, ZtZ = _pair_sums(groups[E], groups[E], w)
    within, cross, triples = {}, {}, {}
    size = plan.size
    for i in plan.rest:
        for j in plan.rest:
            left, right, blocks = _pair_sums(groups[i], groups[j], w)
            if i == j or len(left):
                within[i, j] = Pairs(blocks, plan.slot[i][left], plan.slot[j][right] % size)
        level, right, blocks = _pair_sums(groups[E], groups[i], w)
        cross[i] = Pairs(blocks, level, plan.slot[i][right], _is_range(level))
    J_E = len(groups[E].levels)
    for i in plan.rest:
        for j in plan.rest:
            triples[i, j] = _triples(cross[i], cross[j], J_E, size)
    return SufficientStats(n=np.asarray(w.sum()), k=[g.Z.shape[1] for g in groups],
                           XtX=X.T @ (w[:, None] * X), Xty=X.T @ (w * y), yty=np.asarray(w @ (y * y)), ZtX=ZtX, Zty=Zty, ZtZ=ZtZ,
                           slot=plan.slot, within=within, cross=cross, triples=triples,
                           layout=plan)


def _triples(left: Pairs, right: Pairs, levels: int, size: int, multiplicity=None) -> Triples:
    """The pairs of ``left``'s and ``right``'s cross blocks that meet in the same eliminated
    level (or class: then weighted by the levels it stands for)."""
    a = _incidence(left.row, np.arange(len(left.row)), (levels, len(left.row)))
    b = _incidence(right.row, np.arange(len(right.row)), (levels, len(right.row)))
    found = (a.T @ b).tocoo()
    i, j = found.row.astype(np.int64), found.col.astype(np.int64)
    return Triples(i, j, left.col[i], right.col[j] % size, _is_range(i) and _is_range(j),
                   None if multiplicity is None else multiplicity[left.row[i]])


def compress(stats: SufficientStats) -> SufficientStats:
    """``stats`` with the eliminated factor's levels merged into `Classes` (for the graph;
    the effect draws need every level). Levels merge when their Z'Z blocks and their cross
    blocks (partner slots and Z'Z) are equal: repeated measures with few rows per subject
    leave few distinct ones (STAR: 10,732 students in 540 classes; egsingle: 1,721 children
    in 374). With no other factor the one-factor closed forms are kept."""
    plan = stats.layout
    if not plan.rest:
        return stats
    J = len(stats.ZtZ)
    signature = [[stats.ZtZ[j].tobytes()] for j in range(J)]
    for g, pairs in stats.cross.items():
        for level, col, block in zip(pairs.row, pairs.col, pairs.ZtZ):
            signature[level].append((g, int(col), block.tobytes()))
    ids: dict = {}
    label = np.array([ids.setdefault(tuple(sig), len(ids)) for sig in signature], dtype=np.int64)
    C, E = len(ids), plan.eliminated
    first = np.full(C, J, dtype=np.int64)
    np.minimum.at(first, label, np.arange(J))
    member = sp.csr_matrix((np.ones(J), (label, np.arange(J))), shape=(C, J))
    a = np.concatenate([stats.Zty[E][:, :, None], stats.ZtX[E]], axis=2)   # (J, k, 1 + p)
    k, cols = a.shape[1], a.shape[2]
    moments = np.empty((C, k, k, cols, cols))
    for s in range(k):
        for t in range(k):
            products = a[:, s, :, None] * a[:, t, None, :]
            moments[:, s, t] = (member @ products.reshape(J, -1)).reshape(C, cols, cols)
    cross = {}
    for g, pairs in stats.cross.items():
        keep = first[label[pairs.row]] == pairs.row             # the class's first level's pairs
        row = label[pairs.row[keep]]
        cross[g] = Pairs(pairs.ZtZ[keep], row, pairs.col[keep], _is_range(row))
    multiplicity = np.bincount(label, minlength=C).astype(float)
    triples = {(i, j): _triples(cross[i], cross[j], C, plan.size, multiplicity)
               for i, j in stats.triples}
    return replace(stats, ZtZ=stats.ZtZ[first],
                   Zty=[member @ v if g == E else v for g, v in enumerate(stats.Zty)],
                   ZtX=[(member @ v.reshape(J, -1)).reshape(C, *v.shape[1:]) if g == E else v
                        for g, v in enumerate(stats.ZtX)],
                   cross=cross, triples=triples, classes=Classes(multiplicity, moments))


def as_model_data(stats: SufficientStats) -> SufficientStats:
    """The statistics as ``pm.Data`` in the current model, named ``marginal:<stat>``.

    Held as data rather than constants, they reach the compiled function as arguments: the
    compile cost does not grow with the number of levels, and the numba cache serves every
    data set with the same structure. The first axis (levels, pairs) is left free.
    """
    def data(name: str, value):
        return graph_data(f"marginal:{name}", value)

    def record(prefix: str, item):
        def field(name: str):
            value = getattr(item, name)
            return value if name == "aligned" or value is None else data(f"{prefix}:{name}", value)
        return type(item)(**{f.name: field(f.name) for f in fields(item)})

    def key(pair):
        return ",".join(map(str, pair))

    return SufficientStats(
        n=data("n", stats.n), k=stats.k, XtX=data("XtX", stats.XtX), Xty=data("Xty", stats.Xty),
        yty=data("yty", stats.yty), ZtZ=data("ZtZ", stats.ZtZ),
        ZtX=[data(f"ZtX:{i}", v) for i, v in enumerate(stats.ZtX)],
        Zty=[data(f"Zty:{i}", v) for i, v in enumerate(stats.Zty)],
        slot={i: data(f"slot:{i}", v) for i, v in stats.slot.items()},
        within={p: record(f"within:{key(p)}", v) for p, v in stats.within.items()},
        cross={i: record(f"cross:{i}", v) for i, v in stats.cross.items()},
        triples={p: record(f"triples:{key(p)}", v) for p, v in stats.triples.items()},
        classes=None if stats.classes is None else record("classes", stats.classes),
        layout=stats.layout)


# --- the algebra, written once for numpy (leading batch axes: draws) and PyTensor ---------

def _scatter_numpy(size: int, index, values):
    batch = values.shape[:-1]
    count = int(np.prod(batch))
    flat = (np.arange(count)[:, None] * size + index[None, :]).ravel()
    out = np.bincount(flat, values.reshape(count, -1).ravel(), minlength=count * size)
    return out.reshape(*batch, size)


def _entrywise(ops, S, v, size: int):
    """The Cholesky factor F of each small block of S (entry by entry, as lists of arrays)
    and z = F^-1 v, v's last axis the block's effects: the dense solves' path up to UNROLLED
    effects, in numpy (draws) and in the graph."""
    F = _cholesky(ops, [[S[..., i, j] for j in range(size)] for i in range(size)], size)
    return F, _forward(F, [v[..., i] for i in range(size)], size)


def _dense_gram_numpy(S, v, size: int):
    """log det S (summed over components) and the Gram matrix v_a' S^-1 v_b of the columns
    of v (columns, ..., components, size), batched over the leading axes of S: entry-wise up
    to UNROLLED effects per component (LAPACK's per-matrix overhead on 4,000 draws x 131
    1 x 1 blocks took 0.6 s of Chem97's effect draws)."""
    if size <= UNROLLED:
        F, z = _entrywise(NUMPY, S, v, size)
        logdet = 2 * sum(np.log(F[a][a]).sum(axis=-1) for a in range(size))
        return logdet, sum(NUMPY.gram(za) for za in z)
    F = np.linalg.cholesky(S)
    logdet = 2 * np.log(np.diagonal(F, axis1=-2, axis2=-1)).sum(axis=(-2, -1))
    z = np.linalg.solve(F, v[..., None])[..., 0]
    return logdet, NUMPY.gram(NUMPY.flatten_components(z))


def _dense_solve_numpy(S, v, size: int, noise=None):
    """S^-1 v per component (plus S^-1/2 noise), batched over leading axes; entry-wise up to
    UNROLLED effects (see `_dense_gram_numpy`)."""
    if size <= UNROLLED:
        F, z = _entrywise(NUMPY, S, v, size)
        if noise is not None:
            e = noise(np.broadcast_shapes(S.shape[:-1], v.shape))
            z = [z[i] + e[..., i] for i in range(size)]
        return np.stack(_backward(F, z, size), axis=-1)
    F = np.linalg.cholesky(S)
    z = np.linalg.solve(F, v[..., None])[..., 0]
    if noise is not None:
        z = z + noise(z.shape)
    return np.linalg.solve(np.swapaxes(F, -1, -2), z[..., None])[..., 0]


def _dense_solve_pytensor(S, v, size: int, noise=None):
    """S^-1 v per component (PyTensor, no batch axes): entry-wise up to UNROLLED effects."""
    if size <= UNROLLED:
        F, z = _entrywise(PYTENSOR, S, v, size)
        return pt.stack(_backward(F, z, size), axis=-1)
    F = pt.linalg.cholesky(S)
    z = pt.linalg.solve_triangular(F, v[:, :, None], lower=True)
    return pt.linalg.solve_triangular(F.transpose(0, 2, 1), z, lower=False)[:, :, 0]


def _dense_gram_pytensor(S, v, size: int):
    """log det S (summed over components) and the Gram matrix v_a' S^-1 v_b of v's columns
    (PyTensor, v: (columns, components, size)): entry-wise up to UNROLLED effects per
    component, else one kernel (``spd.py``: no LAPACK to compile)."""
    if size <= UNROLLED:
        F, z = _entrywise(PYTENSOR, S, v, size)
        logdet = 2 * sum(pt.log(F[a][a]).sum() for a in range(size))
        return logdet, sum(PYTENSOR.gram(za) for za in z)
    return spd.logdet_gram(S, v.transpose(1, 2, 0))


def _scatter_pytensor(size: int, index, values):
    if values.ndim == 1:
        return pt.inc_subtensor(pt.zeros(size)[index], values)
    return pt.inc_subtensor(pt.zeros((values.shape[0], size))[:, index], values)


NUMPY = SimpleNamespace(sqrt=np.sqrt, log=np.log, concat=np.concatenate, stack=np.stack,
                        scatter=_scatter_numpy, dense_solve=_dense_solve_numpy,
                        dense_gram=_dense_gram_numpy,
                        unflatten=lambda x, shape: x.reshape(*x.shape[:-1], *shape),
                        flatten_components=lambda x: x.reshape(*x.shape[:-2], -1),
                        columns=lambda y, X: np.concatenate([y[None], X.T])[:, None, :],
                        gram=lambda z: np.einsum("a...j,b...j->...ab", z, z))
PYTENSOR = SimpleNamespace(
    sqrt=pt.sqrt, log=pt.log, concat=lambda parts, axis: pt.concatenate(parts, axis=axis),
    stack=lambda parts, axis: pt.stack(parts, axis=axis),
    scatter=_scatter_pytensor, dense_solve=_dense_solve_pytensor,
    dense_gram=_dense_gram_pytensor,
    unflatten=lambda x, shape: x.reshape([x.shape[i] for i in range(x.ndim - 1)] + list(shape)),
    flatten_components=lambda x: x.flatten(ndim=x.ndim - 1),
    columns=lambda y, X: pt.concatenate([y[None], X.T], axis=0),
    gram=lambda z: (z[:, None, :] * z[None, :, :]).sum(axis=-1))


def _entries(L, k: int):
    """L's entries as broadcastable (..., 1) tensors; zero above the diagonal is skipped."""
    return [[L[..., t, a][..., None] for a in range(k)] for t in range(k)]


def _scaled(Lg, kg: int, ZtZ, Lh, kh: int, sigma2):
    """(L_g' ZtZ L_h / sigma^2)[a][b] per pair, from ZtZ (P, k_g, k_h); L lower triangular."""
    return [[sum(Lg[t][a] * ZtZ[..., t, s] * Lh[s][b]
                 for t in range(a, kg) for s in range(b, kh)) / sigma2
             for b in range(kh)] for a in range(kg)]


def _cholesky(ops, M, k: int):
    """Entry-wise Cholesky factor of k x k blocks given as lists of vectors."""
    F = [[None] * k for _ in range(k)]
    for j in range(k):
        F[j][j] = ops.sqrt(M[j][j] - sum(F[j][t] ** 2 for t in range(j)))
        for i in range(j + 1, k):
            F[i][j] = (M[i][j] - sum(F[i][t] * F[j][t] for t in range(j))) / F[j][j]
    return F


def _forward(F, x, k: int):
    """Solve F y = x (F lower triangular, entry-wise)."""
    y = []
    for i in range(k):
        y.append((x[i] - sum(F[i][t] * y[t] for t in range(i))) / F[i][i])
    return y


def _backward(F, x, k: int):
    """Solve F' a = x (F lower triangular, entry-wise)."""
    a = [None] * k
    for i in reversed(range(k)):
        a[i] = (x[i] - sum(F[t][i] * a[t] for t in range(i + 1, k))) / F[i][i]
    return a


# ``beta`` for the right-hand sides y, X_1, ..., X_p on a leading axis ("columns"): every
# term is linear in the residual, so one elimination gives w for each, and beta integrates out
COLUMNS = "columns"


def _residual_stats(stats: SufficientStats, g: int, beta, ops=None):
    """Z_g' r per level and term: (..., J_g) vectors; Z_g' y when ``beta`` is None (the
    Laplace approximation's working response already has X beta taken out); Z_g' y and
    Z_g' X as (columns, ..., J_g) when ``beta`` is COLUMNS."""
    if beta is None:
        return [stats.Zty[g][..., t] for t in range(stats.k[g])]
    if isinstance(beta, str):
        return [ops.columns(stats.Zty[g][:, t], stats.ZtX[g][:, t, :]) for t in range(stats.k[g])]
    return [stats.Zty[g][:, t] - (stats.ZtX[g][:, t, :] * beta[..., None, :]).sum(axis=-1)
            for t in range(stats.k[g])]


def _whitened(L, r, k: int, sigma2):
    """(L' r / sigma^2)[a] for one factor's levels: its part of w."""
    return [sum(L[t][a] * r[t] for t in range(a, k)) / sigma2 for a in range(k)]


def _eliminated_system(stats: SufficientStats, beta, L, sigma2, ops=None):
    """M_EE and w_E of the eliminated factor, entry by entry (L: its entries)."""
    E = stats.layout.eliminated
    k = stats.k[E]
    block = _scaled(L, k, stats.ZtZ, L, k, sigma2)
    M = [[block[a][b] + (1.0 if a == b else 0.0) for b in range(k)] for a in range(k)]
    return M, _whitened(L, _residual_stats(stats, E, beta, ops), k, sigma2)


def _logdet_and_quadratic(F, y, k: int):
    """log det of F F' and |y|^2, summed over levels, from entry-wise F and y (PyTensor)."""
    return 2 * sum(pt.log(F[a][a]).sum() for a in range(k)), sum((ya ** 2).sum() for ya in y)


@dataclass
class Eliminated:
    """What the likelihood and the effect draws share: the factor of M_EE (F), its whitened
    w (y), the whitened cross blocks (G) and the Schur complement S with its v."""

    F: list
    y: list
    G: dict
    S: object = None      # (..., components, size, size)
    v: object = None      # (..., components, size)
    B: list | None = None   # merged levels (`Classes`): [s][t] of L M^-1 L' / sigma^4 per class


def eliminate(ops, stats: SufficientStats, beta, Ls: list, sigma) -> Eliminated:
    plan, k = stats.layout, stats.k
    E, kE = plan.eliminated, k[plan.eliminated]
    sigma2 = sigma ** 2
    L = [_entries(Lg, kg) for Lg, kg in zip(Ls, k)]
    LE = L[E]
    M, wE = _eliminated_system(stats, beta, LE, sigma2, ops)
    F = _cholesky(ops, M, kE)
    y = _forward(F, wE, kE)
    if not plan.rest:
        return Eliminated(F, y, {})
    size, count = plan.size, plan.components
    S_index, S_values, v_index, v_values = [], [], [], []
    for (g, h), pairs in stats.within.items():
        block = _scaled(L[g], k[g], pairs.ZtZ, L[h], k[h], sigma2)
        for a in range(k[g]):
            for b in range(k[h]):
                S_index.append((pairs.row + a) * size + pairs.col + b)
                S_values.append(block[a][b])
    G = {}
    for g, pairs in stats.cross.items():
        C = _scaled(LE, kE, pairs.ZtZ, L[g], k[g], sigma2)           # [c][b], (P,)
        at = (lambda x: x) if pairs.aligned else (lambda x, row=pairs.row: x[..., row])
        Fp = [[at(F[i][j]) if j <= i else None for j in range(kE)] for i in range(kE)]
        G[g] = [_forward(Fp, [C[c][b] for c in range(kE)], kE) for b in range(k[g])]  # [b][c]
        yp = [at(y[c]) for c in range(kE)]
        for b in range(k[g]):
            v_index.append(pairs.col + b)
            v_values.append(-sum(G[g][b][c] * yp[c] for c in range(kE)))
        wg = _whitened(L[g], _residual_stats(stats, g, beta, ops), k[g], sigma2)
        for a in range(k[g]):
            v_index.append(stats.slot[g] + a)
            v_values.append(wg[a])
    for (g, h), tri in stats.triples.items():
        left = (lambda x: x) if tri.aligned else (lambda x, i=tri.left: x[..., i])
        right = (lambda x: x) if tri.aligned else (lambda x, i=tri.right: x[..., i])
        for a in range(k[g]):
            for b in range(k[h]):
                S_index.append((tri.row + a) * size + tri.col + b)
                value = -sum(left(G[g][a][c]) * right(G[h][b][c]) for c in range(kE))
                S_values.append(value if tri.weight is None else value * tri.weight)
    S = ops.scatter(count * size * size, ops.concat(S_index, axis=0),
                    ops.concat(S_values, axis=-1))
    v = ops.scatter(count * size, ops.concat(v_index, axis=0), ops.concat(v_values, axis=-1))
    B = None if stats.classes is None else _class_quadratic_form(F, LE, kE, sigma2)
    return Eliminated(F, y, G, ops.unflatten(S, (count, size, size)) + np.eye(size),
                      ops.unflatten(v, (count, size)), B)


def _class_quadratic_form(F, L, k: int, sigma2):
    """B = L M^-1 L' / sigma^4 per class, entry-wise: w' M^-1 w = (Z'r)' B (Z'r) for each
    of a class's levels, so the class contributes sum_st B_st r' K_st r (K: its moments).
    From H = F^-1 L': B = H'H / sigma^4."""
    H = [_forward(F, [L[t][a] for a in range(k)], k) for t in range(k)]     # H[t][a]: column t
    return [[sum(H[s][a] * H[t][a] for a in range(k)) / sigma2 ** 2 for t in range(k)]
            for s in range(k)]


def _class_gram(stats: SufficientStats, B):
    """Q_E = sum over the eliminated levels of y y' (columns x columns), from the classes'
    moments (see `Classes`)."""
    K, k = stats.classes.moments, len(B)
    return sum((B[s][t][:, None, None] * K[:, s, t]).sum(axis=0)
               for s in range(k) for t in range(k))


def _class_logdet(stats: SufficientStats, F, k: int):
    """log det M_EE from the classes' factors: twice their log diagonal, each class counted
    once per level it stands for."""
    return 2 * sum((stats.classes.multiplicity * pt.log(F[a][a])).sum() for a in range(k))


def _dense_logdet_and_quadratic(S, v, size: int):
    """sum over components of log det S_c and v_c' S_c^-1 v_c (PyTensor)."""
    logdet, Q = _dense_gram_pytensor(S, v[None], size)
    return logdet, Q[0, 0]


def _one_factor_terms(stats: SufficientStats, beta, L, sigma):
    """log det M and w' M^-1 w for a single factor: closed forms for k <= 2 (intercepts,
    intercept + slope), which sample about twice as fast as the entry-wise Cholesky."""
    k = stats.k[0]
    M, w = _eliminated_system(stats, beta, _entries(L, k), sigma ** 2)
    if k == 1:
        return pt.log(M[0][0]).sum(), (w[0] ** 2 / M[0][0]).sum()
    if k == 2:
        a, b, c = M[0][0], M[1][0], M[1][1]
        det = a * c - b ** 2
        return pt.log(det).sum(), ((c * w[0] ** 2 - 2 * b * w[0] * w[1] + a * w[1] ** 2) / det).sum()
    F = _cholesky(PYTENSOR, M, k)
    return _logdet_and_quadratic(F, _forward(F, w, k), k)


def marginal_loglik(stats: SufficientStats, beta, Ls: list, sigma):
    """log p(y | beta, Sigma_g = L_g L_g', sigma) with every group effect integrated out
    (PyTensor). ``Ls``: one lower-triangular (k_g, k_g) factor per grouping factor.

    No dot or matmul: numba's BLAS-backed dot takes tens of seconds to compile cold, and
    these blocks are tiny; broadcast vector expressions compile in about a second."""
    if stats.layout.rest:
        parts = eliminate(PYTENSOR, stats, beta, Ls, sigma)
        kE = stats.k[stats.layout.eliminated]
        if stats.classes is None:
            logdet, quad = _logdet_and_quadratic(parts.F, parts.y, kE)
        else:             # the moments hold y and X's columns: r = (1, -beta) weighs them
            r = pt.concatenate([pt.ones((1,)), -beta])
            logdet = _class_logdet(stats, parts.F, kE)
            quad = (_class_gram(stats, parts.B) * r[:, None] * r[None, :]).sum()
        dense_logdet, dense_quad = _dense_logdet_and_quadratic(parts.S, parts.v,
                                                               stats.layout.size)
        logdet, quad = logdet + dense_logdet, quad + dense_quad
    else:
        logdet, quad = _one_factor_terms(stats, beta, Ls[0], sigma)
    rss = (stats.yty - 2 * (beta * stats.Xty).sum()
           + (stats.XtX * beta[:, None] * beta[None, :]).sum())
    return -0.5 * (stats.n * np.log(2 * np.pi) + 2 * stats.n * pt.log(sigma) + logdet
                   + rss / sigma ** 2 - quad)


def _logdet_and_gram(ops, stats: SufficientStats, parts: Eliminated):
    """log det M and the Gram matrix Q_ab = w_a' M^-1 w_b of the right-hand sides (y, then
    X's columns), both with leading batch axes; from an elimination with beta = COLUMNS."""
    kE = stats.k[stats.layout.eliminated]
    if stats.classes is None:
        logdet = 2 * sum(ops.log(parts.F[a][a]).sum(axis=-1) for a in range(kE))
        Q = sum(ops.gram(yc) for yc in parts.y)
    else:                                                 # the graph only (no batch axes)
        logdet, Q = _class_logdet(stats, parts.F, kE), _class_gram(stats, parts.B)
    if parts.S is not None:
        dense_logdet, dense_Q = ops.dense_gram(parts.S, parts.v, stats.layout.size)
        logdet, Q = logdet + dense_logdet, Q + dense_Q
    return logdet, Q


def _fixed_system(stats: SufficientStats, Q, sigma2, mu, tau):
    """beta's Gaussian posterior given the variance parameters, as precision P and P times
    its mean: P = X'X / sigma^2 - X'Z Lambda M^-1 Lambda' Z'X / sigma^4 + diag(tau^-2),
    likewise for the mean. Batch axes lead (sigma2: (..., 1))."""
    precision = 1 / tau ** 2
    P = stats.XtX / sigma2[..., None] - Q[..., 1:, 1:] + _diag(precision)
    m = stats.Xty / sigma2 - Q[..., 1:, 0] + precision * mu
    return P, m


def _diag(values):
    """diag(values) for numpy (the draws) or PyTensor (the graph)."""
    return np.diag(values) if isinstance(values, np.ndarray) else pt.diag(values)


def integrated_loglik(stats: SufficientStats, mu, tau, Ls: list, sigma):
    """log p(y | Sigma_g, sigma) with the group effects and beta ~ N(mu, diag(tau^2))
    integrated out (PyTensor): NUTS is left with the variance parameters only.

    With Q from one elimination of the p + 1 right-hand sides, the log likelihood is
    quadratic in beta, -1/2 [... + c - 2 b' beta + beta' A beta]; against its Normal prior,
    -1/2 [... + c + mu' D^-1 mu - m' P^-1 m + log det P + log det D], P = A + D^-1,
    m = b + D^-1 mu (the Gaussian integral; lme4's R_X, with the prior as a ridge)."""
    parts = eliminate(PYTENSOR, stats, COLUMNS, Ls, sigma)
    logdet, Q = _logdet_and_gram(PYTENSOR, stats, parts)
    sigma2 = sigma ** 2
    P, m = _fixed_system(stats, Q, pt.reshape(sigma2, (1,)), mu, tau)
    p = mu.type.shape[-1]
    logdet_P, mPm = _dense_gram_pytensor(P[None], m[None, None, :], p)
    return -0.5 * (stats.n * np.log(2 * np.pi) + 2 * stats.n * pt.log(sigma) + logdet
                   + stats.yty / sigma2 - Q[0, 0] + (mu ** 2 / tau ** 2).sum() - mPm[0, 0]
                   + logdet_P + 2 * pt.log(tau).sum())


def integrates_fixed(design: Design, entries: list[PriorEntry]) -> bool:
    """Whether beta integrates out with the effects: with two or more factors, when every
    fixed effect has a Normal prior (conjugate to the Gaussian likelihood; other priors
    leave beta to NUTS).

    Several factors share the intercept's information, which then runs along a ridge with
    their SDs: integrated, the lowest bulk ESS rose from 571 to 1,643 (Assay, 2 blocks) and
    from 523 to 983 (Chem97), and NUTS took 7.9 leapfrog steps per draw instead of 18.3
    (Assay); ScotsSec lost (1,709 -> 1,366: README, the lme4 bank). With one factor there
    is no such ridge, and the closed forms of `_one_factor_terms` keep the gradient cheaper
    (radon's intercepts: min ESS 2,048 sampled against 1,172 integrated)."""
    if len(design.groups) < 2:
        return False
    by_label = {e.label: e for e in entries}
    # mu and sigma given (the defaults): the prior grid swaps them as prior:beta:<param>
    priors = [by_label[t].prior for t in design.fixed_names]
    return all(p.dist == "Normal" and set(p.params) == {"mu", "sigma"} for p in priors)


def fixed_prior(design: Design, entries: list[PriorEntry]) -> tuple[np.ndarray, np.ndarray]:
    """beta's Normal prior means and SDs (see `integrates_fixed`)."""
    by_label = {e.label: e for e in entries}
    priors = [by_label[t].prior for t in design.fixed_names]
    return (np.array([float(p.params["mu"]) for p in priors]),
            np.array([float(p.params["sigma"]) for p in priors]))


def integrated_model(design: Design, entries: list[PriorEntry], loglik, name: str,
                     sample_fixed: bool = True) -> pm.Model:
    """A model whose group effects are integrated out: priors on each factor's covariance
    factor L_g (diag(sd) times the LKJ factor) and, if ``sample_fixed``, on beta; and
    ``loglik(beta, Ls, priors)`` as a Potential named ``<response>_<name>`` (beta None when
    not sampled). The effects (and beta) are drawn after sampling."""
    by_label = {e.label: e for e in entries}
    model_coords = {k: v for k, v in coords(design).items() if k != names.OBS_DIM}
    with pm.Model(coords=model_coords) as model:
        beta = fixed_effects_prior(design, by_label) if sample_fixed else None
        Ls = []
        for g in design.groups:
            sd, chol = covariance_factor(g, by_label)
            Ls.append(pt.diag(sd) if chol is None else sd[:, None] * chol)
        pm.Potential(f"{names.observed_name(design)}_{name}", loglik(beta, Ls, by_label))
    return model


def build_marginal_model(design: Design, entries: list[PriorEntry], stats) -> pm.Model:
    """The Gaussian model with every factor's effects integrated out, and beta too when its
    prior is Normal (`integrates_fixed`).

    Free variables: <g>_sd and <g>_corr_chol (if correlated) per factor, sigma, and beta
    unless integrated; the likelihood is a Potential named after the response. The effects
    (and an integrated beta) are drawn after sampling.
    """
    sample_fixed = not integrates_fixed(design, entries)
    stats = compress(stats)

    def loglik(beta, Ls, by_label):
        sigma = family_parameters(design, by_label)[names.SIGMA]
        if sample_fixed:
            return marginal_loglik(as_model_data(stats), beta, Ls, sigma)
        mu, tau = fixed_prior(design, entries)
        return integrated_loglik(as_model_data(stats), prior_parameter(names.FIXED, "mu", mu),
                                 prior_parameter(names.FIXED, "sigma", tau), Ls, sigma)

    return integrated_model(design, entries, loglik, "marginal", sample_fixed)


DRAW_BLOCK = 1 << 22   # values per block of draws


def in_blocks(total: int, step: int, rng: np.random.Generator, draw_block) -> None:
    """``draw_block(rows, generator)`` for each slice of ``step`` of ``total`` draws, on as
    many threads as there are cores (numpy releases the GIL in its array loops: egsingle's
    effect draws 2.4-2.6 -> 1.4-1.7 s on 2 cores). Each block gets its own generator and
    writes only its own rows, so the numbers do not depend on which thread ran which block."""
    blocks = [slice(start, start + step) for start in range(0, total, step)]
    with ThreadPoolExecutor(min(len(blocks), os.cpu_count() or 1) or 1) as pool:
        list(pool.map(draw_block, blocks, rng.spawn(len(blocks))))


def _posterior_factors(posterior, design: Design, stats: SufficientStats):
    """sigma as (draws, 1) and each factor's covariance factor L_g, (draws, k_g, k_g)."""
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    sigma = posterior[names.SIGMA].values.reshape(-1, 1)
    return sigma, [group_cholesky(posterior, g.name, kg).reshape(chains * draws, kg, kg)
                   for g, kg in zip(design.groups, stats.k)]


def _fixed_draws_and_parts(stats: SufficientStats, Ls, sigma, prior, rng):
    """An integrated beta drawn given each draw of a block, beta | Sigma, sigma, y ~
    N(P^-1 m, P^-1) (`_fixed_system`), and the elimination at that beta: one elimination of
    the p + 1 right-hand sides serves both, w being linear in beta."""
    parts = eliminate(NUMPY, stats, COLUMNS, Ls, sigma)
    _, Q = _logdet_and_gram(NUMPY, stats, parts)
    P, m = _fixed_system(stats, Q, sigma ** 2, *prior)
    beta = _dense_solve_numpy(P, m, P.shape[-1], rng.standard_normal)

    def at_beta(w):                  # (p + 1, draws, ...) -> w_y - sum_j beta_j w_j
        return w[0] - np.einsum("jd...,dj->d...", w[1:], beta)

    return beta, Eliminated(parts.F, [at_beta(yc) for yc in parts.y], parts.G, parts.S,
                            None if parts.v is None else at_beta(parts.v))


def draw_effects(posterior, design: Design, stats: SufficientStats, rng: np.random.Generator,
                 entries: list[PriorEntry] | None = None) -> dict[str, np.ndarray]:
    """Exact draws of every factor's effects given each posterior draw:
    {factor: (chain, draw, J, k)}. Whitened a ~ N(M^-1 w, M^-1) by blocks: the rest's
    a_R ~ N(S^-1 v, S^-1), then a_E | a_R ~ N(M_EE^-1 (w_E - M_ER a_R), M_EE^-1); u = L a.

    When beta was integrated out too (not in the posterior), it is drawn first, from its
    Normal prior in ``entries``, and returned under ``names.FIXED``, (chain, draw, p)."""
    plan, k = stats.layout, stats.k
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    integrated = names.FIXED not in posterior
    if integrated:
        prior = fixed_prior(design, entries)
        beta = np.empty((chains * draws, len(prior[0])))
    else:
        beta = posterior[names.FIXED].values.reshape(chains * draws, -1)
    sigma, Ls = _posterior_factors(posterior, design, stats)
    width = len(design.groups[plan.eliminated].levels) + sum(len(t.left) for t in stats.triples.values()) \
        + plan.components * plan.size ** 2
    if integrated:
        width *= beta.shape[1] + 1
    step = max(1, DRAW_BLOCK // max(width, 1))
    out = {g.name: np.empty((chains * draws, len(g.levels), kg))
           for g, kg in zip(design.groups, k)}
    def draw_block(block: slice, block_rng: np.random.Generator) -> None:
        block_Ls = [L[block] for L in Ls]
        if integrated:
            beta[block], parts = _fixed_draws_and_parts(stats, block_Ls, sigma[block], prior,
                                                        block_rng)
        else:
            parts = eliminate(NUMPY, stats, beta[block], block_Ls, sigma[block])
        a = [np.stack(ag, axis=-1)
             for ag in solve_whitened(NUMPY, stats, parts, block_rng.standard_normal)]
        for g, kg, L, ag in zip(design.groups, k, block_Ls, a):
            # u = L a for every level: one batched matmul (einsum took 0.39 s of egsingle's draws)
            out[g.name][block] = np.matmul(ag, np.swapaxes(L, -1, -2))

    in_blocks(chains * draws, step, rng, draw_block)
    drawn = {name: u.reshape(chains, draws, *u.shape[1:]) for name, u in out.items()}
    if integrated:
        drawn[names.FIXED] = beta.reshape(chains, draws, -1)
    return drawn


def solve_whitened(ops, stats: SufficientStats, parts: Eliminated, noise=None) -> list[list]:
    """a = M^-1 w, plus M^-1/2 times standard normals from ``noise(shape)`` when given (an
    exact draw): per factor, one (..., J_g) vector per term. By blocks: the rest's
    a_R = S^-1 v, then a_E = M_EE^-1 (w_E - M_ER a_R), whitened by F."""
    plan, k = stats.layout, stats.k
    E, kE = plan.eliminated, k[plan.eliminated]
    a = [None] * len(k)
    rhs = list(parts.y) if noise is None else [yc + noise(yc.shape) for yc in parts.y]
    if parts.S is not None:
        aR = ops.flatten_components(ops.dense_solve(parts.S, parts.v, plan.size, noise))
        for g, pairs in stats.cross.items():                       # w_E - M_ER a_R, whitened
            for c in range(kE):
                push = sum(parts.G[g][b][c] * aR[..., pairs.col + b] for b in range(k[g]))
                rhs[c] = rhs[c] - ops.scatter(rhs[c].shape[-1], pairs.row, push)
        for g in plan.rest:
            a[g] = [aR[..., stats.slot[g] + b] for b in range(k[g])]
    a[E] = _backward(parts.F, rhs, kE)
    return a
