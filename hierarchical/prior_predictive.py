"""Prior predictive checks at the level analysts think in.

Instead of raw draws of every parameter, three questions: how strongly do the priors say
the groups differ (the implied ICC), how far apart do they put the group means of the
outcome (the implied SD of the level means, next to the observed one), and what range of
outcomes do they allow (each draw's minimum and maximum, next to the observed ones)?
Outcomes are on the scale the data are: values for Gaussian models and meta-analyses,
counts for Poisson, proportions for Bernoulli and binomial rows (successes / trials).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from xarray import DataTree

from . import names
from .names import observed_name
from .shrinkage import ICC, icc_of_draws

QUANTILES = (0.05, 0.5, 0.95)


def _outcome(values: np.ndarray, design) -> np.ndarray:
    """Rows on the outcome scale: proportions for binomial rows, else as they are."""
    return values / design.trials if design.spec.family_object.needs_trials else values


def _level_mean_sd(values: np.ndarray, codes: np.ndarray, n_levels: int) -> np.ndarray:
    """SD across levels of each level's mean outcome; ``values`` is (..., rows)."""
    counts = np.bincount(codes, minlength=n_levels)
    flat = values.reshape(-1, values.shape[-1])
    sums = np.stack([np.bincount(codes, weights=row, minlength=n_levels) for row in flat])
    means = sums[:, counts > 0] / counts[counts > 0]
    return means.std(axis=-1, ddof=1).reshape(values.shape[:-1])


@dataclass
class PriorPredictive:
    """Draws from the prior and prior predictive distribution of a model, with summaries.

    ``idata`` (a DataTree with ``prior`` and ``prior_predictive``), ``icc`` (the ICC the
    priors imply), ``statistics`` (implied draws of each checked statistic) and ``summary``
    (observed value, prior predictive quantiles and the share of draws at or above the
    observed value, per statistic).
    """

    idata: DataTree
    model: object

    @property
    def prior(self) -> xr.Dataset:
        return self.idata["prior"].to_dataset()

    @property
    def prior_predictive(self) -> xr.Dataset:
        return self.idata["prior_predictive"].to_dataset()

    @property
    def icc(self) -> ICC:
        return icc_of_draws(self.prior, self.model.design)

    def _replicates(self) -> np.ndarray:
        design = self.model.design
        draws = self.prior_predictive[observed_name(design)].transpose("chain", "draw", names.OBS_DIM)
        return _outcome(draws.values, design)

    @property
    def statistics(self) -> dict[str, tuple[np.ndarray, float]]:
        """label -> (implied draws (chain, draw), observed value or NaN)."""
        design = self.model.design
        replicated, observed = self._replicates(), _outcome(design.y, design)
        out: dict[str, tuple[np.ndarray, float]] = {}
        pooled = [g for g in design.groups if g.term.pooled]
        if pooled:
            icc = self.icc.draws.transpose("chain", "draw", "group")
            for i, g in enumerate(pooled):
                out[f"icc[{g.name}]"] = (icc.values[..., i], float("nan"))
        for g in design.groups:
            out[f"sd of {g.name} means"] = (
                _level_mean_sd(replicated, g.codes, len(g.levels)),
                float(_level_mean_sd(observed, g.codes, len(g.levels))))
        out[f"min({design.spec.response})"] = (replicated.min(axis=-1), float(observed.min()))
        out[f"max({design.spec.response})"] = (replicated.max(axis=-1), float(observed.max()))
        return out

    @property
    def summary(self) -> pd.DataFrame:
        rows = {}
        for label, (draws, observed) in self.statistics.items():
            q = np.quantile(draws, QUANTILES)
            rows[label] = {"observed": observed,
                           **{f"q{100 * p:g}": v for p, v in zip(QUANTILES, q)},
                           "share_at_or_above_observed": float(np.mean(draws >= observed))
                           if np.isfinite(observed) else float("nan")}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("statistic")

    def __repr__(self) -> str:
        with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 120):
            return f"Prior predictive check\n{self.summary.to_string()}"

    def _repr_html_(self) -> str:
        return "<p><b>Prior predictive check</b></p>" + self.summary.to_html(
            float_format="{:.4g}".format)
