"""Complete, no and partial pooling fitted from one spec and read side by side.

* **complete pooling**: the spec without group terms (one set of coefficients for all);
* **no pooling** (per grouping factor g): g's levels each get their own coefficients with
  independent weakly informative priors (the fixed-effect default for the same term,
  ``pooling="none"`` in the spec), the fixed terms they replace are dropped, and any other
  factors stay as in the model;
* **partial pooling**: the model itself.

Estimates are group coefficients on the link scale (``beta + u_j`` for partial pooling).
Empirical shrinkage is ``1 - (partial - complete) / (no_pool - complete)``: 0 when the
group keeps its own estimate, 1 when it is pulled all the way to the pooled one. The
model-based shrinkage, pooling factors and ICC are defined in ``shrinkage.py``.
"""

from __future__ import annotations

import html
import sys
import warnings
from dataclasses import dataclass, replace

import arviz as az
import formulae
import numpy as np
import pandas as pd
from scipy.special import logsumexp

from . import cv as cv_module
from . import names, shrinkage
from .bambi_interop import from_bambi
from .design import constant_within
from .diagnostics import PARETO_WARNING
from .exceptions import SpecError
from .fit import Fit
from .model import Model
from .spec import CV_METHODS, ModelSpec
from .summary import html_table

COMPLETE, PARTIAL = "complete pooling", "partial pooling"


def _terms(rhs: str) -> list[str]:
    return [t.name for t in formulae.model_description(rhs).terms]


def _fixed_without(fixed: str, removed: set[str]) -> str:
    """The fixed-part formula with the named terms (``Intercept`` included) dropped."""
    kept = [t for t in _terms(fixed) if t not in removed]
    slopes = [t for t in kept if t != "Intercept"]
    return " + ".join(["1" if "Intercept" in kept else "0", *slopes])


def _group_keys(name: str) -> tuple[str, ...]:
    return (names.sd(name), names.corr(name))


def complete_pooling_spec(spec: ModelSpec) -> ModelSpec:
    """The spec with no group terms (and no priors that belong to them)."""
    keys = tuple(k for g in spec.groups for k in _group_keys(g.group))
    priors = tuple((k, p) for k, p in spec.priors if not k.startswith(keys))
    return replace(spec, groups=(), priors=priors)


def group_level_terms(model: Model, group: str) -> dict[str, list[str]]:
    """Fixed terms (with their columns) constant within every level of ``group``.

    Beside unpooled intercepts they are not identified (each level's own intercept already
    absorbs them), so the no-pooling model leaves them out, as Gelman & Hill's does.
    """
    g = next(g for g in model.design.groups if g.name == group)
    if "Intercept" not in g.term_names or model.design.fixed_matrix is None:
        return {}
    X, terms = model.design.X, model.design.fixed_names
    constant = set()
    for j, name in enumerate(terms):
        if name != "Intercept" and constant_within(X[:, j], g.codes):
            constant.add(name)
    terms = {name: list(term.labels) for name, term in model.design.fixed_matrix.terms.items()
             if name != "Intercept"}
    return {name: labels for name, labels in terms.items() if set(labels) <= constant}


def no_pooling_spec(model: Model, group: str) -> ModelSpec:
    """``group`` unpooled: its levels' own coefficients replace the fixed terms they share.

    Each coefficient's prior is the one the partial-pooling model gives that fixed term
    when the user set it, otherwise the same data-scaled default. Group-level predictors
    (constant within every level) are dropped, with a warning: see `group_level_terms`.
    """
    spec = model.spec
    term = next(g for g in spec.groups if g.group == group)
    level_terms = group_level_terms(model, group)
    if level_terms:
        warnings.warn(f"no pooling for {group!r} leaves out {sorted(level_terms)}: they are "
                      f"constant within each level of {group!r}, so its unpooled intercepts "
                      "absorb them", UserWarning, stacklevel=3)
    removed = set(_terms(term.expr)) | set(level_terms)
    priors = [(k, p) for k, p in spec.priors if not k.startswith(_group_keys(group))]
    g = next(g for g in model.design.groups if g.name == group)
    for entry in model.prior_entries:
        if entry.kind == "fixed" and entry.label in g.term_names and entry.source.startswith("user"):
            priors.append((names.coef_entry(group, entry.label), entry.prior))
    fixed = _fixed_without(spec.fixed, removed)
    dropped = (set(g.term_names) | {c for labels in level_terms.values() for c in labels}
               | ({"fixed"} if fixed in ("0", "1") else set()))
    priors = [(k, p) for k, p in priors if k not in dropped]
    groups = tuple(replace(t, pooling="none", centered=False) if t is term else t
                   for t in spec.groups)
    return replace(spec, fixed=fixed, groups=groups, priors=tuple(priors))


