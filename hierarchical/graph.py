"""`Design` + priors -> a `pm.Model` with named dims.

The variables and dims are named in ``names.py`` (``beta``, ``<g>_sd``, ``<g>_effect``, ...).
A centred factor that absorbs the fixed terms it shares samples ``<g>_total`` = beta + u_j
(hierarchical centring; see ``_group_effects``); an unpooled factor (``pooling="none"``) has
only ``<g>_effect``: each level's own coefficients with independent priors.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from types import SimpleNamespace
import hashlib

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import graph_inputs

from . import names
from .design import Design, GroupDesign
from .priors import PriorEntry
from .spec import Prior


_PRIORS_AS_DATA: ContextVar[bool] = ContextVar("priors_as_data", default=False)
# False builds a weighted model with the response as an observed variable, unweighted: the
# graph for prior predictive draws, which the weights do not change.
_WEIGHTED: ContextVar[bool] = ContextVar("weighted", default=True)


@contextmanager
def unweighted():
    """Build the likelihood as an observed variable even when the design has weights."""
    token = _WEIGHTED.set(False)
    try:
        yield
    finally:
        _WEIGHTED.reset(token)


@contextmanager
def priors_as_data():
    """Build prior parameters as ``pm.Data`` named ``prior:<variable>:<parameter>``.

    A graph built this way compiles once for every setting of those parameters: a prior
    grid swaps the data values (nutpie's ``with_data``) instead of recompiling.
    """
    token = _PRIORS_AS_DATA.set(True)
    try:
        yield
    finally:
        _PRIORS_AS_DATA.reset(token)


def prior_parameter(variable: str, parameter: str, value):
    """A prior parameter: a float array, or shared data inside ``priors_as_data()``."""
    value = np.asarray(value, dtype=float)   # integer tensors break logps
    if _PRIORS_AS_DATA.get():
        return pm.Data(names.prior_data(variable, parameter), value)
    return value


def prior_variable(name: str, dist: str, params: dict, **kwargs):
    """A PyMC variable for one prior."""
    values = {k: prior_parameter(name, k, v) for k, v in params.items()}
    return getattr(pm, dist)(name, **values, **kwargs)


def _vector_prior(name: str, priors: list[Prior], labels: list[str], dims,
                  element_dims: str | None = None):
    """One variable whose last dim runs over ``labels``: a single variable when all share a
    distribution, else one per label (each with ``element_dims``) stacked along the last dim."""
    dists = {(p.dist, tuple(sorted(p.params))) for p in priors}
    if len(dists) == 1:
        params = {k: [p.params[k] for p in priors] for k in priors[0].params}
        return prior_variable(name, priors[0].dist, params, dims=dims)
    parts = [prior_variable(f"{name}[{label}]", p.dist, p.params, dims=element_dims)
             for p, label in zip(priors, labels)]
    return pm.Deterministic(name, pt.stack(parts, axis=-1), dims=dims)


def _matmul_transposed(a, b):
    """a @ b.T as broadcast-and-sum: numba's BLAS dot takes tens of seconds to compile cold
    (radon slopes: 47 s -> 12 s for the whole model), and these matrices are tiny."""
    return (a[:, None, :] * b[None, :, :]).sum(axis=-1)


def covariance_factor(g: GroupDesign, entries: dict[str, PriorEntry]):
    """Priors on a factor's SDs and (if correlated) LKJ Cholesky factor: (sd, chol or None)."""
    name, k = g.name, len(g.term_names)
    sd = _vector_prior(names.sd(name), [entries[names.sd_entry(name, t)].prior for t in g.term_names],
                       g.term_names, dims=names.term_dim(name))
    if not (g.term.correlated and k > 1):
        return sd, None
    eta = prior_parameter(names.corr_chol(name), "eta", entries[names.corr(name)].prior.params["eta"])
    chol = pm.LKJCorr(names.corr_chol(name), n=k, eta=eta)
    rows, cols = zip(*names.pairs(g.term_names))
    corr = _matmul_transposed(chol, chol)
    pm.Deterministic(names.corr(name), corr[list(rows), list(cols)], dims=names.pair_dim(name))
    return sd, chol


def _unpooled_effects(g: GroupDesign, entries: dict[str, PriorEntry]):
    """Each level's own coefficients, independent a priori (no group distribution)."""
    priors = [entries[names.coef_entry(g.name, t)].prior for t in g.term_names]
    return _vector_prior(names.effect(g.name), priors, g.term_names,
                         dims=(g.name, names.term_dim(g.name)), element_dims=g.name)


def _group_effects(g: GroupDesign, entries: dict[str, PriorEntry], mean=None):
    """Draw the effects of one factor; returns (variable entering eta, deviations u_j).

    Non-centred: u = diag(sd) L z. Centred: u ~ N(0, Sigma). When ``mean`` is given (a centred
    factor absorbing the fixed terms it shares, "hierarchical centring"), the free variable is
    the total theta_j ~ N(mean, Sigma) and u_j = theta_j - mean: this removes the ridge
    between the intercept and every group effect that a diagonal mass matrix cannot follow.
    """
    if not g.term.pooled:
        effect = _unpooled_effects(g, entries)
        return effect, effect
    name, k = g.name, len(g.term_names)
    dims = (name, names.term_dim(name))
    sd, chol = covariance_factor(g, entries)
    if not g.term.centered:
        z = pm.Normal(names.z(name), 0.0, 1.0, dims=dims)
        raw = z if chol is None else _matmul_transposed(z, chol)
        u = pm.Deterministic(names.effect(name), raw * sd, dims=dims)
        return u, u
    location = np.zeros(k) if mean is None else mean
    if chol is None:
        theta = pm.Normal(names.total(name) if mean is not None else names.effect(name),
                          location, sd, dims=dims)
    else:
        theta = pm.MvNormal(names.total(name) if mean is not None else names.effect(name),
                            mu=location, chol=sd[:, None] * chol, dims=dims)
    if mean is None:
        return theta, theta
    return theta, pm.Deterministic(names.effect(name), theta - mean, dims=dims)


def _group_contribution(g: GroupDesign, effect):
    if g.intercept_only:
        return effect[g.codes, 0]
    return (effect[g.codes] * g.Z).sum(axis=1)


def absorbing_group(design: Design) -> GroupDesign | None:
    """The centred factor that takes the fixed terms it shares as its mean.

    Only one factor can; among crossed candidates it is the one with the most rows per level,
    whose level means the data pin down best. A centred factor left out keeps a ridge between
    the intercept and its mean (width tau / sqrt(levels)): InstEval with the intercept in
    students (24 rows each) gave intercept ESS 106 of 2,000; in lecturers (65 each), see
    benchmarks.
    """
    candidates = [g for g in design.groups
                  if g.term.pooled and g.term.centered and set(g.term_names) & set(design.fixed_names)]
    return max(candidates, key=lambda g: design.n / len(g.levels), default=None)


def coords(design: Design) -> dict[str, list]:
    out: dict[str, list] = {names.FIXED_DIM: list(design.fixed_names),
                            names.OBS_DIM: list(range(design.n))}
    for g in design.groups:
        out[g.name] = list(g.levels)
        out[names.term_dim(g.name)] = list(g.term_names)
        if g.term.pooled and g.term.correlated and len(g.term_names) > 1:
            out[names.pair_dim(g.name)] = names.pair_labels(g.term_names)
    return out


def linear_predictor(design: Design, entries: dict[str, PriorEntry]):
    """Build the priors and return eta = offset + X beta + sum_g Z_g u_g (inside a model)."""
    eta = pt.zeros(design.n)
    beta = None
    absorber = absorbing_group(design)
    absorbed = set(absorber.term_names) if absorber is not None else set()
    if design.fixed_names:
        beta = fixed_effects_prior(design, entries)
        keep = [j for j, t in enumerate(design.fixed_names) if t not in absorbed]
        if keep:
            # broadcast-and-sum rather than a dot product (see _matmul_transposed)
            eta = (pt.as_tensor(design.X[:, keep]) * beta[keep]).sum(axis=1)
    for g in design.groups:
        mean = None
        if g is absorber:
            index = {t: j for j, t in enumerate(design.fixed_names)}
            mean = pt.stack([beta[index[t]] if t in index else pt.constant(0.0)
                             for t in g.term_names])
        in_eta, _ = _group_effects(g, entries, mean)
        eta = eta + _group_contribution(g, in_eta)
    if design.offset is not None:
        eta = eta + design.offset
    return eta


PYTENSOR = SimpleNamespace(exp=pt.exp, expit=pt.sigmoid, erfc=pt.erfc)   # families.Link.inverse


def family_parameters(design: Design, entries: dict[str, PriorEntry]) -> dict:
    """The family's own parameters (sigma, alpha, nu, psi, kappa) as prior variables."""
    return {extra.name: prior_variable(extra.name, entries[extra.name].prior.dist,
                                       entries[extra.name].prior.params)
            for extra in design.spec.family_object.extras}


def likelihood(design: Design, eta, entries: dict[str, PriorEntry]):
    """The response's distribution: the family's PyMC distribution with its arguments."""
    family, name = design.spec.family_object, names.observed_name(design)
    # The response is data, not a graph constant: `Model.with_data` refits a new response
    # (simulation-based calibration, bootstrap) with the compiled sampler.
    y = pm.Data(names.observed_data(name), design.y, dims=names.OBS_DIM)
    mean = family.link.inverse(eta, PYTENSOR)
    kwargs = family.pymc_kwargs(eta, mean, family_parameters(design, entries), design)
    distribution = getattr(pm, family.pymc_dist)
    if design.weights is None or not _WEIGHTED.get():
        return distribution(name, **kwargs, observed=y, dims=names.OBS_DIM)
    # frequency weights: row i counts weights_i times, so its log density is multiplied
    weights = pm.Data(f"weights:{name}", design.weights, dims=names.OBS_DIM)
    return pm.Potential(f"{name}_weighted", (weights * pm.logp(distribution.dist(**kwargs), y)).sum())


def fixed_effects_prior(design: Design, entries: dict[str, PriorEntry]):
    return _vector_prior(names.FIXED, [entries[t].prior for t in design.fixed_names],
                         design.fixed_names, dims=names.FIXED_DIM)


def constants(model: pm.Model) -> list[Constant]:
    """Every constant the model's log density reads (design matrices, codes, fixed priors)."""
    return [node for node in graph_inputs([*model.basic_RVs, *model.potentials])
            if isinstance(node, Constant)]


def constants_fingerprint(model: pm.Model) -> str:
    """A hash of every constant in the model's graph (design matrices, group indices,
    trials, offsets, fixed prior parameters): two graphs with equal structure and equal
    fingerprints differ only in their ``pm.Data`` values, so one compiled sampler serves both.

    The constants are hashed as a sorted set: compiling a model (nutpie's graph rewrites)
    reorders what graph traversal meets first and merges equal constants.
    """
    digests = []
    for node in constants(model):
        value = np.ascontiguousarray(node.data)
        digest = hashlib.sha1(f"{value.dtype}{value.shape}".encode())
        digest.update(value.tobytes())
        digests.append(digest.hexdigest())
    return hashlib.sha1("".join(sorted(set(digests))).encode()).hexdigest()


def build_pymc_model(design: Design, entries: list[PriorEntry]) -> pm.Model:
    """Compile the design and priors into a `pm.Model` whose coords are real names."""
    by_label = {e.label: e for e in entries}
    with pm.Model(coords=coords(design)) as model:
        eta = linear_predictor(design, by_label)
        likelihood(design, eta, by_label)
    return model
