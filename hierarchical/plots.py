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

from . import names, sensitivity
from .calibration import RANK_DRAWS, bin_counts, uniformity_p
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
    """(label, posterior draws, prior) for every SD and the family's own parameters."""
    post = fit.posterior
    entries = {e.label: e.prior for e in fit.model.prior_entries}
    out = []
    for g in fit.model.design.groups:
        if not g.term.pooled:
            continue
        sd = post[names.sd(g.name)]
        for t in g.term_names:
            label = names.sd_entry(g.name, t)
            out.append((label, sd.sel({names.term_dim(g.name): t}).values.ravel(), entries.get(label)))
    for extra in fit.spec.family_object.extras:          # sigma, alpha, nu, psi, kappa
        out.append((extra.name, post[extra.name].values.ravel(), entries.get(extra.name)))
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


def _grid_axis(table: pd.DataFrame) -> tuple[np.ndarray, list[str], str, bool]:
    """x positions, tick labels, axis label and log-scale flag for the grid points.

    When exactly one prior parameter varies over the grid (same distribution throughout),
    x is that parameter; otherwise the points in order, labelled by their priors (the
    table's columns between ``point`` and ``target``).
    """
    columns = list(table.columns)
    keys = columns[columns.index("point") + 1:columns.index("target")]
    points = table.attrs.get("grid") or []
    varying = [(k, name) for k in (points[0] if points else {})
               for name in points[0][k].params
               if len({p[k].dist for p in points}) == 1
               and len({p[k].params.get(name) for p in points}) > 1]
    if len(varying) == 1:
        key, name = varying[0]
        x = np.array([float(p[key].params[name]) for p in points])
        return x, [f"{v:g}" for v in x], f"{key}: {points[0][key].dist} {name}", x.max() / x.min() > 20
    labels = [", ".join(str(row[k]) for k in keys)
              for _, row in table.drop_duplicates("point").sort_values("point").iterrows()]
    return np.arange(len(labels), dtype=float), labels, " / ".join(keys), False


def prior_grid(table: pd.DataFrame, targets: list[str] | None = None):
    """Each target's posterior mean and interval against the prior setting of a grid."""
    targets = targets or list(dict.fromkeys(table["target"]))
    lo, hi = [c for c in table.columns if c.startswith("eti")][:2]
    x, ticks, xlabel, log = _grid_axis(table)
    fig, axes = _panels(len(targets), width=4.5, height=3.4)
    for ax, target in zip(axes, targets):
        rows = table[table["target"] == target].sort_values("point")
        if rows.empty:
            raise SpecError(f"target {target!r} is not in the grid table; it has "
                            f"{list(dict.fromkeys(table['target']))}")
        mean = rows["mean"].to_numpy()
        ax.errorbar(x, mean, yerr=[mean - rows[lo], rows[hi] - mean], fmt="o-", color=PARTIAL,
                    ecolor=PARTIAL, elinewidth=1.5, capsize=3, lw=1)
        if log:
            ax.set_xscale("log")
        ax.set_xticks(x, ticks, rotation=0 if len(max(ticks, key=len)) < 8 else 30, ha="right"
                      if len(max(ticks, key=len)) >= 8 else "center")
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel(xlabel)
        ax.set_title(target, fontsize="medium")
        ax.set_ylabel(f"posterior mean, {lo[3:-3]}% interval")
    fig.suptitle("Posterior against the prior setting")
    return fig


def _support(label: str) -> tuple[float | None, float | None]:
    """Bounds of a quantity's support, for boundary-corrected densities."""
    if label.startswith(("icc[", "pooling_factor[")):
        return 0.0, 1.0
    if "_corr[" in label:
        return -1.0, 1.0
    if "_sd[" in label or label == "sigma":
        return 0.0, None
    return None, None


def _weighted_density(draws: np.ndarray, weights, grid: np.ndarray, support) -> np.ndarray:
    """Weighted Gaussian KDE (Scott's bandwidth), reflected at the bounds of the support so
    no mass leaks past zero for an SD, or past 0 and 1 for an ICC."""
    weights = np.full(draws.size, 1.0 / draws.size) if weights is None else weights
    h = stats.gaussian_kde(draws, weights=weights).covariance[0, 0] ** 0.5
    centres = [draws] + [2 * bound - draws for bound in support if bound is not None]
    density = sum(stats.norm.pdf((grid[:, None] - c[None, :]) / h) @ weights for c in centres) / h
    lower, upper = support
    outside = ((grid < lower) if lower is not None else False) | (
        (grid > upper) if upper is not None else False)
    return np.where(outside, np.nan, density)


