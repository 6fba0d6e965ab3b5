"""Effects on the response scale: what changing one predictor does to the expected response.

The vocabulary is marginaleffects' (and bambi's ``interpret``). A *comparison* contrasts the
predicted mean (``kind="mean"``: probability, expected count, mean) at two values of one
variable, every other column as in the data, and is computed per row and per posterior draw:

* ``"difference"``: mu(hi) - mu(lo);
* ``"ratio"``: mu(hi) / mu(lo) (a rate ratio for counts, a risk ratio for probabilities);
* ``"oddsratio"``: [mu(hi) / (1 - mu(hi))] / [mu(lo) / (1 - mu(lo))] (probabilities only).

The rows' comparisons are then averaged per draw (over the data, or within each ``by``
group), giving the posterior of the average comparison; with ``newdata`` each row is kept.
The contrasted values: each level of a categorical variable against its reference level; a
numeric variable with two values (0/1) from the smaller to the larger; any other numeric
variable x -> x + 1 per row. ``values=(lo, hi)`` sets them. ``include_groups=False`` (the
default) predicts at the population level, as brms' ``re_formula = NA``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .exceptions import SpecError
from .predict import predict
from .summary import interval_table

COMPARISONS = ("difference", "ratio", "oddsratio")
PROBABILITY_FAMILIES = ("bernoulli", "binomial")


def contrasts(frame: pd.DataFrame, variable: str, values=None,
              fitted: pd.Series | None = None) -> list[tuple[str, object, object]]:
    """(label, lo, hi) pairs; lo / hi are a value or, for x -> x + 1, the column shifted.
    Levels and 0/1 come from the ``fitted`` column (the model's data) when given, so that
    a newdata of one row still compares every level."""
    column = frame[variable] if fitted is None else fitted
    if values is not None:
        lo, hi = values
        return [(f"{hi} - {lo}", lo, hi)]
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(column):
        levels = (list(column.cat.categories) if isinstance(column.dtype, pd.CategoricalDtype)
                  else sorted(column.dropna().unique(), key=str))
        return [(f"{level} - {levels[0]}", levels[0], level) for level in levels[1:]]
    distinct = np.unique(column.dropna())
    if len(distinct) == 2:
        lo, hi = distinct.tolist()
        return [(f"{hi:g} - {lo:g}", lo, hi)]
    return [("+1", frame[variable], frame[variable] + 1)]


def _compare(hi: np.ndarray, lo: np.ndarray, comparison: str) -> np.ndarray:
    if comparison == "difference":
        return hi - lo
    if comparison == "ratio":
        return hi / lo
    return (hi / (1 - hi)) / (lo / (1 - lo))


def comparison_draws(fit, variable: str, *, comparison: str = "difference", by=None,
                     include_groups=False, newdata: pd.DataFrame | None = None, values=None,
                     random_seed: int | None = None) -> xr.DataArray:
    """Draws (chain, draw, row) of the comparison: one row per (contrast, ``by`` group), or
    per (contrast, newdata row); the row coordinate's levels say which."""
    design = fit.model.design
    if comparison not in COMPARISONS:
        raise SpecError(f"comparison must be one of {COMPARISONS}, but got {comparison!r}")
    if comparison == "oddsratio" and design.spec.family not in PROBABILITY_FAMILIES:
        raise SpecError(f"comparison='oddsratio' needs probabilities (families "
                        f"{PROBABILITY_FAMILIES}), but the family is {design.spec.family!r}")
    frame = design.data if newdata is None else newdata
    if variable not in frame.columns:
        raise SpecError(f"variable {variable!r} is not a column of the "
                        f"{'model' if newdata is None else 'newdata'}; valid: {list(frame.columns)}")
    by = [by] if isinstance(by, str) else list(by or [])
    missing = [b for b in by if b not in frame.columns]
    if missing:
        raise SpecError(f"by={missing} not among the columns {list(frame.columns)}"
                        + ("; the model keeps only the columns it uses: pass your data as "
                           "newdata= to average by other columns" if newdata is None else ""))
    keys = (frame[by].astype(str).agg(" / ".join, axis=1) if by else
            pd.Series("all", index=frame.index))
    parts, labels = [], []
    fitted = design.data[variable] if variable in design.data.columns else None
    for label, lo, hi in contrasts(frame, variable, values, fitted):
        label = label if comparison == "difference" else label.replace(" - ", " / ")
        mean = {}
        for side, value in (("lo", lo), ("hi", hi)):
            shifted = frame.assign(**{variable: value})
            if isinstance(frame[variable].dtype, pd.CategoricalDtype):
                shifted[variable] = pd.Categorical(shifted[variable],
                                                   categories=frame[variable].cat.categories)
            mean[side] = predict(fit, shifted, kind="mean", include_groups=include_groups,
                                 summary=False, random_seed=random_seed).values
        unit = _compare(mean["hi"], mean["lo"], comparison)          # (chain, draw, rows)
        if newdata is not None and not by:
            parts.append(unit)
            labels += [(label, str(i)) for i in frame.index]
            continue
        for key in pd.unique(keys):
            parts.append(unit[..., (keys == key).to_numpy()].mean(axis=-1, keepdims=True))
            labels.append((label, key))
    draws = np.concatenate(parts, axis=-1)
    index = pd.MultiIndex.from_tuples(labels, names=["contrast", " / ".join(by) or "rows"])
    post = fit.posterior
    return xr.DataArray(draws, dims=("chain", "draw", "row"),
                        coords={"chain": post["chain"], "draw": post["draw"],
                                "row": np.arange(len(index))}, attrs={"index": index})


def comparisons(fit, variable: str, *, comparison: str = "difference", by=None,
                include_groups=False, newdata: pd.DataFrame | None = None, values=None,
                prob: float | None = None, random_seed: int | None = None) -> pd.DataFrame:
    """A tidy table: one row per contrast (and ``by`` group or newdata row) with the
    posterior mean of the comparison, its sd, the equal-tailed interval and ``p_increase``,
    the posterior probability that it is an increase (difference > 0, ratio > 1)."""
    draws = comparison_draws(fit, variable, comparison=comparison, by=by,
                             include_groups=include_groups, newdata=newdata, values=values,
                             random_seed=random_seed)
    values = draws.values.reshape(-1, draws.sizes["row"])
    null = 0.0 if comparison == "difference" else 1.0
    table = interval_table(values, draws.attrs["index"], prob).rename(columns={"mean": "estimate"})
    table.insert(0, "term", variable)
    table.insert(1, "comparison", comparison)
    table["p_increase"] = (values > null).mean(axis=0)
    return table


def conditional_grid(fit, variable: str, by: str | None = None, points: int = 50) -> pd.DataFrame:
    """Rows at which a conditional-effects curve is drawn: ``variable`` over its range (or
    its levels), ``by`` at its levels (or, when numeric, its quartiles), every other column
    at its mean (numeric) or most common value; a level of each grouping factor is set only
    to fill the column (predictions leave group effects out)."""
    data = fit.model.data

    def typical(column: pd.Series):
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            return column.mean()
        return column.mode().iloc[0]

    def span(column: pd.Series, n: int):
        if pd.api.types.is_numeric_dtype(column) and column.nunique() > 2:
            return np.linspace(column.min(), column.max(), n)
        if isinstance(column.dtype, pd.CategoricalDtype):
            return list(column.cat.categories)
        return sorted(column.dropna().unique(), key=str)

    xs = span(data[variable], points)
    if by is None:
        grid = pd.DataFrame({variable: xs})
    else:
        column = data[by]
        levels = (np.quantile(column, [0.25, 0.5, 0.75])
                  if pd.api.types.is_numeric_dtype(column) and column.nunique() > 5
                  else span(column, 0))
        grid = pd.DataFrame([(x, b) for b in levels for x in xs], columns=[variable, by])
    for name in data.columns:
        if name not in grid.columns:
            grid[name] = typical(data[name])
    for name in (variable, by):
        if name is not None and isinstance(data[name].dtype, pd.CategoricalDtype):
            grid[name] = pd.Categorical(grid[name], categories=data[name].cat.categories)
    return grid[list(data.columns)]


def conditional_effects(fit, variable: str, by: str | None = None, *, prob: float | None = None,
                        points: int = 50) -> pd.DataFrame:
    """The population-level expected response along ``variable`` (per ``by`` level): the
    grid of `conditional_grid` with the mean, sd and interval of the predicted mean."""
    grid = conditional_grid(fit, variable, by, points)
    table = predict(fit, grid, kind="mean", include_groups=False, prob=prob)
    return pd.concat([grid[[variable] + ([by] if by else [])].reset_index(drop=True),
                      table.reset_index(drop=True)], axis=1)

