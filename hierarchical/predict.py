"""Predictions from posterior draws, for the fitted rows or for new data.

``kind``: "link" (the linear predictor), "mean" (inverse link: the mean for Gaussian, the
expected count with exposure for Poisson, the probability per trial for logit models) or
"response" (posterior predictive draws). ``new_groups`` decides what an unseen level gets:
"population" draws its effect from the fitted group distribution (independently per level
and per draw), "zero" uses the population-average effect, "error" refuses.
``include_groups`` decides which factors' effects enter at all: True (all), False (none:
population-level predictions for any level, brms' ``re_formula = NA``) or a list of factors.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import xarray as xr

from . import names
from .design import (Design, GroupDesign, _check_columns, _formula_vars, _handle_missing,
                     _numeric_column, log_offset, row_labels)
from .exceptions import DataError, SpecError
from .linpred import eta_draws, family_draws, new_level_effects
from .summary import interval_table

KINDS = ("link", "mean", "response")
NEW_GROUPS = ("population", "zero", "error")


def _needed_columns(design: Design, kind: str, included: list[GroupDesign]) -> list[str]:
    spec = design.spec
    kept = {g.name for g in included}
    needed = {f for g in included for f in g.term.factors}
    needed |= set(_formula_vars(spec.fixed, "the fixed part"))
    for g in design.groups:
        if g.name in kept:
            needed |= set(_formula_vars(g.term.expr, g.term.formula))
    left_out = {f for g in design.groups if g.name not in kept for f in g.term.factors} - needed
    cols = [c for c in design.data.columns
            if c not in (spec.response, spec.trials, spec.se) and c not in left_out]
    if kind == "response":
        cols += [c for c in (spec.trials, spec.se) if c]
    return list(dict.fromkeys(cols))


def _fixed_matrix(design: Design, frame: pd.DataFrame) -> np.ndarray:
    if design.fixed_matrix is None:
        return np.zeros((len(frame), 0))
    try:
        return np.asarray(design.fixed_matrix.evaluate_new_data(frame).design_matrix, dtype=float)
    except ValueError as exc:  # formulae: "The levels (x) in 'c' are not present ..."
        raise DataError(f"newdata cannot be encoded like the fitted data: {exc} "
                        "Only the levels seen in fitting can be predicted.") from None


def _group_codes(g: GroupDesign, frame: pd.DataFrame, new_groups: str) -> tuple[np.ndarray, list[str]]:
    """Codes into the fitted levels, unseen levels numbered after them; the unseen labels."""
    labels = row_labels(frame, g.term)
    known = {level: i for i, level in enumerate(g.levels)}
    unseen = list(dict.fromkeys(label for label in labels if label not in known))
    if unseen and new_groups == "error":
        raise DataError(f"newdata has level(s) of {g.name!r} not seen in fitting: {unseen[:10]}"
                        f"{' ...' if len(unseen) > 10 else ''}; pass new_groups='population' "
                        "or 'zero' to predict for them")
    extra = {label: len(g.levels) + i for i, label in enumerate(unseen)}
    return np.array([known.get(label, extra.get(label)) for label in labels]), unseen


def _new_effects(posterior: xr.Dataset, g: GroupDesign, n_new: int, new_groups: str,
                 rng: np.random.Generator) -> np.ndarray:
    """Fitted effects (chain, draw, level, term) with effects for unseen levels appended."""
    name = g.name
    fitted = posterior[names.effect(name)].transpose("chain", "draw", name, names.term_dim(name)).values
    if n_new == 0:
        return fitted
    chains, draws, _, k = fitted.shape
    if not g.term.pooled:
        raise DataError(f"newdata has {n_new} level(s) of {name!r} not seen in fitting, and "
                        f"{name!r} is unpooled (pooling='none'): there is no group "
                        "distribution to draw them from; predict seen levels only")
    if new_groups == "zero":
        extra = np.zeros((chains, draws, n_new, k))
    else:
        extra = new_level_effects(posterior, name, k, n_new, rng)
    return np.concatenate([fitted, extra], axis=2)


def included_groups(design: Design, include_groups) -> list[GroupDesign]:
    """The factors whose effects enter: ``include_groups`` True, False or factor names."""
    if include_groups is True:
        return list(design.groups)
    if include_groups is False:
        return []
    valid = [g.name for g in design.groups]
    chosen = [include_groups] if isinstance(include_groups, str) else include_groups
    if not isinstance(chosen, (list, tuple)) or any(c not in valid for c in chosen):
        raise SpecError(f"include_groups must be True, False or a list of grouping factors "
                        f"from {valid}, but got {include_groups!r}")
    return [g for g in design.groups if g.name in chosen]


def predict(fit, newdata: pd.DataFrame | None = None, *, kind: str = "mean",
            new_groups: str = "population", include_groups=True, summary: bool = True,
            random_seed: int | None = None, prob: float | None = None):
    if kind not in KINDS:
        raise SpecError(f"kind must be one of {KINDS}, but got {kind!r}")
    if new_groups not in NEW_GROUPS:
        raise SpecError(f"new_groups must be one of {NEW_GROUPS}, but got {new_groups!r}")
    design: Design = fit.model.design
    included = included_groups(design, include_groups)
    spec = design.spec
    if newdata is None:
        frame = design.data
    else:
        if not isinstance(newdata, pd.DataFrame):
            raise DataError(f"newdata must be a pandas DataFrame, but got {type(newdata).__name__}")
        cols = _needed_columns(design, kind, included)
        _check_columns(newdata, cols)
        frame = _handle_missing(newdata.loc[:, cols].copy(), dropna=None)
    rng = np.random.default_rng(random_seed)
    posterior = fit.posterior
    X = _fixed_matrix(design, frame)
    groups, effects = [], {}
    for g in included:
        codes, unseen = _group_codes(g, frame, new_groups)
        Z = np.asarray(g.matrix.evaluate_new_data(frame).design_matrix, dtype=float)
        groups.append((g.name, codes, Z))
        effects[g.name] = _new_effects(posterior, g, len(unseen), new_groups, rng)
    eta = eta_draws(posterior, X, groups, log_offset(frame, spec), effects)
    values, family = eta, spec.family_object
    extra = family_draws(posterior, design)
    if kind == "mean":
        values = family.mean(eta, extra)
    elif kind == "response":
        rows = SimpleNamespace(
            se=_numeric_column(frame, spec.se, "standard error") if spec.se else None,
            trials=_numeric_column(frame, spec.trials, "trials") if spec.trials else None,
            offset=None)
        values = family.draw(eta, extra, rows, rng)
    draws = xr.DataArray(values, dims=("chain", "draw", names.OBS_DIM),
                         coords={"chain": posterior["chain"], "draw": posterior["draw"],
                                 names.OBS_DIM: np.asarray(frame.index)})
    if not summary:
        return draws
    return interval_table(values.reshape(-1, values.shape[-1]), frame.index, prob)
