"""Automatic centred / non-centred choice per grouping factor, from a cheap pilot estimate.

Rule: estimate, by the method of moments, how strongly each group's own data pin down its
effect relative to the population distribution, r_j = n_j tau^2 / sigma^2 (the shrinkage
weight is lambda_j = r_j / (1 + r_j)). When the typical group has lambda_j > 0.5
(median r_j > 1), the likelihood dominates and the centred form samples well; otherwise the
prior dominates and the centred form has a funnel, so we use the non-centred form.

Pilot (pure numpy, no sampling): residuals of the fixed part by least squares on the link
scale; tau^2 = var(group means) - mean(sampling variance of a group mean), floored; sigma^2
is the residual variance for Gaussian models, the working variance 1 / (mu) for Poisson,
1 / (trials p (1 - p)) for logit, and se^2 for a meta-analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .design import Design, GroupDesign

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


def _ratio(g: GroupDesign, resid: np.ndarray, row_var: np.ndarray, gaussian: bool) -> np.ndarray:
    frame = pd.DataFrame({"code": g.codes, "r": resid, "v": row_var})
    stats = frame.groupby("code").agg(n=("r", "size"), mean=("r", "mean"), v=("v", "mean"))
    if gaussian:
        within = frame["r"] - stats["mean"].reindex(g.codes).to_numpy()
        dof = max(len(frame) - len(stats), 1)
        sigma2 = float(np.sum(within ** 2) / dof) if len(frame) > len(stats) else float(resid.var())
        stats["v"] = max(sigma2, 1e-12)
    sampling_var = stats["v"] / stats["n"]
    tau2 = max(float(stats["mean"].var(ddof=1) - sampling_var.mean()), TAU2_FLOOR * stats["v"].mean())
    return (stats["n"] * tau2 / stats["v"]).to_numpy()


def choose(design: Design) -> list[Choice]:
    """The parameterisation for every grouping factor whose spec says ``centered="auto"``."""
    z, row_var = design.spec.family_object.pilot(design)   # row_var None: estimate sigma^2
    resid = _residuals(design, z)
    gaussian = row_var is None
    if gaussian:
        row_var = np.full_like(z, np.nan)
    choices = []
    for g in design.groups:
        if not g.term.pooled:
            choices.append(Choice(g.name, np.nan, False, "no pooling: each level's own "
                                  "coefficients, independent priors"))
            continue
        if g.term.centered != "auto":
            choices.append(Choice(g.name, np.nan, bool(g.term.centered), "set by the user"))
            continue
        ratio = float(np.median(_ratio(g, resid, row_var, gaussian)))
        centred = ratio > THRESHOLD
        side = ">" if centred else "<="
        choices.append(Choice(g.name, ratio, centred,
                              f"auto: median n_j tau^2 / sigma^2 = {ratio:.3g} {side} {THRESHOLD:g}"))
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
