"""Automatic centred / non-centred choice per grouping factor, from a cheap pilot estimate.

Rule: estimate, by the method of moments, how strongly each level's data pin down its
effect relative to the population distribution, r_j = tau^2 / V_j, with V_j the sampling
variance of the level's estimate (one factor: sigma^2 / n_j; the shrinkage weight is
lambda_j = r_j / (1 + r_j)). When the typical level has lambda_j > 0.5 (median r_j > 1),
the likelihood dominates and the centred form samples well; otherwise the prior dominates
and the centred form has a funnel, so we use the non-centred form.

A factor with slopes is judged by its least informed term, level by level: centring
applies to all of a factor's terms, and a slope is pinned down only by its rows' spread in
the covariate (contraception, ``(1 + urban | district)``: median r 1.28 from the intercepts
alone, 0.31 taking the urban shift's into account; centred, its chains had E-BFMI 0.2-0.3,
non-centred 0.7).

Nested factors are estimated bottom-up: a level of a factor that contains another (a
location containing broods) is pinned down by its children's estimates, each uncertain by
the child's own variance plus its sampling variance, V_j = 1 / sum_k 1 / (tau_c^2 + V_k);
a one-factor pilot would count the child's variance as signal (grouseticks: location ratio
3.06 alone). Its tau^2 is the spread of level estimates around their parent level's mean.
How centred factors are then centred (on fixed terms, level-constant covariates and their
parent's total) is ``graph.Centring``.

Pilot (pure numpy, no sampling): the fixed part alone, by IRLS for Poisson and logit models
(a level's estimate is then its score over its information; Poisson: log observed /
expected), by least squares on the link scale otherwise (row variances: the residual
variance for Gaussian models, the family's working variance, se^2 for a meta-analysis);
tau^2 by DerSimonian-Laird moments, floored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .design import Design, GroupDesign, level_values, parents

THRESHOLD = 1.0
TAU2_FLOOR = 1e-4


@dataclass(frozen=True)
class Choice:
    group: str
    median_ratio: float
    centered: bool
    reason: str


def _residuals(design: Design, z: np.ndarray) -> np.ndarray:
    if design.X.shape[1] == 0:
        return z - z.mean()
    coef, *_ = np.linalg.lstsq(design.X, z, rcond=None)
    return z - design.X @ coef


def _gaussian_row_variance(design: Design, resid: np.ndarray) -> float:
    """sigma^2 from the residuals within the levels of the factor with the most levels."""
    if not design.groups:
        return max(float(resid.var()), 1e-12)
    finest = max(design.groups, key=lambda g: len(g.levels))
    frame = pd.DataFrame({"code": finest.codes, "r": resid})
    within = frame["r"] - frame.groupby("code")["r"].transform("mean")
    levels = frame["code"].nunique()
    if len(frame) > levels:
        return max(float(np.sum(within ** 2) / (len(frame) - levels)), 1e-12)
    return max(float(resid.var()), 1e-12)


@dataclass
class _Level:
    """A factor's level estimates: z_j and their sampling variance V_j."""
    z: np.ndarray
    V: np.ndarray
    tau2: float


def _levels(g: GroupDesign, rows: "_Rows", child=None,
            child_to_level=None) -> tuple[np.ndarray, np.ndarray]:
    """Level estimates z_j and their sampling variances V_j: from the rows (a one-step
    estimate from the fixed-effects fit: score over information), or precision-weighted
    from a nested child's levels."""
    J = len(g.levels)
    if child is not None:
        weight = 1.0 / (child.tau2 + child.V)
        precision = np.bincount(child_to_level, weight, minlength=J)
        return np.bincount(child_to_level, weight * child.z, minlength=J) / precision, 1.0 / precision
    information = np.bincount(g.codes, rows.weight, minlength=J)
    if rows.log_ratio:   # Poisson: log(observed / expected), no linearisation bias
        observed = np.bincount(g.codes, rows.y, minlength=J)
        expected = np.bincount(g.codes, rows.mean, minlength=J)
        return np.log((observed + 0.5) / (expected + 0.5)), 1.0 / information
    return np.bincount(g.codes, rows.score, minlength=J) / information, 1.0 / information


def _tau2(z: np.ndarray, V: np.ndarray, parent_codes: np.ndarray | None) -> float:
    """DerSimonian-Laird moments around each parent level's weighted mean (or the overall
    one): with w = 1 / V, E Q = sum_p (m_p - 1) + tau^2 sum_p (S_p - S2_p / S_p)."""
    codes = np.zeros(len(z), dtype=int) if parent_codes is None else parent_codes
    w = 1.0 / V
    S, S2 = np.bincount(codes, w), np.bincount(codes, w ** 2)
    m = np.bincount(codes)
    mean = (np.bincount(codes, w * z) / S)[codes]
    Q = np.sum(w * (z - mean) ** 2)
    tau2 = (Q - np.sum(m - 1)) / max(np.sum(S - S2 / S), 1e-12)
    return max(float(tau2), TAU2_FLOOR * float(np.mean(V)))


@dataclass
class _Rows:
    """Per row: the score of the linear predictor (y - mu for canonical links), its
    information (weight) and, for Poisson, the fitted mean."""
    y: np.ndarray
    mean: np.ndarray | None
    score: np.ndarray
    weight: np.ndarray
    log_ratio: bool = False


