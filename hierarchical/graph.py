"""`Design` + priors -> a `pm.Model` with named dims.

The variables and dims are named in ``names.py`` (``beta``, ``<g>_sd``, ``<g>_effect``, ...).
A centred factor whose mean holds fixed terms, level-constant covariates or its parent's
total samples ``<g>_total`` = mean + u_j (hierarchical centring; see `Centring`); an unpooled
factor (``pooling="none"``) has only ``<g>_effect``: each level's own coefficients with
independent priors.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import SimpleNamespace
from weakref import WeakKeyDictionary
import hashlib

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import graph_inputs

from . import lkj, names
from .design import Design, GroupDesign, level_values, parents
from .priors import PriorEntry
from .spec import Prior


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


def as_data(name: str, value, *, free_first_axis: bool = True):
    """``pm.Data``, integers as int64 and reals as float64, the first axis's length free.

    Nothing the data set decides is a constant of the graph: not the values, not the
    number of rows or levels (the first axis), not the dtypes (pandas codes are int8 or
    int16 by the number of levels). A new data set of the same structure then compiles to
    the same PyTensor graph, whose numba code the disk cache holds (`nutpie_sampler`:
    compile once per structure). The other axes (columns, terms) are the structure's and
    stay static: with them known the rewrites fuse the row loops (radon, 12,248 rows: a
    gradient in 70 us, against 100 us with every axis free).
    """
    value = _normalised(value)
    shape = (None, *value.shape[1:]) if free_first_axis and value.ndim else value.shape
    return pm.Data(name, value, shape=shape)


def _normalised(value) -> np.ndarray:
    """Integers as int64, everything else as float64."""
    value = np.asarray(value)
    return value.astype("int64" if value.dtype.kind in "iub" else "float64")


# per model: the design arrays already held as data, by content
_DESIGN_ARRAYS: WeakKeyDictionary = WeakKeyDictionary()


def design_data(name: str, value, *, per_row_or_level: bool = True):
    """An array of the design (X, codes, Z, offsets, trials, column means) as data named
    ``data:<name>``; only arrays per row or per level have a free first axis.

    An array equal to one the model already holds is that variable: a factor's slopes
    usually repeat fixed-effect columns (Z = X in ``y ~ x + (x || g)``), and with one input
    the rewrites fuse both sums into one pass over the rows (radon, 12,248 rows: a
    gradient in 70 us, against 100 us with two copies). Equal content is structure or
    chance; either way the graph is correct, and by chance it is merely another graph.
    """
    value = _normalised(value)
    held = _DESIGN_ARRAYS.setdefault(pm.modelcontext(None), {})
    key = (per_row_or_level, value.dtype.str, value.shape,
           hashlib.sha1(np.ascontiguousarray(value).tobytes()).hexdigest())
    if key not in held:
        held[key] = as_data(names.design_data(name), value, free_first_axis=per_row_or_level)
    return held[key]


def prior_parameter(variable: str, parameter: str, value):
    """A prior parameter as data named ``prior:<variable>:<parameter>``: default priors are
    derived from the data, and a prior grid swaps the values (nutpie's ``with_data``)
    instead of recompiling. Its shape (one per term) is the structure's."""
    return as_data(names.prior_data(variable, parameter), np.asarray(value, dtype=float),
                 free_first_axis=False)


def level_count(g: GroupDesign):
    """The number of g's levels as the model's (shared) dim length, not a constant."""
    return pm.modelcontext(None).dim_lengths[g.name]


def prior_variable(name: str, dist: str, params: dict, transform=None, **kwargs):
    """A PyMC variable for one prior, sampled through ``transform`` if given."""
    values = {k: prior_parameter(name, k, v) for k, v in params.items()}
    if transform is None:
        return getattr(pm, dist)(name, **values, **kwargs)
    return getattr(pm, dist)(name, **transform.carried_by(values), transform=transform, **kwargs)


def _vector_prior(name: str, priors: list[Prior], labels: list[str], dims,
                  element_dims: str | None = None, transform=None):
    """One variable whose last dim runs over ``labels``: a single variable when all share a
    distribution (sampled through ``transform`` if given), else one per label (each with
    ``element_dims``) stacked along the last dim."""
    dists = {(p.dist, tuple(sorted(p.params))) for p in priors}
    if len(dists) == 1:
        params = {k: [p.params[k] for p in priors] for k in priors[0].params}
        return prior_variable(name, priors[0].dist, params, transform, dims=dims)
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
    # PyMC's LKJCorr prior, sampled as canonical partial correlations (lkj.py)
    chol = lkj.LKJCorr(names.corr_chol(name), n=k, eta=eta)
    # each correlation as the product of two rows of L: no k x k product, no advanced indexing
    corr = [(chol[i, : i + 1] * chol[j, : i + 1]).sum() for i, j in names.pairs(g.term_names)]
    pm.Deterministic(names.corr(name), pt.stack(corr), dims=names.pair_dim(name))
    return sd, chol


def _unpooled_effects(g: GroupDesign, entries: dict[str, PriorEntry]):
    """Each level's own coefficients, independent a priori (no group distribution)."""
    priors = [entries[names.coef_entry(g.name, t)].prior for t in g.term_names]
    return _vector_prior(names.effect(g.name), priors, g.term_names,
                         dims=(g.name, names.term_dim(g.name)), element_dims=g.name)


def _group_effects(g: GroupDesign, entries: dict[str, PriorEntry], mean=None):
    """Draw the effects of one factor; returns (variable entering eta, deviations u_j).

    Non-centred: u = diag(sd) L z. Centred: u ~ N(0, Sigma). When ``mean`` is given (levels x
    terms: what the factor's totals hold, see `Centring`), the free variable is the total
    theta_j ~ N(mean_j, Sigma) and u_j = theta_j - mean_j: this removes the ridge between
    the terms it holds and every group effect, which a diagonal mass matrix cannot follow.
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
    codes = design_data(f"{g.name}:codes", g.codes)
    if g.intercept_only:
        return effect[codes, 0]
    return (effect[codes] * design_data(f"{g.name}:Z", g.Z)).sum(axis=1)


@dataclass(frozen=True)
class Centring:
    """Hierarchical centring (Gelfand, Sahu & Carlin 1995) of the centred factors: what each
    one's mean holds, so that the free variable is the level's total rather than a deviation.

    ``fixed``: factor -> [(fixed column, term, value per level)]: a fixed term the factor
    shares (its intercept or slope: value 1), or a covariate constant within its levels
    (e.g. YEAR within a brood), which enters the intercept's mean. Each fixed term goes to
    the centred factor with the fewest levels that can hold it: the one whose level means
    the data pin down best (VerbAgg: the intercept in item, 316 rows per level, not id).
    ``parent``: factor -> the factor it is nested in, whose total its mean holds (ticks per
    chick INDEX centred on its BROOD's total). A parent's total is its centred total, or
    its effects plus its own parent's total; it then leaves the linear predictor.

    Without this a centred factor forms a ridge with every term it shares: intercept ESS
    106 of 2,000 on InstEval, and on grouseticks r_hat 1.25 with 111 divergences.
    """

    fixed: dict
    parent: dict
    chained: dict   # non-centred factor -> its parent, both inside a centred descendant's total

    @property
    def consumed(self) -> set[str]:
        """Factors whose effects reach the linear predictor inside a centred total."""
        return set(self.parent.values()) | set(self.chained.values())


def centring(design: Design) -> Centring:
    centred = [g for g in design.groups if g.term.pooled and g.term.centered]
    by_name = {g.name: g for g in design.groups}
    nested_in = parents(design)
    children: dict[str, list[str]] = {}
    for child, parent in nested_in.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)

    def chains(g: GroupDesign) -> bool:
        """g's mean may hold its parent's total: a single nested child sharing every term."""
        p = nested_in.get(g.name)
        return (p is not None and len(children[p]) == 1
                and set(by_name[p].term_names) <= set(g.term_names))

    parent = {g.name: nested_in[g.name] for g in centred if chains(g)}
    chained = {}
    for g_name in list(parent.values()):     # non-centred parents pass their parent's total on
        while not by_name[g_name].term.centered and chains(by_name[g_name]):
            chained[g_name] = nested_in[g_name]
            g_name = nested_in[g_name]
    fixed: dict[str, list] = {}
    for j, term in enumerate(design.fixed_names):
        options = []
        for g in centred:
            if term in g.term_names:
                options.append((g, g.term_names.index(term), np.ones(len(g.levels))))
            elif "Intercept" in g.term_names:
                values = level_values(g, design.X[:, j])
                if values is not None:
                    options.append((g, g.term_names.index("Intercept"), values))
        if options:
            g, t, values = min(options, key=lambda o: len(o[0].levels))
            fixed.setdefault(g.name, []).append((j, t, values))
    return Centring(fixed, parent, chained)


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
    """Build the priors and return eta = offset + X beta + sum_g Z_g u_g (inside a model),
    with centred factors' totals holding their share of it (see `Centring`)."""
    plan = centring(design)
    by_name = {g.name: g for g in design.groups}
    absorbed = {j for held in plan.fixed.values() for j, _, _ in held}
    keep = [j for j in range(len(design.fixed_names)) if j not in absorbed]
    X = design_data("X", design.X[:, keep])
    eta = pt.zeros(X.shape[0])
    beta = None
    if design.fixed_names:
        beta = fixed_effects_prior(design, entries)
        if keep:
            # broadcast-and-sum rather than a dot product (see _matmul_transposed)
            eta = (X * beta[keep]).sum(axis=1)
    if plan.fixed:
        column_means = design_data("column_means", design.column_means,
                                   per_row_or_level=False)
    totals: dict[str, object] = {}        # factor -> (levels, terms) total, where needed

    def parent_total(g: GroupDesign, parent_name: str):
        """The parent's total at each of g's levels, on g's terms."""
        p = by_name[parent_name]
        at = totals[parent_name][design_data(f"{g.name}:{parent_name}:level",
                                             level_values(g, p.codes))]
        index = {t: i for i, t in enumerate(p.term_names)}
        zero = pt.zeros(level_count(g))
        return pt.stack([at[:, index[t]] if t in index else zero for t in g.term_names], axis=1)

    # Covariates held by a factor enter its mean centred, their overall mean part going to
    # the intercept's holder: a factor without the intercept would otherwise carry the
    # covariate's whole level (VerbAgg: Anger, mean 20, in the subjects' totals; intercept
    # and Anger ESS 36 of 4,000).
    shift, intercept_held = 0.0, False
    for name, held in plan.fixed.items():
        for j, _, _ in held:
            if design.fixed_names[j] == "Intercept":
                intercept_held = True
            elif design.fixed_names[j] not in by_name[name].term_names:
                shift = shift + beta[j] * column_means[j]
    if not intercept_held and plan.fixed:
        eta = eta + shift
    order = sorted(design.groups, key=lambda g: len(g.levels))   # parents before children
    for g in order:
        mean = None
        if g.term.pooled and g.term.centered and (g.name in plan.fixed or g.name in plan.parent):
            mean = pt.zeros((level_count(g), len(g.term_names)))
            for j, t, values in plan.fixed.get(g.name, []):
                term = design.fixed_names[j]
                if term == "Intercept":
                    mean = pt.inc_subtensor(mean[:, t], beta[j] + shift)
                elif term in g.term_names:
                    mean = pt.inc_subtensor(mean[:, t], beta[j])
                else:
                    values = design_data(f"{g.name}:level_mean:{term}", values)
                    mean = pt.inc_subtensor(mean[:, t], beta[j] * (values - column_means[j]))
            if g.name in plan.parent:
                mean = mean + parent_total(g, plan.parent[g.name])
        in_eta, effect = _group_effects(g, entries, mean)
        if g.name in plan.consumed:
            totals[g.name] = (in_eta if g.term.centered
                              else effect + (parent_total(g, plan.chained[g.name])
                                             if g.name in plan.chained else 0))
        else:
            eta = eta + _group_contribution(g, in_eta)
    if design.offset is not None:
        eta = eta + design_data("offset", design.offset)
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
    rows = SimpleNamespace(**{field: None if getattr(design, field) is None
                              else design_data(field, getattr(design, field))
                              for field in ("trials", "se")})
    kwargs = family.pymc_kwargs(eta, mean, family_parameters(design, entries), rows)
    distribution = getattr(pm, family.pymc_dist)
    if design.weights is None or not _WEIGHTED.get():
        return distribution(name, **kwargs, observed=y, dims=names.OBS_DIM)
    # frequency weights: row i counts weights_i times, so its log density is multiplied
    weights = pm.Data(f"weights:{name}", design.weights, dims=names.OBS_DIM)
    return pm.Potential(f"{name}_weighted", (weights * pm.logp(distribution.dist(**kwargs), y)).sum())


class CentredIntercept(Transform):
    """Samples the intercept where the predictors are at their means,
    c_0 = beta_0 + sum_j mean(x_j) beta_j, and the other coefficients as they are.

    The prior stays on beta and the draws are of beta; only NUTS's coordinates change (the
    map has unit Jacobian). With uncentred predictors the intercept and the slopes form a
    ridge a diagonal mass matrix follows slowly: VerbAgg (Anger has mean 20, 348 parameters)
    gave intercept and Anger bulk ESS 36-46 of 4,000; with the intercept sampled centred,
    as brms and rstanarm do, the ridge is gone.
    """

    name = "centred"
    ndim_supp = 1

    def __init__(self, intercept: int, others: list[int], means):
        self.intercept, self.others, self.means = intercept, others, means

    def carried_by(self, params: dict) -> dict:
        """The prior's parameters with the column means (data) carried into its graph.

        PyMC applies a transform inside a graph made of the model's variables, whose inputs
        are fixed when it is made: data that the transform reads and no variable does is
        missing there. Adding 0 x the means to one parameter puts them among the inputs
        and changes no value. A prior without parameters (Flat) gets the means as
        constants (`centred_intercept`), so its graph is specific to the data set.
        """
        if not params or not isinstance(self.means, pt.TensorVariable):
            return params
        first = min(params)
        return {**params, first: params[first] + 0.0 * self.means.sum()}

    def _shift(self, value):
        return (value[..., self.others] * self.means).sum(axis=-1)

    def forward(self, value, *inputs):
        return pt.inc_subtensor(value[..., self.intercept], self._shift(value))

    def backward(self, value, *inputs):
        return pt.inc_subtensor(value[..., self.intercept], -self._shift(value))

    def log_jac_det(self, value, *inputs):
        return pt.zeros_like(value[..., 0])


def centred_intercept(design: Design, as_data: bool = True) -> CentredIntercept | None:
    """The transform for the design's fixed effects: None without an intercept or when
    every other column already has mean 0. The column means are data unless ``as_data``
    is False (see `CentredIntercept.carried_by`)."""
    if "Intercept" not in design.fixed_names or design.X.shape[1] < 2:
        return None
    intercept = design.fixed_names.index("Intercept")
    others = [j for j in range(design.X.shape[1]) if j != intercept]
    means = design.column_means[others]
    if np.allclose(means, 0.0):
        return None
    return CentredIntercept(intercept, others,
                            design_data("centring_means", means, per_row_or_level=False)
                            if as_data else means)


def fixed_effects_prior(design: Design, entries: dict[str, PriorEntry]):
    priors = [entries[t].prior for t in design.fixed_names]
    return _vector_prior(names.FIXED, priors, design.fixed_names, dims=names.FIXED_DIM,
                         transform=centred_intercept(design, as_data=bool(priors[0].params)))


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
    """Compile the design and priors into a `pm.Model` whose coords are real names and whose
    arrays are all data (see `as_data`)."""
    by_label = {e.label: e for e in entries}
    with pm.Model(coords=coords(design)) as model:
        eta = linear_predictor(design, by_label)
        likelihood(design, eta, by_label)
    return model
