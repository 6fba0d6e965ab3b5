"""Group effects of Poisson and logit GLMMs integrated out by an embedded Laplace
approximation (``Model(..., marginalize="laplace")``).

NUTS then samples only the fixed effects and the variance components; the effects are
drawn afterwards from the approximation's Gaussian. As in lme4's ``glmer`` (Bates et al.
2015), Stan's ``laplace_marginal`` and INLA (Rue, Martino & Chopin 2009), with the effects
whitened, u = Lambda a and a ~ N(0, I):

    log p(y | theta) ~= log p(y | a*) - |a*|^2 / 2 - log det H / 2,
    H = I + Lambda' Z' W Z Lambda,

where a* is the mode of log p(y | a) - |a|^2 / 2 and W the rows' negative second derivative
of the log likelihood in eta. H has the sparsity of the Gaussian model's M, with the
rows weighted by W, so it is factored by the same blocks (``marginal.eliminate``): nested
designs by top-level level, two crossed factors by a Schur complement.

Nested random intercepts (the designs "auto" takes it for) run as one compiled kernel,
``laplace_chain.py``: Newton's method to convergence and the gradient in closed form. The
rest of this module is the general case, written as a PyTensor graph.

**The mode** is found by Newton's method (IRLS: canonical links only, where the observed
and expected information agree), a fixed number of steps inside the log density, started
from the working response of the data (as glm() starts). **The gradient** follows from the
implicit function theorem (Margossian et al. 2020): the steps are cut from the gradient
graph and one more Newton step, differentiable, is taken from their result. At the mode
the step's derivative in theta is -H^-1 d(grad)/d theta, the implicit derivative of a*,
so reverse mode costs about two factorisations, not the unrolled iterations.

**Accuracy.** The approximation is that of glmer's default (nAGQ = 1). It is good when each
effect is informed by many observations or large counts, and poor for binary data with
small clusters (Breslow & Lin 1995; Joe 2008: the bias of the variance components grows as
the cluster size falls). ``draw_effects`` checks the mode at every posterior draw and warns
when the fixed steps had not converged.

**When "auto" takes it** (`automatic`): nested factors are where sampled effects mix worst,
because a level's effect and its parent's trade variance along the same rows (the lme4
bank's grouseticks and Contraception did not converge in 4 x 1000 draws with any
parameterisation tried; Contraception's nested rows are 16 to 26 trials per level). So
"auto" integrates by Laplace when the pooled factors form one nesting tree (each nested in
the next), the model is one this module takes, and every factor has a median of at least
MIN_TRIALS_PER_LEVEL trials (binomial) or MIN_COUNT_PER_LEVEL counts (Poisson) per level.
Measured against exact NUTS (4 x 10,000 draws): Contraception's and grouseticks' fixed
effects and SDs moved by at most 0.14 and 0.09 posterior SD, with posterior SDs within 5%
(grouseticks' chicks: a median of 2 ticks, 31% of them none). On Brooks et al.'s
salamanders, whose observation-level factor has a median of 0 counts (60% of rows are 0),
it moved the site SD by 1 posterior SD (0.65 to 0.49) and shrank the fixed effects' SDs by
15-20%: the effect of a zero count has a skewed conditional, far from Gaussian. Crossed
designs stay sampled: their Schur complement costs a scatter over every level pair (VerbAgg:
5 ms per gradient), and sampled effects converge there. The parameterisation table says which
was taken and why.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from . import laplace_chain, marginal, names
from .design import Design, parents
from .graph import design_data
from .graph import as_data as graph_data
from .linpred import group_cholesky
from .marginal import NUMPY, PYTENSOR, SufficientStats, eliminate, solve_whitened
from .priors import PriorEntry
from .stop_gradient import stop_gradient

# (family, link) pairs whose Newton step is IRLS
SUPPORTED = {("poisson", "log"), ("bernoulli", "logit"), ("binomial", "logit")}
# the median trials per level (binomial) and counts per level (Poisson) below which "auto"
# keeps the effects sampled (see "When auto takes it")
MIN_TRIALS_PER_LEVEL = 10
MIN_COUNT_PER_LEVEL = 2
# Newton steps inside the log density after the start; the last is the differentiable one
NEWTON_STEPS = 6
# the largest change in any whitened effect, in the step after the log density's, that
# counts as converged when the effects are drawn (a warning beyond it)
TOLERANCE = 1e-6


def unsupported(design: Design) -> str | None:
    """Why the effects cannot be integrated out by the Laplace approximation (None: they can)."""
    family = design.spec.family_object
    if (design.spec.family, family.link.name) not in SUPPORTED:
        return (f"the Laplace approximation takes Poisson (log link) and Bernoulli or binomial "
                f"(logit link) models, not {design.spec.family} with link {family.link.name!r}")
    return marginal.unsupported_structure(design)


def automatic(design: Design) -> str | None:
    """Why ``marginalize="auto"`` keeps the effects sampled (None: it integrates them out by
    Laplace): see "When auto takes it" above."""
    if len(design.groups) < 2:
        return "one grouping factor (its effects sample well: see parameterisation.py)"
    if list(parents(design).values()).count(None) != 1:
        return "the factors are not nested in one another"
    reason = unsupported(design)
    if reason is not None:
        return reason
    if design.spec.family == "poisson":
        per_level, least, what = design.y, MIN_COUNT_PER_LEVEL, "counts"
    else:
        per_level = np.ones(design.n) if design.trials is None else design.trials
        least, what = MIN_TRIALS_PER_LEVEL, "trials"
    for g in design.groups:
        median = float(np.median(np.bincount(g.codes, weights=per_level)))
        if median < least:
            return (f"small clusters: {g.name!r} has a median of {median:g} {what} per level "
                    f"(the approximation wants {least})")
    return None


@dataclass
class Rows:
    """The rows, as data: response, trials, offset, fixed part, each factor's codes and Z,
    and which level pair of each Pairs block a row adds to."""

    y: object
    trials: object            # None for Poisson
    offset: object            # None without one
    weights: object           # frequency weights (0 holds a row out: cross-validation); None
    X: object
    codes: list
    Z: list
    within: dict              # (g, h) -> row's pair
    cross: dict               # g -> row's pair


def structure(design: Design) -> SufficientStats:
    """The block layout and level pairs of the design (the Gaussian statistics are unused)."""
    return marginal.sufficient_stats(replace(design, weights=None))


def _row_pairs(design: Design, stats: SufficientStats) -> tuple[dict, dict]:
    groups, E = design.groups, stats.layout.eliminated
    within = {(g, h): marginal.pair_index(groups[g], groups[h])[2] for g, h in stats.within}
    cross = {g: marginal.pair_index(groups[E], groups[g])[2] for g in stats.cross}
    return within, cross


def model_rows(design: Design, stats: SufficientStats) -> Rows:
    within, cross = _row_pairs(design, stats)

    def pairs(name, index):
        return graph_data(f"laplace:{name}", index)

    return Rows(
        y=pm.Data(names.observed_data(names.observed_name(design)), design.y),
        trials=None if design.trials is None else design_data("trials", design.trials),
        offset=None if design.offset is None else design_data("offset", design.offset),
        weights=None if design.weights is None else design_data("weights", design.weights),
        X=design_data("X", design.X),
        codes=[design_data(f"{g.name}:codes", g.codes) for g in design.groups],
        Z=[design_data(f"{g.name}:Z", g.Z) for g in design.groups],
        within={p: pairs(f"within:{p[0]},{p[1]}", v) for p, v in within.items()},
        cross={g: pairs(f"cross:{g}", v) for g, v in cross.items()})


def numpy_rows(design: Design, stats: SufficientStats) -> Rows:
    within, cross = _row_pairs(design, stats)
    return Rows(y=design.y, trials=design.trials, offset=design.offset,
                weights=design.weights, X=design.X,
                codes=[g.codes for g in design.groups], Z=[g.Z for g in design.groups],
                within=within, cross=cross)


# --- the family: log likelihood in eta, its score and W, and the IRLS start ---------------

class Likelihood:
    """Per row: log likelihood up to a constant, score d/d eta and W = -d^2/d eta^2, each
    times the row's frequency weight."""

    def __init__(self, family: str, rows: Rows, ops):
        self.poisson = family == "poisson"
        self.rows, self.ops = rows, ops
        self.trials = 1.0 if rows.trials is None else rows.trials
        self.weights = 1.0 if rows.weights is None else rows.weights

    def loglik(self, eta):
        y = self.rows.y
        if self.poisson:
            return self.weights * (y * eta - self.ops.exp(eta))
        return self.weights * (y * eta - self.trials * self.ops.softplus(eta))

    def score_and_weight(self, eta):
        if self.poisson:
            mu = self.ops.exp(eta)
            return self.weights * (self.rows.y - mu), self.weights * mu
        p = self.ops.sigmoid(eta)
        return (self.weights * (self.rows.y - self.trials * p),
                self.weights * self.trials * p * (1 - p))

    def start(self):
        """eta and W of the data themselves, as glm() starts IRLS: mu = y + 1/2 (counts),
        p = (y + 1/2) / (n + 1) (binomial)."""
        y = self.rows.y
        if self.poisson:
            mu = y + 0.5
            return self.ops.log(mu), self.weights * mu
        p = (y + 0.5) / (self.trials + 1.0)
        return self.ops.log(p) - self.ops.log1p(-p), self.weights * self.trials * p * (1 - p)