CANONICAL = {("poisson", "log"), ("binomial", "logit"), ("bernoulli", "logit")}


def _pilot_rows(design: Design) -> _Rows:
    """The fixed-effects-only fit each row's information comes from: a GLM by IRLS for
    Poisson and logit models (the working response of a single 0/1 row is too shrunk to
    estimate a level's effect: VerbAgg's subjects looked 20 times less variable than they
    are), least squares on the link scale otherwise."""
    family = design.spec.family_object
    if (design.spec.family, family.link.name) in CANONICAL:
        trials = np.broadcast_to(1.0 if design.trials is None else design.trials, design.n)
        offset = 0.0 if design.offset is None else design.offset
        X = design.X if design.X.shape[1] else np.ones((design.n, 1))
        eta = np.full(design.n, family.link((design.y.sum() + 0.5) / (trials.sum() + 1.0)))
        for _ in range(25):
            mu = trials * family.mean(eta + offset, {}, design)
            weight = np.maximum(family.working_weight(eta + offset, {}, design), 1e-8)
            work = eta + (design.y - mu) / weight
            coef = np.linalg.solve(X.T @ (weight[:, None] * X) + 1e-8 * np.eye(X.shape[1]),
                                   X.T @ (weight * work))
            eta = X @ coef
        return _Rows(design.y, mu, design.y - mu, weight,
                     log_ratio=design.spec.family == "poisson")
    z, row_var = family.pilot(design)   # row_var None: estimate sigma^2
    resid = _residuals(design, z)
    if row_var is None:
        row_var = np.full_like(z, _gaussian_row_variance(design, resid))
    return _Rows(design.y, None, resid / row_var, 1.0 / row_var)


def ratios(design: Design) -> dict[str, np.ndarray]:
    """r_j = tau^2 / V_j for every level of every pooled factor (bottom-up over nesting)."""
    rows = _pilot_rows(design)
    nested_in = parents(design)
    by_name = {g.name: g for g in design.groups}
    child_of = {p: c for c, p in nested_in.items() if p is not None}
    if len(child_of) != sum(p is not None for p in nested_in.values()):
        child_of = {}                        # several children of one factor: no chain
    levels: dict[str, _Level] = {}
    out = {}
    for g in sorted((g for g in design.groups if g.term.pooled), key=lambda g: -len(g.levels)):
        child = by_name.get(child_of.get(g.name))
        if child is not None and child.name in levels:
            est, V = _levels(g, rows, levels[child.name], level_values(child, g.codes))
        else:
            est, V = _levels(g, rows)
        parent = nested_in.get(g.name)
        parent_codes = level_values(g, by_name[parent].codes) if parent else None
        tau2 = _tau2(est, V, parent_codes)
        levels[g.name] = _Level(est, V, tau2)
        out[g.name] = tau2 / V
        if child is None:
            for t in range(1, g.Z.shape[1]):      # slopes: the weakest term decides
                out[g.name] = np.fmin(out[g.name], _slope_ratio(g, t, rows, parent_codes))
    return out


def _slope_ratio(g: GroupDesign, t: int, rows: "_Rows", parent_codes) -> np.ndarray:
    """r_j of a factor's term t (its Z column): a centred factor centres every term, and a
    slope is informed only by its rows' spread in z (contraception's urban shift per
    district: by its urban women alone), so a well-informed intercept is not enough."""
    J, z = len(g.levels), g.Z[:, t]
    information = np.bincount(g.codes, rows.weight * z * z, minlength=J)
    seen = information > 0
    r = np.zeros(J)
    if seen.sum() > 1:
        est = np.bincount(g.codes, rows.score * z, minlength=J)[seen] / information[seen]
        V = 1.0 / information[seen]
        r[seen] = _tau2(est, V, None if parent_codes is None else parent_codes[seen]) / V
    return r


def choose(design: Design) -> list[Choice]:
    """The parameterisation for every grouping factor whose spec says ``centered="auto"``."""
    r = ratios(design)
    choices = []
    for g in design.groups:
        if not g.term.pooled:
            choices.append(Choice(g.name, np.nan, False, "no pooling: each level's own "
                                  "coefficients, independent priors"))
            continue
        if g.term.centered != "auto":
            choices.append(Choice(g.name, np.nan, bool(g.term.centered), "set by the user"))
            continue
        ratio = float(np.median(r[g.name]))
        centred = ratio > THRESHOLD
        side = ">" if centred else "<="
        choices.append(Choice(g.name, ratio, centred,
                              f"auto: median tau^2 / V_j = {ratio:.3g} {side} {THRESHOLD:g}"))
    return choices


def apply(design: Design, choices: list[Choice]) -> Design:
    """The design with each group term's ``centered`` resolved to True / False."""
    by_group = {c.group: c.centered for c in choices}
    groups = [replace(g, term=replace(g.term, centered=by_group[g.name])) for g in design.groups]
    return replace(design, groups=groups)


def table(choices: list[Choice]) -> pd.DataFrame:
    return pd.DataFrame({"centered": [c.centered for c in choices],
                         "median_ratio": [c.median_ratio for c in choices],
                         "reason": [c.reason for c in choices]},
                        index=pd.Index([c.group for c in choices], name="group"))