def no_pooling_name(model: Model, group: str) -> str:
    return "no pooling" if len(model.spec.groups) == 1 else f"no pooling ({group})"


@dataclass
class PoolingComparison:
    """Complete, no and partial pooling of one model, side by side.

    ``table``: one row per (group, level, term): n_obs, the three estimates (posterior mean
    and sd), empirical and model-based shrinkage. ``pooling_factors``: Gelman & Pardoe per
    (group, term). ``icc``: the partial-pooling fit's ICC. ``compare``: the fits compared by
    ``cv`` (PSIS-LOO, K-fold or leave-group-out; see `compare_fits`). ``fits``: the fits by
    name.
    """

    table: pd.DataFrame
    pooling_factors: pd.DataFrame
    icc: shrinkage.ICC
    compare: pd.DataFrame
    fits: dict[str, Fit]
    cv: str = "loo"

    @property
    def partial(self) -> Fit:
        return self.fits[PARTIAL]

    def __repr__(self) -> str:
        with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
            return "\n\n".join([
                f"PoolingComparison of {self.partial.spec.formula!r}",
                f"Model comparison ({self.compare.attrs.get('method', 'PSIS-LOO')}):\n"
                + self.compare.to_string(),
                "Pooling factors (Gelman & Pardoe 2006):\n" + self.pooling_factors.to_string(),
                repr(self.icc)])

    def _repr_html_(self) -> str:
        method = self.compare.attrs.get("method", "PSIS-LOO")
        return (f"<div><p><b>PoolingComparison</b> of {html.escape(self.partial.spec.formula)}</p>"
                f"<p><b>Model comparison ({html.escape(method)})</b></p>"
                f"{html_table(self.compare.drop(columns=['weight'], errors='ignore'))}"
                f"<p><b>Pooling factors</b> (Gelman &amp; Pardoe 2006)</p>"
                f"{html_table(self.pooling_factors)}{self.icc._repr_html_()}</div>")


def _flat_draws(draws) -> np.ndarray:
    """(chain, draw, ...) -> (chain * draw, ...)."""
    return draws.values.reshape(-1, *draws.shape[2:])


def _group_level_values(model: Model, g) -> tuple[list[str], np.ndarray]:
    """The group-level predictor columns of ``g`` and their value per level (J, c)."""
    columns = [c for labels in group_level_terms(model, g.name).values() for c in labels]
    design = model.design
    first_row = pd.Series(np.arange(design.n)).groupby(g.codes).first().to_numpy()
    return columns, design.X[first_row][:, [design.fixed_names.index(c) for c in columns]]


def _level_coefficients(fit: Fit, g, level_values, total=None) -> np.ndarray:
    """Draws (S, J, k) of each level's coefficients: ``total`` (beta + u_j; None for the
    fixed part alone) plus, on the intercept, the level's group-level predictors x_j gamma,
    so that the three models estimate the same quantity per level."""
    post = fit.posterior
    beta = post.get(names.FIXED)
    draws = post.sizes["chain"] * post.sizes["draw"]
    if total is None:
        total = np.zeros((draws, len(g.levels), len(g.term_names)))
        for t, term in enumerate(g.term_names):
            if beta is not None and term in beta[names.FIXED_DIM].values:
                total[:, :, t] = beta.sel({names.FIXED_DIM: term}).values.reshape(-1, 1)
    columns, x = level_values
    if columns:
        gamma = beta.sel({names.FIXED_DIM: columns}).values.reshape(draws, -1)             # (S, c)
        total = total.copy()
        total[:, :, g.term_names.index("Intercept")] += gamma @ x.T
    return total


def _estimates_table(partial: Fit, complete: Fit, no_pool: dict[str, Fit]) -> pd.DataFrame:
    parts = []
    for g in partial.model.design.groups:
        if not g.term.pooled:
            continue
        order = ("chain", "draw", g.name, names.term_dim(g.name))
        level_values = _group_level_values(partial.model, g)
        p_draws = _level_coefficients(partial, g, level_values,
                                      _flat_draws(partial.group_draws(g.name).transpose(*order)))
        n_draws = _flat_draws(no_pool[g.name].group_draws(g.name).transpose(*order))
        c_draws = _level_coefficients(complete, g, level_values)
        (p_mean, p_sd), (n_mean, n_sd), (c_mean, c_sd) = (
            (d.mean(axis=0), d.std(axis=0, ddof=1)) for d in (p_draws, n_draws, c_draws))
        with np.errstate(divide="ignore", invalid="ignore"):
            empirical = 1 - (p_mean - c_mean) / (n_mean - c_mean)
        index = pd.MultiIndex.from_product([[g.name], g.levels, g.term_names],
                                           names=["group", "level", "term"])
        parts.append(pd.DataFrame({
            "n_obs": np.repeat(g.counts, len(g.term_names)),
            "no_pool_mean": n_mean.ravel(), "no_pool_sd": n_sd.ravel(),
            "partial_mean": p_mean.ravel(), "partial_sd": p_sd.ravel(),
            "complete_mean": c_mean.ravel(), "complete_sd": c_sd.ravel(),
            "shrinkage": empirical.ravel()}, index=index))
    return pd.concat(parts).join(shrinkage.model_shrinkage(partial))