OPS = {"numpy": SimpleNamespace(exp=np.exp, log=np.log, log1p=np.log1p, where=np.where,
                                softplus=lambda x: np.logaddexp(0.0, x),
                                sigmoid=lambda x: 0.5 * (1 + np.tanh(0.5 * x))),
       "pytensor": SimpleNamespace(exp=pt.exp, log=pt.log, log1p=pt.log1p, where=pt.switch,
                                   softplus=pt.softplus, sigmoid=pt.sigmoid)}


# --- the Newton step on the whitened effects ---------------------------------------------

def _entries(Ls, k):
    return [marginal._entries(L, kg) for L, kg in zip(Ls, k)]


def effects_on_rows(a: list, L: list, rows: Rows, k: list[int]):
    """sum_g Z_g u_g on the rows, u_g = L_g a_g per level (a: per factor, per term)."""
    total = 0.0
    for g, kg in enumerate(k):
        for t in range(kg):
            u_t = sum(L[g][t][b] * a[g][b] for b in range(t + 1))      # (..., J_g)
            total = total + u_t[..., rows.codes[g]] * rows.Z[g][:, t]
    return total


def weighted_stats(ops, stats: SufficientStats, rows: Rows, W, t) -> SufficientStats:
    """``stats`` with Z'WZ by level and level pair, and Z' t, from the rows (t: the working
    response times W)."""
    k, E = stats.k, stats.layout.eliminated

    def sums(size, index, left, right, values):
        return ops.stack([ops.stack([ops.scatter(size, index, values * rows.Z[left][:, s]
                                                 * rows.Z[right][:, r])
                                     for r in range(k[right])], axis=-1)
                          for s in range(k[left])], axis=-2)

    J = [stats.ZtX[g].shape[0] for g in range(len(k))]     # levels per factor (data's length)
    return replace(
        stats,
        ZtZ=sums(J[E], rows.codes[E], E, E, W),
        Zty=[ops.stack([ops.scatter(J[g], rows.codes[g], t * rows.Z[g][:, s])
                        for s in range(k[g])], axis=-1) for g in range(len(k))],
        within={p: replace(pairs, ZtZ=sums(pairs.row.shape[0], rows.within[p], p[0], p[1], W))
                for p, pairs in stats.within.items()},
        cross={g: replace(pairs, ZtZ=sums(pairs.row.shape[0], rows.cross[g], E, g, W))
               for g, pairs in stats.cross.items()})


