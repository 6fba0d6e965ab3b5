"""Posterior summaries of labelled draws: written once for a (chain, draw, item) DataArray."""

from __future__ import annotations

import html
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

def ci_prob(prob: float | None = None) -> float:
    """The interval probability: ``prob`` when given, else ArviZ's
    ``rcParams["stats.ci_prob"]`` (0.89 unless the user set it), as ArviZ's own summaries use."""
    return float(az.rcParams["stats.ci_prob"] if prob is None else prob)


def interval_columns(prob: float | None = None) -> tuple[str, str]:
    pct = f"{100 * ci_prob(prob):g}"
    return f"eti{pct}_lb", f"eti{pct}_ub"


def interval_table(values: np.ndarray, index: pd.Index, prob: float | None = None) -> pd.DataFrame:
    """mean, sd and the equal-tailed interval of each column of ``values`` (samples, items):
    the summary of derived draws (predictions, comparisons), which need no ESS or r_hat."""
    prob = ci_prob(prob)
    lo, hi = interval_columns(prob)
    q = np.quantile(values, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    return pd.DataFrame({"mean": values.mean(axis=0), "sd": values.std(axis=0, ddof=1),
                         lo: q[0], hi: q[1]}, index=index)


def summarize(draws: xr.DataArray, index: pd.Index, prob: float | None = None) -> pd.DataFrame:
    """mean, sd, equal-tailed interval, MCSE, ESS and r_hat for each item of ``draws``.

    ``draws`` has dims (chain, draw, item); ``index`` labels the items in order.
    """
    prob = ci_prob(prob)
    lo, hi = interval_columns(prob)
    columns = ["mean", "sd", lo, hi, "mcse_mean", "ess_bulk", "ess_tail", "r_hat"]
    if len(index) == 0:
        return pd.DataFrame(columns=columns, index=index, dtype=float)
    values = draws.transpose("chain", "draw", ...).values.reshape(
        draws.sizes["chain"], draws.sizes["draw"], -1)
    flat = xr.DataArray(values, dims=("chain", "draw", "item"))
    q = np.quantile(values, [(1 - prob) / 2, (1 + prob) / 2], axis=(0, 1))
    stats = {
        "mean": values.mean(axis=(0, 1)),
        "sd": values.std(axis=(0, 1), ddof=1),
        lo: q[0],
        hi: q[1],
        "mcse_mean": az.mcse(flat, method="mean").values,
        "ess_bulk": az.ess(flat, method="bulk").values,
        "ess_tail": az.ess(flat, method="tail").values,
        "r_hat": az.rhat(flat).values,
    }
    return pd.DataFrame(stats, index=index)[columns]


SUMMARY_COLUMNS = ("mean", "sd", "ess_bulk", "r_hat")


@dataclass
class FitSummary:
    """A fit at a glance, as lme4's ``summary`` gives it: what was fitted, the fixed effects,
    the variance components and the convergence verdict. Prints as text; renders as HTML in
    a notebook."""

    header: list[str]
    fixed: pd.DataFrame
    variance: pd.DataFrame
    diagnostics: object        # diagnostics.Diagnostics

    def __repr__(self) -> str:
        with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
            return "\n".join([*self.header, "", "Fixed effects:", self.fixed.to_string(), "",
                              "Variance components:", self.variance.to_string(), "",
                              repr(self.diagnostics)])

    def _repr_html_(self) -> str:
        head = "<br>".join(html.escape(line) for line in self.header)
        return (f"<div><p>{head}</p><p><b>Fixed effects</b></p>{html_table(self.fixed)}"
                f"<p><b>Variance components</b></p>{html_table(self.variance)}"
                f"{self.diagnostics._repr_html_()}</div>")


def sizes_text(counts) -> str:
    """Rows per level as a header says it: '10' when all are equal, else '1-116'."""
    return f"{counts.min()}" if counts.min() == counts.max() else f"{counts.min()}-{counts.max()}"


def html_table(frame: pd.DataFrame) -> str:
    """A summary table as notebook HTML: 3 decimals, ESS as whole numbers."""
    formats = {c: "{:,.0f}".format for c in frame.columns if str(c).startswith("ess")}
    return frame.to_html(float_format="{:.3f}".format, formatters=formats, na_rep="",
                         border=0)