def loo_rmse(fit: Fit, loo) -> float:
    """Root-mean-square error of the PSIS-LOO predictive means E[y_i | y_-i]: each row's
    predictive mean averaged over the draws with its smoothed importance weights. (arviz's
    ``loo_expectations`` does the same plus a Pareto k per row for the expectation, which we
    do not use and which took 19 s for 9,000 rows.)"""
    mean = fit.predict(kind="mean", summary=False).transpose("chain", "draw", names.OBS_DIM)
    log_w = loo.log_weights.transpose("chain", "draw", ...).values
    log_w = log_w.reshape(-1, log_w.shape[-1])
    weights = np.exp(log_w - logsumexp(log_w, axis=0))
    loo_mean = (weights * mean.values.reshape(-1, mean.shape[-1])).sum(axis=0)
    return float(np.sqrt(np.mean((fit.model.design.y - loo_mean) ** 2)))


def _cannot_predict_new_levels(fit: Fit, by: str) -> str | None:
    for g in fit.model.design.groups:
        if g.name == by and not g.term.pooled:
            return (f"cannot predict a new level of {by!r}: its levels' coefficients are "
                    "unpooled, so there is no group distribution to draw a new level from")
    return None


def compare_fits(fits: dict[str, Fit], cv: str = "loo", *, k: int | None = 10,
                 by: str | None = None, **cv_options) -> pd.DataFrame:
    """arviz's comparison of the fits by ``cv``:

    * ``"loo"``: PSIS-LOO, with the count of unreliable Pareto k and, for Gaussian models,
      the LOO root-mean-square prediction error (``rmse_loo``);
    * ``"kfold"``: ``k``-fold CV with the same folds for every fit (new observations);
    * ``"group"``: leave-group-out CV by ``by``, ``k`` folds of its levels (new groups). A fit
      that cannot predict a new level (no pooling) gets a ``note`` saying so and no number.

    For K-fold and group CV: ``rmse_cv`` (Gaussian), failed and unconverged folds, and levels
    predicted from the prior (unpooled levels with no training rows). ``cv_options`` go to
    ``Fit.kfold`` (workers, client, random_seed, cache, progressbar).
    """
    if cv not in CV_METHODS:
        raise SpecError(f"cv must be one of {CV_METHODS}, but got {cv!r}")
    gaussian = next(iter(fits.values())).spec.family == "gaussian"
    if cv == "loo":
        with warnings.catch_warnings():   # the table counts them: n_high_pareto_k
            warnings.filterwarnings("ignore", message=PARETO_WARNING)
            loos = {name: az.loo(fit.idata, pointwise=True) for name, fit in fits.items()}
        table = az.compare(loos, round_to="none")
        table["n_high_pareto_k"] = [int((loos[n].pareto_k.values > loos[n].good_k).sum())
                                    for n in table.index]
        if gaussian:
            table["rmse_loo"] = [loo_rmse(fits[n], loos[n]) for n in table.index]
        table.attrs["method"] = "PSIS-LOO"
        return table
    if cv == "group" and by is None:
        raise SpecError("cv='group' needs by=: the grouping factor whose levels are held out")
    notes = {name: _cannot_predict_new_levels(fit, by) for name, fit in fits.items()
             if cv == "group"}
    by = by if cv == "group" else None
    # one fit that knows `by` makes the folds, and every fit uses them: the same rows held out
    first = next((n for n, f in fits.items() if by is None or by in f.model.data.columns
                  or by in [g.name for g in f.model.design.groups]), next(iter(fits)))
    results = {first: fits[first].kfold(k, by=by, **cv_options)}
    for name, fit in fits.items():
        if name != first and notes.get(name) is None:
            results[name] = cv_module.kfold(fit, folds=results[first].folds.values, **cv_options)
            results[name].by = by
    results = {name: results[name] for name in fits if name in results}
    table = az.compare(results, round_to="none")
    if gaussian:
        table["rmse_cv"] = [results[n].rmse for n in table.index]
    for column, count in (("failed_folds", lambda t: t["error"].notna().sum()),
                          ("unconverged_folds", lambda t: (~t["converged"].astype(bool)).sum()),
                          ("levels_from_prior", lambda t: t["levels_from_prior"].sum())):
        table[column] = [int(count(results[n].fold_table)) for n in table.index]
    table["note"] = None
    for name, note in notes.items():
        if note is not None:
            table.loc[name, "note"] = note
    n_folds = results[first].n_folds
    table.attrs["method"] = (f"{n_folds}-fold CV" if cv == "kfold" else
                             f"leave-group-out CV by {by!r}, {n_folds} folds")
    table.attrs["results"] = results
    return table