def newton_step(ops, stats, rows, Ls, L, W, t):
    """The whitened effects solving H a = Lambda' Z' t, H = I + Lambda' Z' W Z Lambda, with
    the system and its block factor (to draw from N(a, H^-1))."""
    system = weighted_stats(ops, stats, rows, W, t)
    parts = eliminate(ops, system, None, Ls, 1.0)
    return solve_whitened(ops, system, parts), system, parts


def _iterate(ops, family_ops, stats, rows, Ls, eta_fixed, steps: int, family: str):
    """Newton's method from the data's working response: the effects after ``steps``
    steps, the first ones with a line search."""
    like = Likelihood(family, rows, family_ops)
    L = _entries(Ls, stats.k)
    eta0, W = like.start()
    a = newton_step(ops, stats, rows, Ls, L, W, W * (eta0 - eta_fixed))[0]
    for i in range(steps):
        if i < SEARCHED_STEPS:
            a = _searched_step(ops, family_ops, like, stats, rows, Ls, L, eta_fixed, a)
        else:
            a = _step_from(ops, like, stats, rows, Ls, L, eta_fixed, a)[0]
    return a, like, L


# Far from the mode, where NUTS's warm-up starts, full logit or Poisson Newton steps can
# overshoot and oscillate for ever (contraception at a warm-up point: steps of 35 in
# whitened units, never settling, and two of four chains stuck there). So the first
# SEARCHED_STEPS steps take the best of STEP_LENGTHS along Newton's direction (a
# backtracking line search); near the mode full steps win and convergence is quadratic.
# Each trial length costs a pass over the rows (a softplus or exp per row: about 23 us
# on contraception's 1,547 rows), so the last steps are plain Newton steps. A trust region
# on eta instead (no row passes) converged too slowly from warm-up points: two of four
# chains stuck again.
STEP_LENGTHS = (1.0, 0.5, 0.25, 0.125)
SEARCHED_STEPS = 3