def power_scale(fit, targets: list[str] | None = None, alphas=(0.8, 1.25), table=None):
    """How each quantity's posterior moves when the prior (left) or the likelihood (right)
    is power-scaled by ``alphas``: importance-reweighted densities, no refitting. Pass the
    ``sensitivity.power_scale`` table as ``table`` to print each CJS distance in its panel."""
    quantities = sensitivity.quantity_draws(fit, targets)
    weights = sensitivity.scaling_weights(fit, alphas)
    labels = list(quantities.data_vars)
    fig, axes = plt.subplots(len(labels), 2, figsize=(9, 2.2 * len(labels) + 0.6),
                             squeeze=False, layout="constrained")
    shades = {alphas[0]: "#8fb3de", 1.0: "black", alphas[1]: "#0b3a75"}
    for row, label in zip(axes, labels):
        draws = quantities[label].values.ravel()
        support = _support(label)
        lo_q, hi_q = np.quantile(draws, [0.001, 0.999])
        pad = 0.1 * (hi_q - lo_q)
        grid = np.linspace(lo_q - pad, hi_q + pad, 300)
        for ax, component in zip(row, ("prior", "likelihood")):
            ax.plot(grid, _weighted_density(draws, None, grid, support), color=shades[1.0],
                    lw=1.5, label="alpha = 1")
            for alpha in alphas:
                w = weights.sel(component=component, alpha=alpha).values.ravel()
                ax.plot(grid, _weighted_density(draws, w, grid, support), color=shades[alpha],
                        lw=1.5, ls="--" if alpha < 1 else "-", label=f"alpha = {alpha:g}")
            if table is not None and label in table.index:
                ax.text(0.98, 0.92, f"CJS {table.loc[label, component]:.3f}", ha="right",
                        va="top", transform=ax.transAxes, fontsize="small")
            ax.set_yticks([])
            ax.set_xlabel(label)
    axes[0][0].set_title("prior power-scaled")
    axes[0][1].set_title("likelihood power-scaled")
    axes[0][1].legend(frameon=False, fontsize="small")
    fig.suptitle("Power-scaling sensitivity")
    return fig


def prior_predictive(check, fit=None):
    """Implied ICC, spread of group means and outcome range against the data.

    ``check`` is ``model.prior_predictive()``; with ``fit`` the posterior ICC is overlaid.
    """
    stats_ = check.statistics
    fig, axes = _panels(len(stats_), width=4.2, height=3.2, ncols=min(len(stats_), 4))
    posterior_icc = None if fit is None else fit.icc().draws
    for ax, (label, (draws, observed)) in zip(axes, stats_.items()):
        values = draws.ravel()
        lo_q, hi_q = np.quantile(values, [0.005, 0.995])
        if label.startswith("icc["):
            lo_q, hi_q = 0.0, 1.0
        bins = np.linspace(lo_q, hi_q if hi_q > lo_q else lo_q + 1, 50)
        ax.hist(np.clip(values, bins[0], bins[-1]), bins=bins, density=True, color=NO_POOL,
                alpha=0.8, label="prior predictive")
        if np.isfinite(observed):
            ax.axvline(observed, color=COMPLETE, lw=2, label="observed")
        if posterior_icc is not None and label.startswith("icc["):
            post = posterior_icc.sel(group=label[4:-1]).values.ravel()
            ax.hist(post, bins=bins, density=True, color=PARTIAL, alpha=0.6, label="posterior")
        ax.set_yticks([])
        ax.set_xlabel(label)
        ax.legend(frameon=False, fontsize="small")
    fig.suptitle("Prior predictive check (tails beyond 0.5% / 99.5% piled at the edges)")
    return fig


def rank_histograms(ranks: pd.DataFrame, case: str, bins: int = 20):
    """Simulation-based calibration ranks of one case (``calibration.run``): one histogram
    per parameter, with the band where 99 % of bins fall when the ranks are uniform."""
    rank_draws = ranks.attrs.get("rank_draws", RANK_DRAWS)
    table = ranks[ranks["case"] == case]
    if table.empty:
        raise SpecError(f"no ranks for case {case!r}; cases: {sorted(ranks['case'].unique())}")
    parameters = list(dict.fromkeys(table["parameter"]))
    fig, axes = _panels(len(parameters), width=3.4, height=2.6, ncols=min(len(parameters), 4))
    for ax, parameter in zip(axes, parameters):
        values = table.loc[table["parameter"] == parameter, "rank"].to_numpy()
        counts = bin_counts(values, rank_draws, bins)
        lo, hi = stats.binom.ppf([0.005, 0.995], values.size, 1 / bins)
        ax.axhspan(lo, hi, color="#d9d9d9", lw=0)
        ax.axhline(values.size / bins, color="#7f7f7f", lw=1)
        ax.bar(np.arange(bins), counts, width=0.9, color=PARTIAL)
        ax.set_title(f"{parameter}\np = {uniformity_p(values, rank_draws, bins):.3f}",
                     fontsize="medium")
        ax.set_xticks([0, bins - 1], ["0", str(rank_draws)])
        ax.set_xlabel("rank of the true value")
    axes[0].set_ylabel("replications")
    fig.suptitle(f"SBC {case}: {table['rep'].nunique()} replications, ranks among "
                 f"{rank_draws} posterior draws (grey: 99% band under uniformity)")
    return fig


def save(fig, path, dpi: int = 150) -> None:
    """Save a figure as PNG (or any format matplotlib knows from the suffix) and close it."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


__all__ = ["caterpillar", "pooling_vs_size", "power_scale", "prior_grid", "prior_predictive",
           "rank_histograms", "save", "shrinkage", "variance_components"]
