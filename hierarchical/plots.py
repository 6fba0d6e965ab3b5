"""The figures people publish about partial pooling; each returns a matplotlib Figure.

Plots draw tables that ``pooling.py`` / ``shrinkage.py`` / ``Fit`` computed; they never
recompute statistics. Every plot has one panel per (grouping factor, term) and stays legible
from a handful of groups to thousands: level labels are written only when there are few
enough to read (``MAX_LABELS``), markers and lines thin out as the number of levels grows.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib import ticker
import numpy as np
import pandas as pd
from scipy import stats

from .exceptions import SpecError
from .summary import DEFAULT_PROB, interval_columns

MAX_LABELS = 100
NO_POOL, PARTIAL, COMPLETE = "#9a9a9a", "#1f5fa8", "#c0392b"


def _panels(n: int, width: float = 5.0, height: float = 4.0, ncols: int | None = None):
    ncols = ncols or min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _alpha(n: int) -> float:
    """Opaque for a few groups, faint for thousands, so overlaps read as density."""
    return float(np.clip(12 / math.sqrt(n), 0.15, 0.9))


def _select(table: pd.DataFrame, group: str | None, term: str | None) -> list[tuple[str, str]]:
    keys = list(dict.fromkeys((g, t) for g, _, t in table.index))
    chosen = [(g, t) for g, t in keys if group in (None, g) and term in (None, t)]
    if not chosen:
        raise SpecError(f"no (group, term) matches group={group!r}, term={term!r}; "
                        f"available: {keys}")
    return chosen


def _size_axis(ax, n: np.ndarray, group: str) -> None:
    """Group size on a log axis with plain numbers (1, 2, 5, 10, ...), not 2 x 10^0."""
    ax.set_xscale("log")
    plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    few_decades = n.max() / n.min() < 30
    ax.xaxis.set_minor_formatter(plain if few_decades else ticker.NullFormatter())
    ax.tick_params(axis="x", which="minor", labelsize="small")
    ax.set_xlabel(f"observations per {group} (log scale)")


def shrinkage(comparison, group: str | None = None, term: str | None = None):
    """No-pooling -> partial-pooling estimate per level (an arrow) with the complete-pooling
    estimate as a line. Against group size (small groups move most) when sizes differ;
    when every level has the same size, levels are ordered by their no-pooling estimate."""
    table = comparison.table
    keys = _select(table, group, term)
    fig, axes = _panels(len(keys), width=6.0, height=4.5)
    rng = np.random.default_rng(0)
    for ax, (g, t) in zip(axes, keys):
        rows = table.xs((g, t), level=("group", "term"))
        n = rows["n_obs"].to_numpy(float)
        by_size = n.max() > 1.5 * n.min()
        if by_size:
            x = n * np.exp(rng.uniform(-0.08, 0.08, len(n)))   # jitter ties on the log axis
        else:
            rows = rows.sort_values("no_pool_mean")
            x = np.arange(len(rows))
        a = _alpha(len(rows))
        ax.scatter(x, rows["no_pool_mean"], s=14, color=NO_POOL, alpha=a, label="no pooling",
                   zorder=2)
        ax.scatter(x, rows["partial_mean"], s=14, color=PARTIAL, alpha=a,
                   label="partial pooling", zorder=3)
        for xi, start, end in zip(x, rows["no_pool_mean"], rows["partial_mean"]):
            ax.annotate("", xy=(xi, end), xytext=(xi, start),
                        arrowprops=dict(arrowstyle="->", color=PARTIAL, alpha=a, lw=0.8))
        complete = rows["complete_mean"].to_numpy()
        if np.ptp(complete) == 0:
            ax.axhline(complete[0], color=COMPLETE, lw=1.5, ls="--", label="complete pooling",
                       zorder=1)
        else:  # group-level predictors: the pooled regression's value differs per level
            ax.scatter(x, complete, marker="_", s=60, color=COMPLETE, alpha=a, zorder=1,
                       label="complete pooling (at the level's predictors)")
        if by_size:
            _size_axis(ax, n, g)
        elif len(rows) <= MAX_LABELS // 3:
            ax.set_xticks(x, rows.index, rotation=90, fontsize="small")
            ax.set_xlabel(f"{g} ({int(n[0])} observations each), by no-pooling estimate")
        else:
            ax.set_xticks([])
            ax.set_xlabel(f"{len(rows)} levels of {g} ({int(n[0])} observations each), "
                          "by no-pooling estimate")
        ax.set_ylabel(f"{t} (link scale)")
        ax.set_title(f"{g}: {t}, {len(rows)} levels")
        ax.legend(frameon=False, fontsize="small")
    fig.suptitle("Shrinkage: no pooling -> partial pooling")
    return fig


def caterpillar(fit, group: str | None = None, term: str | None = None,
                kind: str = "total", prob: float = DEFAULT_PROB):
    """Group effects sorted by posterior mean with their intervals, the population value
    as a line. Level names are shown when there are at most MAX_LABELS levels."""
    table = fit.group_effects(kind=kind, prob=prob)
    lo, hi = interval_columns(prob)
    keys = _select(table, group, term)
    n_max = max(len(table.xs((g, t), level=("group", "term"))) for g, t in keys)
    height = min(max(3.0, 0.16 * n_max + 1.2), 12.0)
    fig, axes = _panels(len(keys), width=5.5, height=height)
    beta = fit.fixed_effects()
    for ax, (g, t) in zip(axes, keys):
        rows = table.xs((g, t), level=("group", "term")).sort_values("mean")
        y = np.arange(len(rows))
        thin = len(rows) > MAX_LABELS
        ax.hlines(y, rows[lo], rows[hi], color=PARTIAL, alpha=_alpha(len(rows)),
                  lw=0.6 if thin else 1.4)
        ax.scatter(rows["mean"], y, s=4 if thin else 16, color=PARTIAL, zorder=3)
        centre = beta.loc[t, "mean"] if kind == "total" and t in beta.index else 0.0
        ax.axvline(centre, color=COMPLETE, ls="--", lw=1.2,
                   label="population mean" if kind == "total" else "zero")
        if thin:
            ax.set_yticks([])
            ax.set_ylabel(f"{len(rows)} levels of {g}, sorted")
        else:
            ax.set_yticks(y, rows.index, fontsize=max(5, 9 - len(rows) // 15))
        ax.set_ylim(-1, len(rows))
        what = "coefficient" if kind == "total" else "deviation from the population"
        ax.set_xlabel(f"{t}: {what} ({int(round(100 * prob))}% interval)")
        ax.set_title(f"{g}: {t}")
        ax.legend(frameon=False, fontsize="small", loc="lower right")
    fig.suptitle(f"Group effects ({kind})")
    return fig


def pooling_vs_size(comparison, group: str | None = None, term: str | None = None):
    """Empirical and model-based shrinkage against group size, with the pooling factor."""
    table = comparison.table
    keys = _select(table, group, term)
    fig, axes = _panels(len(keys), width=6.0, height=4.2)
    factors = comparison.pooling_factors
    for ax, (g, t) in zip(axes, keys):
        rows = table.xs((g, t), level=("group", "term")).sort_values("n_obs")
        empirical = rows["shrinkage"].clip(-0.5, 1.5)   # near-equal estimates blow the ratio up
        ax.scatter(rows["n_obs"], empirical, s=14, color=NO_POOL, alpha=_alpha(len(rows)),
                   label="empirical (clipped to [-0.5, 1.5])")
        ax.plot(rows["n_obs"], rows["shrinkage_model"], color=PARTIAL, lw=2, marker="",
                label="model-based")
        if (g, t) in factors.index:
            ax.axhline(factors.loc[(g, t), "pooling_factor"], color=COMPLETE, ls=":",
                       label="pooling factor (Gelman & Pardoe)")
        _size_axis(ax, rows["n_obs"].to_numpy(float), g)
        ax.set_ylim(-0.55, 1.55)
        ax.set_ylabel("shrinkage toward complete pooling")
        ax.set_title(f"{g}: {t}")
        ax.legend(frameon=False, fontsize="small")
    fig.suptitle("How far each group was pulled toward the population")
    return fig


SCIPY_PRIORS = {
    "HalfNormal": lambda p: stats.halfnorm(scale=p["sigma"]),
    "HalfCauchy": lambda p: stats.halfcauchy(scale=p["beta"]),
    "HalfStudentT": lambda p: stats.t(df=p["nu"], scale=p.get("sigma", 1.0)),
    "Exponential": lambda p: stats.expon(scale=1 / p["lam"]),
    "Gamma": lambda p: stats.gamma(a=p["alpha"], scale=1 / p["beta"]),
    "InverseGamma": lambda p: stats.invgamma(a=p["alpha"], scale=p["beta"]),
    "LogNormal": lambda p: stats.lognorm(s=p["sigma"], scale=np.exp(p.get("mu", 0.0))),
    "Uniform": lambda p: stats.uniform(loc=p["lower"], scale=p["upper"] - p["lower"]),
}


def _prior_density(prior, grid: np.ndarray) -> np.ndarray | None:
    make = SCIPY_PRIORS.get(prior.dist)
    if make is None:
        return None
    density = make(prior.params).pdf(grid)
    return 2 * density if prior.dist == "HalfStudentT" else density


def _variance_draws(fit) -> list[tuple[str, np.ndarray, object]]:
    """(label, posterior draws, prior) for every SD and the residual SD."""
    post = fit.posterior
    entries = {e.label: e.prior for e in fit.model.prior_entries}
    out = []
    for g in fit.model.design.groups:
        if not g.term.pooled:
            continue
        sd = post[f"{g.name}_sd"]
        for t in g.term_names:
            label = f"{g.name}_sd[{t}]"
            out.append((label, sd.sel({f"{g.name}_term": t}).values.ravel(), entries.get(label)))
    if "sigma" in post:
        out.append(("sigma", post["sigma"].values.ravel(), entries.get("sigma")))
    return out


def variance_components(fit):
    """Prior vs posterior of every group SD and the residual SD: how much the data taught."""
    parts = _variance_draws(fit)
    if not parts:
        raise SpecError("this fit has no variance components to plot")
    fig, axes = _panels(len(parts), width=4.5, height=3.4)
    for ax, (label, draws, prior) in zip(axes, parts):
        top = np.quantile(draws, 0.999) * 1.6
        grid = np.linspace(0, top, 400)
        ax.hist(draws, bins=60, range=(0, top), density=True, color=PARTIAL, alpha=0.55,
                label="posterior")
        density = None if prior is None else _prior_density(prior, grid)
        if density is not None:
            ax.plot(grid, density, color=COMPLETE, lw=2, label=f"prior {prior!r}")
        ax.set_xlim(0, top)
        ax.set_xlabel(label)
        ax.set_yticks([])
        ax.legend(frameon=False, fontsize="small")
    fig.suptitle("Variance components: prior vs posterior")
    return fig


def save(fig, path, dpi: int = 150) -> None:
    """Save a figure as PNG (or any format matplotlib knows from the suffix) and close it."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


__all__ = ["caterpillar", "pooling_vs_size", "save", "shrinkage", "variance_components"]