def _searched_step(ops, family_ops, like, stats, rows, Ls, L, eta_fixed, a):
    """One Newton step from a, of the length in STEP_LENGTHS that maximises
    log p(y | a) - |a|^2 / 2 (one row pass per length: eta is linear in a)."""
    full = _step_from(ops, like, stats, rows, Ls, L, eta_fixed, a)[0]
    delta = [[n - o for n, o in zip(fg, ag)] for fg, ag in zip(full, a)]
    eta_a = eta_fixed + effects_on_rows(a, L, rows, stats.k)
    eta_d = effects_on_rows(delta, L, rows, stats.k)
    aa = sum((v * v).sum(axis=-1) for ag in a for v in ag)
    ad = sum((v * d).sum(axis=-1) for ag, dg in zip(a, delta) for v, d in zip(ag, dg))
    dd = sum((d * d).sum(axis=-1) for dg in delta for d in dg)
    best_t, best_f = None, None
    for t in STEP_LENGTHS:
        f = like.loglik(eta_a + t * eta_d).sum(axis=-1) - 0.5 * (aa + 2 * t * ad + t * t * dd)
        if best_t is None:     # one length per draw (numpy batches draws)
            best_t, best_f = t + 0 * f, f
        else:
            better = f > best_f
            best_t, best_f = family_ops.where(better, t, best_t), family_ops.where(better, f, best_f)
    return [[v + best_t[..., None] * d for v, d in zip(ag, dg)] for ag, dg in zip(a, delta)]


def _step_from(ops, like, stats, rows, Ls, L, eta_fixed, a):
    """One Newton step from a: W and the score at eta = eta_fixed + Z Lambda a."""
    zu = effects_on_rows(a, L, rows, stats.k)
    score, W = like.score_and_weight(eta_fixed + zu)
    return newton_step(ops, stats, rows, Ls, L, W, W * zu + score)


