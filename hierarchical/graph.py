"""`Design` + priors -> a `pm.Model` with named dims.

Variables (``g`` is a grouping factor, e.g. ``county``):

* ``beta`` (dim ``fixed_term``): fixed effects, coordinates are term names.
* ``g_sd`` (dim ``g_term``): SD of each group-level term.
* ``g_corr_chol`` / ``g_corr`` (dim ``g_pair``): LKJ correlation, correlated terms only.
* ``g_z``: standard-normal raw effects (non-centred only).
* ``g_effect`` (dims ``g``, ``g_term``): the group deviations u_j.
* ``g_total``: beta + u_j, the free variable of a centred factor that absorbs the fixed
  terms it shares (hierarchical centring; see ``_group_effects``).
* an unpooled factor (``pooling="none"``) has only ``g_effect``: each level's own
  coefficients with independent priors, no SD and no correlation.
* ``sigma``: Gaussian residual SD.
* the likelihood, named after the response column (dim ``obs``).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
import hashlib
from itertools import combinations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import graph_inputs

from .design import Design, GroupDesign
from .priors import PriorEntry
from .spec import Prior


_PRIORS_AS_DATA: ContextVar[bool] = ContextVar("priors_as_data", default=False)


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
        return pm.Data(f"prior:{variable}:{parameter}", value)
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


def pairs(term_names: list[str]) -> list[tuple[int, int]]:
    return list(combinations(range(len(term_names)), 2))


def pair_labels(term_names: list[str]) -> list[str]:
    return [f"corr({term_names[i]}, {term_names[j]})" for i, j in pairs(term_names)]


def _matmul_transposed(a, b):
    """a @ b.T as broadcast-and-sum: numba's BLAS dot takes tens of seconds to compile cold
    (radon slopes: 47 s -> 12 s for the whole model), and these matrices are tiny."""
    return (a[:, None, :] * b[None, :, :]).sum(axis=-1)


def covariance_factor(g: GroupDesign, entries: dict[str, PriorEntry]):
    """Priors on a factor's SDs and (if correlated) LKJ Cholesky factor: (sd, chol or None)."""
    name, k = g.name, len(g.term_names)
    sd = _vector_prior(f"{name}_sd", [entries[f"{name}_sd[{t}]"].prior for t in g.term_names],
                       g.term_names, dims=f"{name}_term")
    if not (g.term.correlated and k > 1):
        return sd, None
    eta = prior_parameter(f"{name}_corr_chol", "eta", entries[f"{name}_corr"].prior.params["eta"])
    chol = pm.LKJCorr(f"{name}_corr_chol", n=k, eta=eta)
    rows, cols = zip(*pairs(g.term_names))
    corr = _matmul_transposed(chol, chol)
    pm.Deterministic(f"{name}_corr", corr[list(rows), list(cols)], dims=f"{name}_pair")
    return sd, chol


def _unpooled_effects(g: GroupDesign, entries: dict[str, PriorEntry]):
    """Each level's own coefficients, independent a priori (no group distribution)."""
    priors = [entries[f"{g.name}_coef[{t}]"].prior for t in g.term_names]
    return _vector_prior(f"{g.name}_effect", priors, g.term_names,
                         dims=(g.name, f"{g.name}_term"), element_dims=g.name)


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
    dims = (name, f"{name}_term")
    sd, chol = covariance_factor(g, entries)
    if not g.term.centered:
        z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=dims)
        raw = z if chol is None else _matmul_transposed(z, chol)
        u = pm.Deterministic(f"{name}_effect", raw * sd, dims=dims)
        return u, u
    location = np.zeros(k) if mean is None else mean
    if chol is None:
        theta = pm.Normal(f"{name}_total" if mean is not None else f"{name}_effect",
                          location, sd, dims=dims)
    else:
        theta = pm.MvNormal(f"{name}_total" if mean is not None else f"{name}_effect",
                            mu=location, chol=sd[:, None] * chol, dims=dims)
    if mean is None:
        return theta, theta
    return theta, pm.Deterministic(f"{name}_effect", theta - mean, dims=dims)


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
    out: dict[str, list] = {"fixed_term": list(design.fixed_names), "obs": list(range(design.n))}
    for g in design.groups:
        out[g.name] = list(g.levels)
        out[f"{g.name}_term"] = list(g.term_names)
        if g.term.pooled and g.term.correlated and len(g.term_names) > 1:
            out[f"{g.name}_pair"] = pair_labels(g.term_names)
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


