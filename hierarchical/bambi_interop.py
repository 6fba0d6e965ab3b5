"""Between bambi and us, both ways.

`bambi_priors` translates a `Model`'s priors into bambi's, so bambi can fit the very same model
(the cross-check tests and the benchmark: "same data and priors"). bambi names a group SD
``"<term>|<group>"`` (a hyperprior of Normal(0, sd) effects) and a categorical fixed effect by
its variable, with one prior for all its levels.

`from_bambi` turns a fitted bambi model into our `Fit`, so that pooling factors, the ICC and
the plots read bambi fits without refitting.
"""

from __future__ import annotations

import re

import numpy as np
import xarray as xr
from xarray import DataTree

from . import names
from .exceptions import PriorError, SpecError
from .fit import Fit
from .formula import _split_top_level
from .model import Model
from .priors import PriorEntry

LEVEL = re.compile(r"(?P<term>[^\[\]]+)\[(?P<level>[^\[\]]+)\]")


def group_and_term(label: str) -> tuple[str, str]:
    """'county_sd[floor]' -> ('county', 'floor')."""
    name, term = label.rstrip("]").split("[")
    return name.removesuffix("_sd"), term


def bambi_name(entry: PriorEntry) -> tuple[str, str, str | None]:
    """(bambi prior key, posterior variable, factor level or None) for one of our parameters.

    'county_sd[floor]' -> ('floor|county', 'floor|county_sigma', None);
    'trt[progabide]' -> ('trt', 'trt', 'progabide'); 'Intercept' -> ('Intercept', 'Intercept', None).
    """
    if entry.kind == "sd":
        group, term = group_and_term(entry.label)
        key = f"{'1' if term == 'Intercept' else term}|{group}"
        return key, f"{key}_sigma", None
    match = LEVEL.fullmatch(entry.label)
    if entry.kind == "fixed" and match:
        return match["term"], match["term"], match["level"]
    return entry.label, entry.label, None


def bambi_priors(model) -> dict:
    """bambi's ``priors=`` argument for the same model as ``model`` (a `hierarchical.Model`).

    The levels of one categorical term become one bambi prior with array parameters, in
    level order."""
    import bambi as bmb  # an optional dependency (hierarchical[interop])

    by_key: dict[str, list[PriorEntry]] = {}
    for entry in model.prior_entries:
        if entry.kind == "corr":
            raise PriorError("bambi has no correlated group effects; compare a '||' model")
        by_key.setdefault(bambi_name(entry)[0], []).append(entry)
    priors = {}
    for key, entries in by_key.items():
        if len({(e.prior.dist, tuple(e.prior.params)) for e in entries}) > 1:
            raise PriorError(f"the levels of {key!r} have priors of different families: "
                             f"{[e.prior for e in entries]}; bambi needs one family per term")
        first = entries[0]
        params = {name: (first.prior.params[name] if len(entries) == 1 else
                         np.array([e.prior.params[name] for e in entries]))
                  for name in first.prior.params}
        prior = bmb.Prior(first.prior.dist, **params)
        priors[key] = bmb.Prior("Normal", mu=0, sigma=prior) if first.kind == "sd" else prior
    return priors


# --- bambi fit -> our Fit ------------------------------------------------------------------
#
# bambi 0.21 names (checked against its source and a fitted radon model):
# * fixed effects: one posterior variable per term, named after it ("Intercept", "floor"); a
#   categorical term "trt" has one extra dim ("trt_dim") whose entries are, in order, the
#   formulae labels of the term ("trt[progabide]", ...), which are also our fixed term names.
# * group effects: "<expr>|<factor>" ("1|county", "floor|county"), dims (chain, draw,
#   [<expr>__expr_dim,] <factor>__factor_dim), levels as strings; their SDs
#   "<expr>|<factor>_sigma". Every term has its own SD: no correlations.
# * "sigma" for the Gaussian residual SD.
# * center_predictors=True (the default) samples the intercept of the centred predictors, but
#   the backend's _clean_results subtracts mean(X) . beta before fit() returns, so the
#   posterior "Intercept" is already the intercept at x = 0, as our beta["Intercept"] is.

SAMPLE_DIMS = ("chain", "draw")
LINKS = {"gaussian": "identity", "poisson": "log", "bernoulli": "logit"}


def our_formula(bambi_formula: str) -> str:
    """bambi's formula in our grammar: its group terms have independent SDs, so a bambi
    '(1 + x | g)' is our '(1 + x || g)'; an intercept-only '(1 | g)' is the same in both."""
    lhs, tilde, rhs = bambi_formula.partition("~")
    if not tilde:
        raise SpecError(f"bambi formula {bambi_formula!r} has no '~'; expected 'y ~ x + (1 | g)'")
    pieces = _split_top_level(rhs, len(lhs) + 1, bambi_formula)
    return f"{lhs.strip()} ~ " + " + ".join(_uncorrelated(piece) for _, piece in pieces)