def _fixed_part(rows: Rows, beta):
    """X beta (+ offset) on the rows, for beta (p,) or a batch of draws (..., p)."""
    eta = (rows.X * beta[..., None, :]).sum(axis=-1)
    return eta if rows.offset is None else eta + rows.offset


def laplace_loglik(stats: SufficientStats, rows: Rows, beta, Ls: list, family: str):
    """The Laplace approximation to log p(y | beta, Sigma_g = L_g L_g') (PyTensor)."""
    eta_fixed = _fixed_part(rows, beta)
    a, like, L = _iterate(PYTENSOR, OPS["pytensor"], stats, rows, Ls, eta_fixed,
                          NEWTON_STEPS - 1, family)
    a = [[stop_gradient(v) for v in ag] for ag in a]
    a = _step_from(PYTENSOR, like, stats, rows, Ls, L, eta_fixed, a)[0]   # implicit gradient
    zu = effects_on_rows(a, L, rows, stats.k)
    _, W = like.score_and_weight(eta_fixed + zu)
    parts = eliminate(PYTENSOR, weighted_stats(PYTENSOR, stats, rows, W, W), None, Ls, 1.0)
    logdet, _ = marginal._logdet_and_quadratic(parts.F, parts.y, stats.k[stats.layout.eliminated])
    if parts.S is not None:
        logdet = logdet + marginal._dense_logdet_and_quadratic(parts.S, parts.v,
                                                               stats.layout.size)[0]
    prior = sum((v ** 2).sum() for ag in a for v in ag)
    return like.loglik(eta_fixed + zu).sum() - 0.5 * prior - 0.5 * logdet


def build_laplace_model(design: Design, entries: list[PriorEntry],
                        stats: SufficientStats, *, kernel: bool = True) -> pm.Model:
    """The GLMM with every factor's effects integrated out by the Laplace approximation.

    Free variables: beta, <g>_sd and <g>_corr_chol (if correlated) per factor; the
    approximate likelihood is a Potential named after the response. The effects are drawn
    after sampling (``draw_effects``). A nesting chain of one effect per level takes the
    compiled kernel of ``laplace_chain`` (unless ``kernel=False``: JAX cannot run it), any
    other design the PyTensor graph below.
    """
    order = laplace_chain.chain(design) if kernel else None

    def loglik(beta, Ls, by_label):
        if order is not None:
            return chain_loglik(design, order, beta, Ls)
        return laplace_loglik(marginal.as_model_data(stats), model_rows(design, stats), beta,
                              Ls, design.spec.family)

    return marginal.integrated_model(design, entries, loglik, "laplace")


def chain_loglik(design: Design, order: list[int], beta, Ls):
    """The Laplace log likelihood of a nesting chain by the compiled kernel, its arrays held
    as data (``laplace:<array>``)."""
    arrays = laplace_chain.chain_arrays(design, order)
    y = pm.Data(names.observed_data(names.observed_name(design)), design.y)
    ones = pt.ones_like(y, dtype="float64")
    trials = ones if design.trials is None else design_data("trials", design.trials)
    weights = ones if design.weights is None else design_data("weights", design.weights)
    offset = 0.0 * ones if design.offset is None else design_data("offset", design.offset)
    sd = pt.stack([Ls[g][0, 0] for g in order])
    data = {name: graph_data(f"laplace:{name}", value, free_first_axis=name != "starts")
            for name, value in arrays.items()}
    value, _, _ = laplace_chain.LaplaceChain(design.spec.family == "poisson")(
        beta, sd, y, trials, weights, offset, design_data("X", design.X), data["rows"],
        data["segments"], data["ancestors"], data["starts"])
    return value


DRAW_BLOCK = 1 << 21   # values per block of draws


