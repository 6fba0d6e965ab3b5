"""Posterior predictive checks: test statistics of the data against replicated data.

For a statistic T, the Bayesian p-value is P(T(y_rep) >= T(y)) over the posterior draws of
replicated data (Gelman, Meng & Stern 1996): near 0 or 1 says the model does not reproduce
that feature of the data. Statistics are computed overall and, with ``by``, per level of a
grouping factor or column. ``hier.plots.ppc`` draws them; this module computes them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import xarray as xr

from . import names
from .design import levels_of
from .exceptions import SpecError

STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda y: y.mean(axis=-1),
    "sd": lambda y: y.std(axis=-1, ddof=1),
    "zeros": lambda y: (y == 0).mean(axis=-1),
    "max": lambda y: y.max(axis=-1),
    "min": lambda y: y.min(axis=-1),
}
LABELS = {"mean": "mean", "sd": "standard deviation", "zeros": "share of zeros",
          "max": "maximum", "min": "minimum"}
P_EXTREME = 0.05     # a p-value below this or above 1 - this is flagged


def extreme(p) -> np.ndarray:
    """Whether Bayesian p-values are extreme enough to flag (a model misses the feature)."""
    p = np.asarray(p)
    return (p < P_EXTREME) | (p > 1 - P_EXTREME)


def default_statistics(fit) -> list[str]:
    """mean and sd; the share of zeros and the maximum too for counts and binary data."""
    if fit.model.design.spec.family_object.discrete:
        return ["mean", "sd", "zeros", "max"]
    return ["mean", "sd", "min", "max"]


def replicated(fit, random_seed: int | None = None) -> xr.DataArray:
    """y_rep (chain, draw, __obs__): the fit's ``posterior_predictive`` group, drawn on first use."""
    name = names.observed_name(fit.model.design)
    if "posterior_predictive" not in fit.tree.children:
        fit.posterior_predictive(random_seed=random_seed)
    return fit.tree["posterior_predictive"][name]


def _statistic(stat) -> tuple[str, Callable]:
    if callable(stat):
        return getattr(stat, "__name__", "statistic").replace("_", " "), stat
    if stat not in STATISTICS:
        raise SpecError(f"stat must be one of {list(STATISTICS)} or a function of an array "
                        f"(reducing its last axis), but got {stat!r}")
    return stat, STATISTICS[stat]


def _levels(fit, by: str | None) -> tuple[np.ndarray, list[str]]:
    design = fit.model.design
    if by is None:
        return np.zeros(design.n, dtype=int), ["all"]
    return levels_of(design, by, "by")


def statistics(fit, stat=None, by: str | None = None, random_seed: int | None = None) -> pd.DataFrame:
    """One row per (statistic, level): T(y), the mean and an interval of T(y_rep) and the
    Bayesian p-value. ``stat``: a name of `STATISTICS`, a function, or a list of them
    (default `default_statistics`); ``by``: a grouping factor or column.
    ``.attrs["draws"]`` holds T(y_rep) per row (draws x rows), for plotting."""
    stats = default_statistics(fit) if stat is None else stat
    stats = [stats] if isinstance(stats, str) or callable(stats) else list(stats)
    y = fit.model.design.y
    rep = replicated(fit, random_seed).values
    rep = rep.reshape(-1, rep.shape[-1])
    codes, levels = _levels(fit, by)
    rows, draws = [], []
    for s in stats:
        name, function = _statistic(s)
        for j, level in enumerate(levels):
            mask = codes == j
            observed = float(function(y[mask]))
            t_rep = np.asarray(function(rep[:, mask]), dtype=float)
            rows.append({"statistic": name, "level": level, "observed": observed,
                         "replicated_mean": t_rep.mean(),
                         "replicated_5%": np.quantile(t_rep, 0.05),
                         "replicated_95%": np.quantile(t_rep, 0.95),
                         "p_value": float((t_rep >= observed).mean()), "n": int(mask.sum())})
            draws.append(t_rep)
    table = pd.DataFrame(rows).set_index(["statistic", "level"])
    table.attrs["draws"] = np.stack(draws, axis=1)
    table.attrs["by"] = by
    return table
