"""Posterior summaries of labelled draws: written once for a (chain, draw, item) DataArray."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

DEFAULT_PROB = 0.94


def interval_columns(prob: float) -> tuple[str, str]:
    pct = f"{100 * prob:g}"
    return f"eti{pct}_lb", f"eti{pct}_ub"


def summarize(draws: xr.DataArray, index: pd.Index, prob: float = DEFAULT_PROB) -> pd.DataFrame:
    """mean, sd, equal-tailed interval, MCSE, ESS and r_hat for each item of ``draws``.

    ``draws`` has dims (chain, draw, item); ``index`` labels the items in order.
    """
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