def _as_fit_or_model(obj) -> tuple[Model, Fit | None]:
    if isinstance(obj, Model):
        return obj, None
    if isinstance(obj, Fit):
        return obj.model, obj
    if isinstance(obj, tuple) and len(obj) == 2:
        fit = from_bambi(*obj)
        return fit.model, fit
    raise SpecError(f"compare_pooling needs a hierarchical Model, a Fit or a fitted bambi model "
                    f"as (bambi.Model, DataTree), but got {type(obj).__name__}")


def pooling_plan(model: Model) -> list[tuple[str, ModelSpec]]:
    """(name, spec) of the models a pooling comparison fits besides ``model``: complete
    pooling, and no pooling of each pooled factor; empty without a pooled factor."""
    pooled = [g.group for g in model.spec.groups if g.pooled]
    if not pooled:
        return []
    return [(COMPLETE, complete_pooling_spec(model.spec)),
            *((no_pooling_name(model, g), no_pooling_spec(model, g)) for g in pooled)]


def compare_pooling(model, *, cv: str = "loo", k: int | None = 10, by: str | None = None,
                    workers: int | None = None, client=None, **fit_kwargs) -> PoolingComparison:
    """Fit complete, no and partial pooling from the same spec and compare them.

    ``model``: a `Model` (all three are fitted), a `Fit` or a fitted bambi model given as
    ``(bambi_model, idata)`` (used as the partial-pooling fit; the other two are fitted here).
    ``fit_kwargs`` go to every ``fit`` call (draws, tune, chains, sampler, random_seed, ...).
    ``cv``: "loo" (PSIS-LOO), "kfold" (``k`` folds: new observations) or "group"
    (leave-group-out by ``by``, default the pooled factor when there is one: new groups),
    refitting on ``workers`` local processes or a Dask ``client`` (`compare_fits`).
    """
    if cv not in CV_METHODS:
        raise SpecError(f"cv must be one of {CV_METHODS}, but got {cv!r}")
    model, partial = _as_fit_or_model(model)
    plan = pooling_plan(model)
    if not plan:
        raise SpecError("compare_pooling needs a model with at least one partially pooled "
                        "group term, such as (1 | group)")
    verbose = fit_kwargs.get("progressbar", True)
    fits = {}
    steps = len(plan) + (partial is None)
    if partial is None:
        _announce(verbose, 1, steps, PARTIAL, model.spec)
        partial = model.fit(**fit_kwargs)
    fits[PARTIAL] = partial
    for i, (name, spec) in enumerate(plan, start=steps - len(plan) + 1):
        _announce(verbose, i, steps, name, spec)
        fits[name] = Model(spec, model.data).fit(**fit_kwargs)
    return from_fits(fits, cv=cv, k=k, by=by, workers=workers, client=client,
                     progressbar=verbose)


def from_fits(fits: dict[str, Fit], cv: str = "loo", *, k: int | None = 10,
              by: str | None = None, **cv_options) -> PoolingComparison:
    """The comparison of fits already made: ``fits`` maps "partial pooling", "complete
    pooling" and each pooled factor's no-pooling name (``no_pooling_name``) to its fit, as
    `compare_pooling` makes them (saved fits, for instance); ``cv`` as there."""
    partial = fits[PARTIAL]
    pooled = [g.group for g in partial.spec.groups if g.pooled]
    if cv == "group" and by is None:
        if len(pooled) != 1:
            raise SpecError(f"cv='group' needs by=, one of the grouping factors {pooled}")
        by = pooled[0]
    no_pool = {g: fits[no_pooling_name(partial.model, g)] for g in pooled}
    return PoolingComparison(table=_estimates_table(partial, fits[COMPLETE], no_pool),
                             pooling_factors=partial.pooling_factors(), icc=partial.icc(),
                             compare=compare_fits(fits, cv, k=k, by=by, **cv_options),
                             fits=fits, cv=cv)


def _announce(verbose: bool, step: int, steps: int, name: str, spec: ModelSpec) -> None:
    if verbose:
        print(f"[{step}/{steps}] fitting {name}: {spec.formula}", file=sys.stderr, flush=True)