def draw_effects(posterior, design: Design, stats: SufficientStats,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each factor's effects drawn from the approximation's Gaussian, N(a*, H^-1), at every
    posterior draw: {factor: (chain, draw, J, k)}. The mode is found again, with the steps
    the log density took and one more; a step still larger than TOLERANCE means the
    density NUTS sampled was not at the mode there, and is reported (RuntimeWarning)."""
    order = laplace_chain.chain(design)
    if order is not None:
        return _draw_chain_effects(posterior, design, order, rng)
    k = stats.k
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    beta = posterior[names.FIXED].values.reshape(chains * draws, -1)
    Ls = [group_cholesky(posterior, g.name, kg).reshape(chains * draws, kg, kg)
          for g, kg in zip(design.groups, k)]
    rows = numpy_rows(design, stats)
    step = max(1, DRAW_BLOCK // max(design.n, 1))
    out = {g.name: np.empty((chains * draws, len(g.levels), kg))
           for g, kg in zip(design.groups, k)}
    worst = np.empty(chains * draws)

    def draw_block(block: slice, block_rng: np.random.Generator) -> None:
        L_block = [L[block] for L in Ls]
        eta_fixed = _fixed_part(rows, beta[block])
        a, like, L = _iterate(NUMPY, OPS["numpy"], stats, rows, L_block, eta_fixed,
                              NEWTON_STEPS, design.spec.family)
        mode, system, parts = _step_from(NUMPY, like, stats, rows, L_block, L, eta_fixed, a)
        worst[block] = np.max([np.abs(m - prev).max(axis=-1)
                               for mg, ag in zip(mode, a) for m, prev in zip(mg, ag)], axis=0)
        drawn = solve_whitened(NUMPY, system, parts, block_rng.standard_normal)
        for g, ag, Lg in zip(design.groups, drawn, L_block):
            out[g.name][block] = np.matmul(np.stack(ag, axis=-1), np.swapaxes(Lg, -1, -2))

    marginal.in_blocks(chains * draws, step, rng, draw_block)
    unconverged = worst > TOLERANCE
    if unconverged.any():
        warnings.warn(f"Laplace approximation: Newton's method had not reached the mode of "
                      f"the group effects after {NEWTON_STEPS} steps at "
                      f"{unconverged.mean():.1%} of the posterior draws (largest step left "
                      f"{worst.max():.2g}); the density sampled there is approximate",
                      RuntimeWarning, stacklevel=3)
    return {name: u.reshape(chains, draws, *u.shape[1:]) for name, u in out.items()}


def _draw_chain_effects(posterior, design: Design, order: list[int],
                        rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``draw_effects`` for a nesting chain of random intercepts, by the compiled kernel:
    Newton's method to convergence at every draw (a warning where it had not converged)."""
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    beta = posterior[names.FIXED].values.reshape(chains * draws, -1)
    sd = np.stack([posterior[names.sd(design.groups[g].name)].values.reshape(chains * draws)
                   for g in order], axis=1)
    data = laplace_chain.kernel_arguments(design, order)
    starts = data[-1]
    u = np.empty((chains * draws, starts[-1]))
    steps = np.empty(chains * draws, dtype=np.int64)
    block = max(1, DRAW_BLOCK // int(starts[-1]))
    for start in range(0, chains * draws, block):
        part = slice(start, start + block)
        normals = rng.standard_normal((len(beta[part]), starts[-1]))
        u[part], steps[part] = laplace_chain.chain_effects(
            design.spec.family == "poisson", beta[part], sd[part], *data, normals)
    unconverged = steps > laplace_chain.MAX_STEPS
    if unconverged.any():
        warnings.warn(f"Laplace approximation: Newton's method had not reached the mode of "
                      f"the group effects after {laplace_chain.MAX_STEPS} steps at "
                      f"{unconverged.mean():.1%} of the posterior draws; the density sampled "
                      f"there is approximate", RuntimeWarning, stacklevel=3)
    return {design.groups[g].name: u[:, starts[d]:starts[d + 1], None].reshape(
                chains, draws, -1, 1) for d, g in enumerate(order)}