RESERVED = {"beta", "sigma", "obs", "fixed_term"}


def observed_name(design: Design) -> str:
    """The likelihood is named after the response unless that clashes with a model name."""
    taken = RESERVED | {g.name for g in design.groups}
    taken |= {f"{g.name}_{suffix}" for g in design.groups
              for suffix in ("sd", "z", "effect", "total", "corr", "corr_chol", "term", "pair")}
    name = design.spec.response
    return f"{name}_obs" if name in taken else name


def likelihood(design: Design, eta, entries: dict[str, PriorEntry]):
    spec, name = design.spec, observed_name(design)
    # The response is data, not a graph constant: `Model.with_data` refits a new response
    # (simulation-based calibration, bootstrap) with the compiled sampler.
    obs = dict(observed=pm.Data(f"observed:{name}", design.y, dims="obs"), dims="obs")
    if spec.family == "gaussian":
        prior = entries["sigma"].prior
        sigma = prior_variable("sigma", prior.dist, prior.params)
        return pm.Normal(name, mu=eta, sigma=sigma, **obs)
    if spec.family == "meta":
        return pm.Normal(name, mu=eta, sigma=design.se, **obs)
    if spec.family == "poisson":
        return pm.Poisson(name, mu=pt.exp(eta), **obs)
    if spec.family == "bernoulli":
        return pm.Bernoulli(name, logit_p=eta, **obs)
    return pm.Binomial(name, n=design.trials.astype("int64"), logit_p=eta, **obs)


def fixed_effects_prior(design: Design, entries: dict[str, PriorEntry]):
    return _vector_prior("beta", [entries[t].prior for t in design.fixed_names],
                         design.fixed_names, dims="fixed_term")


def build_marginal_model(design: Design, entries: list[PriorEntry], stats) -> pm.Model:
    """The Gaussian model with its one factor's effects integrated out (see marginal.py).

    Free variables: beta, <g>_sd, <g>_corr_chol (if correlated), sigma; the likelihood is a
    Potential named after the response. The effects are drawn after sampling.
    """
    from .marginal import as_model_data, marginal_loglik

    by_label = {e.label: e for e in entries}
    g = design.groups[0]
    model_coords = {k: v for k, v in coords(design).items() if k != "obs"}
    with pm.Model(coords=model_coords) as model:
        beta = fixed_effects_prior(design, by_label)
        sd, chol = covariance_factor(g, by_label)
        L = pt.diag(sd) if chol is None else sd[:, None] * chol
        prior = by_label["sigma"].prior
        sigma = prior_variable("sigma", prior.dist, prior.params)
        loglik = marginal_loglik(as_model_data(stats), beta, L, sigma, len(g.term_names))
        pm.Potential(f"{observed_name(design)}_marginal", loglik)
    return model


def constants_fingerprint(model: pm.Model) -> str:
    """A hash of every constant in the model's graph (design matrices, group indices,
    trials, offsets, fixed prior parameters): two graphs with equal structure and equal
    fingerprints differ only in their ``pm.Data`` values, so one compiled sampler serves both.

    The constants are hashed as a sorted set: compiling a model (nutpie's graph rewrites)
    reorders what graph traversal meets first and merges equal constants.
    """
    digests = []
    for node in graph_inputs([*model.basic_RVs, *model.potentials]):
        if isinstance(node, Constant):
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