def _uncorrelated(piece: str) -> str:
    """One top-level piece of the right-hand side, a bar term made '||' unless intercept-only."""
    text = piece.strip()
    if not (text.startswith("(") and text.endswith(")")) or text.count("|") != 1:
        return text
    expr, group = (part.strip() for part in text[1:-1].split("|"))
    return text if expr == "1" else f"({expr} || {group})"


def _family(bmb_model) -> str:
    """Our family name; only families whose link and parameters we share are converted."""
    name = bmb_model.family.name
    if name not in LINKS:
        raise SpecError(f"bambi family {name!r} cannot be converted; supported families: "
                        f"{sorted(LINKS)}")
    parent = bmb_model.family.likelihood.parent
    link = bmb_model.family.link[parent].name
    if link != LINKS[name]:
        raise SpecError(f"bambi family {name!r} uses link {link!r} for {parent!r}; only the "
                        f"{LINKS[name]!r} link can be converted")
    return name


def _linear_component(bmb_model):
    """bambi's component for the mean; refuses what our models cannot express."""
    if bmb_model.formula.additionals:
        raise SpecError(f"bambi formula has distributional parts "
                        f"{list(bmb_model.formula.additionals)}; only a model for the mean "
                        "can be converted")
    component = bmb_model.parameters[bmb_model.family.likelihood.parent]
    extra = [*component.offset_terms, *component.hsgp_terms]
    if extra:
        raise SpecError(f"bambi terms {extra} (offsets or HSGP terms) cannot be converted; "
                        "supported: fixed effects and (expr | factor) group terms")
    return component


def _variable(posterior: xr.Dataset, name: str, role: str) -> xr.DataArray:
    """A bambi posterior variable; ``role`` says what we needed it for when it is missing."""
    if name not in posterior:
        raise SpecError(f"bambi's posterior has no variable {name!r} ({role}); it has "
                        f"{sorted(map(str, posterior.data_vars))}")
    return posterior[name]


def _by_label(draws: xr.DataArray, labels: list[str], keep: tuple[str, ...] = ()) -> dict:
    """Split a bambi variable into one DataArray per design column (label).

    A term with several columns (a categorical) has one extra dim, in the order of its labels."""
    extra = [d for d in draws.dims if d not in (*SAMPLE_DIMS, *keep)]
    if not extra and len(labels) == 1:
        return {labels[0]: draws}
    if len(extra) == 1 and draws.sizes[extra[0]] == len(labels):
        return {label: draws.isel({extra[0]: i}, drop=True) for i, label in enumerate(labels)}
    raise SpecError(f"bambi variable {draws.name!r} has dims {dict(draws.sizes)}; expected "
                    f"(chain, draw) plus one dim over the columns {labels}")


def _stack(columns: dict, terms: list[str], dim: str, what: str) -> xr.DataArray:
    """Our term order along ``dim``; the term sets must agree."""
    if set(columns) != set(terms):
        raise SpecError(f"{what}: bambi has terms {sorted(columns)}, our model has {sorted(terms)}")
    stacked = xr.concat([columns[n] for n in terms], dim=dim).assign_coords({dim: list(terms)})
    return stacked.transpose(*SAMPLE_DIMS, ..., dim)


def _fixed_draws(posterior: xr.Dataset, component, terms: list[str]) -> xr.DataArray:
    """Our ``beta`` (chain, draw, fixed_term) from bambi's one variable per term."""
    from bambi.utils import get_aliased_name

    columns = {}
    if component.intercept_term is not None:
        name = get_aliased_name(component.intercept_term)
        columns["Intercept"] = _variable(posterior, name, "the intercept")
    for term in component.common_terms.values():
        name = get_aliased_name(term)
        columns.update(_by_label(_variable(posterior, name, "a fixed effect"), term.term.labels))
    return _stack(columns, terms, names.FIXED_DIM, "fixed effects")


def _in_our_level_order(draws: xr.DataArray, g) -> xr.DataArray:
    """Relabel bambi's factor dim as ours, matched by label (bambi's may be ints)."""
    dims = [d for d in draws.dims if str(d).endswith("__factor_dim")]
    if len(dims) != 1:
        raise SpecError(f"bambi variable {draws.name!r} has dims {list(draws.dims)}; expected "
                        "exactly one '<factor>__factor_dim'")
    labels = [str(v) for v in draws[dims[0]].values]
    if sorted(labels) != sorted(g.levels) or len(set(labels)) != len(labels):
        raise SpecError(f"levels of {g.name!r} differ: bambi's {dims[0]!r} has {labels}, our "
                        f"model has {g.levels}")
    draws = draws.assign_coords({dims[0]: labels}).sel({dims[0]: g.levels})
    return draws.rename({dims[0]: g.name})


def _group_draws(posterior: xr.Dataset, component, g) -> dict[str, xr.DataArray]:
    """Our ``<g>_sd`` and ``<g>_effect`` from bambi's '<expr>|<g>' and '<expr>|<g>_sigma'."""
    from bambi.utils import get_aliased_name

    effects, sds = {}, {}
    for term in component.group_specific_terms.values():
        if term.term.factor.name != g.name:
            continue
        name = get_aliased_name(term)
        labels = ["Intercept"] if term.kind == "intercept" else term.term.expr.labels
        effect = _in_our_level_order(_variable(posterior, name, f"effects of {g.name!r}"), g)
        effects.update(_by_label(effect, labels, keep=(g.name,)))
        sd_name = f"{name}_{term.hyperprior_alias.get('sigma', 'sigma')}"
        sds.update(_by_label(_variable(posterior, sd_name, f"SD of {name!r}"), labels))
    term_dim = names.term_dim(g.name)
    return {names.sd(g.name): _stack(sds, g.term_names, term_dim, f"SDs of {g.name!r}"),
            names.effect(g.name): _stack(effects, g.term_names, term_dim, f"effects of {g.name!r}"
                                       ).transpose(*SAMPLE_DIMS, g.name, term_dim)}


def _residual_sd(bmb_model, posterior: xr.Dataset) -> dict[str, xr.DataArray]:
    """Our ``sigma`` for Gaussian models (bambi's ``sigma`` parameter, or its alias)."""
    if bmb_model.family.name != "gaussian":
        return {}
    component = bmb_model.parameters["sigma"]
    name = getattr(component, "alias", None) or component.name
    return {"sigma": _variable(posterior, name, "the Gaussian residual SD")}


def _check_factors(component, model) -> None:
    """Every bambi grouping factor must be one of ours (ours come from the same formula)."""
    theirs = {term.term.factor.name for term in component.group_specific_terms.values()}
    ours = {g.name for g in model.design.groups}
    if theirs != ours:
        raise SpecError(f"grouping factors differ: bambi has {sorted(theirs)}, our model has "
                        f"{sorted(ours)}")


def _check_observed(idata: DataTree, model) -> None:
    """The idata must belong to these data: bambi's observed response equals ours."""
    if "observed_data" not in idata.children:
        return
    observed = idata["observed_data"].to_dataset()
    if len(observed.data_vars) != 1:
        return
    values = np.asarray(next(iter(observed.data_vars.values())).values, dtype=float)
    if values.shape != model.design.y.shape or not np.allclose(values, model.design.y):
        raise SpecError(f"idata's observed_data ({values.shape[0]} values) is not the response "
                        f"{model.spec.response!r} of the bambi model's data "
                        f"({model.design.n} rows): was idata fitted with this model?")


def _group(idata, name: str, needed: tuple[str, ...]) -> xr.Dataset:
    """One group of bambi's DataTree, with the variables we need from it."""
    if not isinstance(idata, DataTree):
        raise SpecError(f"idata must be the DataTree returned by bambi's Model.fit (MCMC), "
                        f"but got {type(idata).__name__}")
    if name not in idata.children:
        raise SpecError(f"idata has no {name!r} group (groups: {sorted(idata.children)}); "
                        "pass the DataTree that bambi's Model.fit returned")
    data = idata[name].to_dataset()
    missing = [v for v in needed if v not in data]
    if missing:
        raise SpecError(f"idata's {name!r} group lacks {missing}; it has "
                        f"{sorted(map(str, data.data_vars))}")
    return data


def from_bambi(bmb_model, idata: DataTree) -> Fit:
    """A `Fit` from a bambi model and the DataTree its ``fit`` returned, so that our
    pooling, ICC and plot tools read bambi fits too. Nothing is refitted.

    bambi's draws are renamed into our variables and dims (``beta``, ``<g>_sd``,
    ``<g>_effect``, ``sigma``) on a `Model` built from the same formula (group terms as
    ``||``: bambi's SDs are independent), family and data; ``observed_data`` and
    ``log_likelihood`` are recomputed from those draws as `Model.fit` does. The Model's own
    priors are ours, not bambi's. Raises SpecError for families other than gaussian,
    poisson and bernoulli, and names any bambi variable that is missing.
    """
    family = _family(bmb_model)
    component = _linear_component(bmb_model)
    posterior = _group(idata, "posterior", ())
    stats = _group(idata, "sample_stats", ("diverging", "energy"))
    model = Model(our_formula(bmb_model.formula.main), bmb_model.data, family=family,
                  dropna=bmb_model.dropna)
    _check_factors(component, model)
    _check_observed(idata, model)
    draws = {}
    if model.design.fixed_names:
        draws[names.FIXED] = _fixed_draws(posterior, component, model.design.fixed_names)
    for g in model.design.groups:
        draws.update(_group_draws(posterior, component, g))
    draws.update(_residual_sd(bmb_model, posterior))
    ours = xr.Dataset(draws, attrs=posterior.attrs)
    tree = DataTree.from_dict({"posterior": ours, "sample_stats": stats})
    tree["observed_data"] = model._observed_data()
    return Fit(model, tree, settings={"sampler": "bambi"})
