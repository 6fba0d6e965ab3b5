"""The figures people publish about partial pooling; each returns a matplotlib Figure.

Plots draw tables that ``pooling.py`` / ``shrinkage.py`` / ``ppc.py`` / ``effects.py`` /
``Fit`` computed; they never recompute statistics. Every plot has one panel per (grouping
factor, term) and stays legible from a handful of groups to thousands: level labels are
written only when there are few enough to read (``MAX_LABELS``), markers and lines thin out
as the number of levels grows.

Every plot takes ``ax=`` (one panel) or ``axes=`` (a sequence with one Axes per panel) to
draw into a figure of your own, and returns that figure; by default it makes a new one.
Axes speak the response's language (`label`): "county intercept, log radon", "SD of subject
intercepts (log rate of y)", never a graph variable's name.

arviz-plots' ``plot_ppc_dist`` / ``plot_ppc_tstat`` / ``plot_forest`` draw close relatives
of `ppc` and `forest`, but not the p-values of `ppc.statistics`, the observed estimates of a
meta-analysis or the response-scale labels, and they build their own figure; so matplotlib.
"""

from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
from matplotlib import ticker
from matplotlib.transforms import blended_transform_factory
import numpy as np
import pandas as pd
from scipy import stats

from . import effects, names, ppc as ppc_stats, sensitivity
from .calibration import RANK_DRAWS, bin_counts, uniformity_p
from .exceptions import SpecError
from .summary import ci_prob, interval_columns

MAX_LABELS = 100
NO_POOL, PARTIAL, COMPLETE = "#9a9a9a", "#1f5fa8", "#c0392b"
FLAG = COMPLETE


# ---- figures and panels ------------------------------------------------------------------

def _panels(n: int, width: float = 5.0, height: float = 4.0, ncols: int | None = None,
            axes=None):
    """(figure, n Axes): a new grid of panels, or the caller's ``axes`` (checked: n of them)."""
    if axes is not None:
        given = list(np.ravel(np.asarray(axes, dtype=object)))
        if len(given) != n:
            raise SpecError(f"this plot draws {n} panel{'s' * (n != 1)}, so axes= needs {n} "
                            f"Axes (one per panel), but got {len(given)}")
        return given[0].figure, given
    ncols = ncols or min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             squeeze=False, layout="constrained")
    for ax in grid.flat[n:]:
        ax.set_visible(False)
    return fig, list(grid.flat[:n])


def _panel(width: float, height: float, ax=None):
    """(figure, Axes): a new one-panel figure, or the caller's ``ax``."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return fig, ax


def _either(n: int, ax, axes, **size):
    """For plots whose panel count depends on the data: ``ax=`` when it is one, else ``axes=``."""
    if ax is not None and axes is not None:
        raise SpecError("give ax= or axes=, not both")
    if ax is not None:
        if n != 1:
            raise SpecError(f"this plot draws {n} panels, so it needs axes= with {n} Axes "
                            "(one per panel), not ax=")
        axes = [ax]
    return _panels(n, axes=axes, **size)


def _title(fig, made: bool, text: str) -> None:
    """A figure title, only on figures this module made (not on the caller's)."""
    if made:
        fig.suptitle(text)


def _legend_below(ax, ncol: int = 3) -> None:
    """The legend in one row under the panel: it never covers data, and matplotlib need
    not search for the emptiest corner (with a hundred arrows that search took 2 s per
    figure drawn)."""
    ax.legend(frameon=False, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14),
              ncol=ncol)


def _alpha(n: int) -> float:
    """Opaque for a few groups, faint for thousands, so overlaps read as density."""
    return float(np.clip(12 / math.sqrt(n), 0.15, 0.9))


# ---- labels: the response's words, never a graph variable's name -------------------------

SCALES = ("link", "ratio", "mean", "response")
_SD = re.compile(r"(.+)_sd\[(.+)\]")
_CORR = re.compile(r"(.+)_corr\[(.+), (.+)\]")
_ICC = re.compile(r"icc\[(.+)\]")
_POOLING = re.compile(r"pooling_factor\[(.+), (.+)\]")


def _term(term: str, plural: bool = False) -> str:
    """'Intercept' -> 'intercept'; 'Days' -> 'slope on Days'; 'trt[b]' -> 'effect of trt[b]'."""
    s = "s" if plural else ""
    if term == "Intercept":
        return f"intercept{s}"
    if "[" in term or ":" in term:
        return f"effect{s} of {term}"
    return f"slope{s} on {term}"


def _study_effect(design, term: str) -> bool:
    """A meta-analysis' group intercepts are the studies' true effects."""
    return design is not None and design.se is not None and term == "Intercept"


def _terms(design, group: str, term: str) -> str:
    """A panel's title: 'county intercepts', 'Subject slopes on Days', 'school effects'."""
    return f"{group} {'effects' if _study_effect(design, term) else _term(term, plural=True)}"


def _scale(design, scale: str) -> str:
    """The scale in words: 'log radon' (identity link), 'log rate of y', 'log-odds of y';
    ``scale="ratio"``: 'rate ratio for y', 'odds ratio for y'; ``"mean"``: 'expected y',
    'probability of y'; ``"response"``: the response's name, 'log radon'."""
    if scale not in SCALES:
        raise SpecError(f"scale must be one of {SCALES}, but got {scale!r}")
    spec = design.spec
    family, response = spec.family_object, spec.response.replace("_", " ")
    link = family.link.name
    what = "rate" if family.discrete else "mean"
    if scale == "response":
        return response
    if scale == "mean":
        return (f"probability of {response}" if spec.family in effects.PROBABILITY_FAMILIES
                else f"expected {response}")
    if scale == "ratio":
        if link not in ("log", "logit"):
            raise SpecError(f"exponentiate=True needs a log or logit link (rate or odds "
                            f"ratios), but the {spec.family} family has link {link!r}")
        return f"{what} ratio for {response}" if link == "log" else f"odds ratio for {response}"
    return {"identity": response, "log": f"log {what} of {response}",
            "logit": f"log-odds of {response}"}.get(link, f"{link} of {response}")


def _words(design, what) -> tuple[str, bool]:
    """(words, on the model's scale?) for a quantity: a (group, term[, "deviation"]) tuple,
    a fixed term, a package label (``county_sd[Intercept]``, ``icc[county]``, ``sigma``) or
    words already."""
    if isinstance(what, tuple):
        group, term, *deviation = what
        words = f"{group} {'effect' if _study_effect(design, term) else _term(term)}"
        return words + (" deviation from the population" if deviation else ""), True
    fixed = [] if design is None else design.fixed_names
    extras = {} if design is None else {e.name: e for e in design.spec.family_object.extras}
    if what in fixed:
        return ("intercept" if what == "Intercept" else f"coefficient of {what}"), True
    if what == names.SIGMA and what in extras:
        return ("residual SD" if design.spec.family == "gaussian" else "residual scale"), True
    if what in extras:
        return f"{extras[what].meaning.split(':')[0]} ({what})", False
    if m := _SD.fullmatch(what):
        return f"SD of {m[1]} {_term(m[2], plural=True)}", True
    if m := _CORR.fullmatch(what):
        return f"correlation of {m[1]} {_term(m[2], True)} and {_term(m[3], True)}", False
    if m := _ICC.fullmatch(what):
        return f"ICC of {m[1]}", False
    if m := _POOLING.fullmatch(what):
        return f"pooling factor of {m[1]} {_term(m[2], True)}", False
    return what, True


def label(design, what=None, *, scale: str = "link") -> str:
    """Axis words in the response's terms, the one place plots make them.

    ``design``: ``fit.model.design`` (None: the quantity's words alone). ``what``: None (the
    scale alone), a ``(group, term)`` tuple (add ``"deviation"`` as a third item), a fixed
    term, a package label (``county_sd[Intercept]``, ``sigma``, ``icc[county]``) or words.
    ``scale``: "link" (coefficients), "ratio" (exponentiated), "mean" (expected response)
    or "response" (the response itself).

    For example ``label(radon_fit.model.design, ("county", "Intercept"))`` is "county
    intercept, log radon" and, for a Poisson model of y, ``label(design,
    "subject_sd[Intercept]")`` is "SD of subject intercepts (log rate of y)".
    """
    if what is None:
        return _scale(design, scale)
    words, scaled = _words(design, what)
    if design is None or not scaled:
        return words
    unit = _scale(design, scale)
    identity = design.spec.family_object.link.name == "identity" and scale == "link"
    return f"{words}, {unit}" if identity else f"{words} ({unit})"


def _pct(prob: float) -> str:
    return f"{100 * prob:g}%"


# ---- pooling: shrinkage, caterpillar, pooling against size --------------------------------

def _select(table: pd.DataFrame, group: str | None, term: str | None) -> list[tuple[str, str]]:
    keys = list(dict.fromkeys((g, t) for g, _, t in table.index))
    chosen = [(g, t) for g, t in keys if group in (None, g) and term in (None, t)]
    if not chosen:
        raise SpecError(f"no (group, term) matches group={group!r}, term={term!r}; "
                        f"available: {keys}")
    return chosen


def _group(design, name: str):
    return next(g for g in design.groups if g.name == name)


def _level_counts(design, name: str) -> pd.Series:
    g = _group(design, name)
    return pd.Series(g.counts, index=g.levels)


def _level_se(design, name: str) -> pd.Series:
    """Each level's standard error in a meta-analysis (one row per study: the row's se)."""
    g = _group(design, name)
    precision = np.bincount(g.codes, weights=design.se ** -2.0, minlength=len(g.levels))
    return pd.Series(precision ** -0.5, index=g.levels)


def _size_axis(ax, n: np.ndarray, group: str) -> None:
    """Group size on a log axis with plain numbers (1, 2, 5, 10, ...), not 2 x 10^0."""
    ax.set_xscale("log")
    plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    few_decades = n.max() / n.min() < 30
    ax.xaxis.set_minor_formatter(plain if few_decades else ticker.NullFormatter())
    ax.tick_params(axis="x", which="minor", labelsize="small")
    ax.set_xlabel(f"observations per {group} (log scale)")


SE_LABEL = "standard error of the study's estimate"


def _name_points(ax, x, y, levels) -> None:
    """Level names next to their points, when there are few enough to read."""
    if len(levels) <= 30:
        for xi, yi, level in zip(x, y, levels):
            ax.annotate(str(level), (xi, yi), xytext=(4, 0), textcoords="offset points",
                        fontsize="x-small", color="#555555", va="center")


def _shrinkage_x(design, g: str, rows: pd.DataFrame, rng) -> tuple[pd.DataFrame, np.ndarray, str]:
    """(rows, x, how): x is each study's standard error in a meta-analysis ("se"), the
    group size when sizes differ ("size", jittered on the log axis), else the rank of the
    no-pooling estimate ("rank")."""
    n = rows["n_obs"].to_numpy(float)
    if design.se is not None:
        return rows, _level_se(design, g).reindex(rows.index).to_numpy(), "se"
    if n.max() > 1.5 * n.min():
        return rows, n * np.exp(rng.uniform(-0.08, 0.08, len(n))), "size"
    rows = rows.sort_values("no_pool_mean")
    return rows, np.arange(len(rows)), "rank"


def _shrinkage_x_axis(ax, how: str, g: str, rows: pd.DataFrame, x: np.ndarray) -> None:
    n = rows["n_obs"].to_numpy(float)
    if how == "se":
        _name_points(ax, x, rows["no_pool_mean"], rows.index)
        ax.set_xlabel(SE_LABEL)
    elif how == "size":
        _size_axis(ax, n, g)
    elif len(rows) <= MAX_LABELS // 3:
        ax.set_xticks(x, rows.index, rotation=90, fontsize="small")
        ax.set_xlabel(f"{g} ({int(n[0])} observations each), by no-pooling estimate")
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{len(rows)} levels of {g} ({int(n[0])} observations each), "
                      "by no-pooling estimate")


def shrinkage(comparison, group: str | None = None, term: str | None = None, *, axes=None):
    """No-pooling -> partial-pooling estimate per level (an arrow) with the complete-pooling
    estimate as a line. Against group size (small groups move most) when sizes differ; for
    a meta-analysis against each study's standard error (imprecise studies move most); when
    every level has the same size, levels are ordered by their no-pooling estimate.
    ``axes``: one Axes per (group, term) panel."""
    table, design = comparison.table, comparison.partial.model.design
    keys = _select(table, group, term)
    fig, panels = _panels(len(keys), width=6.0, height=4.5, axes=axes)
    rng = np.random.default_rng(0)
    for ax, (g, t) in zip(panels, keys):
        rows, x, how = _shrinkage_x(design, g, table.xs((g, t), level=("group", "term")), rng)
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
        _shrinkage_x_axis(ax, how, g, rows, x)
        ax.set_ylabel(label(design, (g, t)))
        ax.set_title(f"{_terms(design, g, t)}, {len(rows)} levels")
        _legend_below(ax)
    _title(fig, axes is None, "Shrinkage: no pooling -> partial pooling")
    return fig


def _caterpillar_panel(ax, rows, counts, lo, hi, centre, centre_label, *, n_column: bool,
                       prob: float) -> None:
    """One factor-term panel: levels in the given order, bottom to top."""
    y = np.arange(len(rows))
    thin = len(rows) > MAX_LABELS
    equal = counts.min() == counts.max()
    area = 16.0 if not thin else (2.0 if equal else 0.5 + 8 * counts / counts.max())
    ax.hlines(y, rows[lo], rows[hi], color=PARTIAL, alpha=_alpha(len(rows)),
              lw=0.6 if thin else 1.4, label=f"posterior mean, {_pct(prob)} interval")
    ax.scatter(rows["mean"], y, s=area, color=PARTIAL, zorder=3, lw=0)
    ax.axvline(centre, color=COMPLETE, ls="--", lw=1.2, label=centre_label)
    ax.set_ylim(-1, len(rows))
    if thin:
        ax.set_yticks([])
        return
    size = max(5, 9 - len(rows) // 15)
    ax.set_yticks(y, rows.index, fontsize=size)
    if n_column and not equal:
        where = blended_transform_factory(ax.transAxes, ax.transData)
        for yi, c in zip(y, counts):
            ax.text(1.02, yi, f"n={c}", transform=where, va="center", fontsize=size,
                    color="#555555")


def caterpillar(fit, group: str | None = None, term: str | None = None,
                kind: str = "total", prob: float | None = None, *, axes=None):
    """Group effects with their intervals, the population value as a line; one panel per
    (group, term). The panels of one factor share one level order (by the first panel's
    posterior mean) so rows line up across them. Level names and each level's size
    (``n=``) are shown up to MAX_LABELS levels; beyond, marker area tells group size.
    ``axes``: one Axes per panel."""
    prob = ci_prob(prob)
    table = fit.group_effects(kind=kind, prob=prob)
    lo, hi = interval_columns(prob)
    keys = _select(table, group, term)
    design = fit.model.design
    rows_of = {k: table.xs(k, level=("group", "term")) for k in keys}
    n_max = max(len(r) for r in rows_of.values())
    height = min(max(3.0, 0.16 * n_max + 1.2), 12.0)
    fig, panels = _panels(len(keys), width=5.5, height=height, axes=axes)
    made = axes is None
    beta = fit.fixed_effects(prob)
    order, first, last = {}, {}, {}
    for i, (g, t) in enumerate(keys):
        order.setdefault(g, rows_of[(g, t)]["mean"].sort_values().index)
        first.setdefault(g, i)
        last[g] = i
    for i, (ax, (g, t)) in enumerate(zip(panels, keys)):
        rows = rows_of[(g, t)].reindex(order[g])
        counts = _level_counts(design, g).reindex(rows.index).to_numpy()
        total = kind == "total" and t in beta.index
        _caterpillar_panel(ax, rows, counts, lo, hi, beta.loc[t, "mean"] if total else 0.0,
                           "population mean" if total else "zero", prob=prob,
                           n_column=not made or i == last[g])
        if len(rows) > MAX_LABELS and (not made or i == first[g]):
            sized = "" if counts.min() == counts.max() else "; marker area: group size"
            ax.set_ylabel(f"{len(rows)} levels of {g}, sorted{sized}")
        equal = f" (n = {counts[0]} each)" if counts.min() == counts.max() else ""
        ax.set_xlabel(label(design, (g, t) if kind == "total" else (g, t, "deviation")))
        ax.set_title(f"{_terms(design, g, t)}{equal}", pad=20)
        # between the title and the panel: no interval is ever hidden under it
        ax.legend(frameon=False, fontsize="small", loc="lower center", ncol=2,
                  bbox_to_anchor=(0.5, 1.0), borderaxespad=0.1)
    _title(fig, made, "Group effects" + (" (deviations from the population)"
                                         if kind == "deviation" else ""))
    return fig


def pooling_vs_size(comparison, group: str | None = None, term: str | None = None, *,
                    axes=None):
    """Empirical and model-based shrinkage against group size (for a meta-analysis, against
    each study's standard error), with the pooling factor. ``axes``: one Axes per panel."""
    table, design = comparison.table, comparison.partial.model.design
    keys = _select(table, group, term)
    fig, panels = _panels(len(keys), width=6.0, height=4.2, axes=axes)
    factors = comparison.pooling_factors
    meta = design.se is not None
    for ax, (g, t) in zip(panels, keys):
        rows = table.xs((g, t), level=("group", "term"))
        x = _level_se(design, g).reindex(rows.index) if meta else rows["n_obs"]
        order = np.argsort(x.to_numpy(float), kind="stable")
        rows, x = rows.iloc[order], x.to_numpy(float)[order]
        empirical = rows["shrinkage"].clip(-0.5, 1.5)   # near-equal estimates blow the ratio up
        ax.scatter(x, empirical, s=14, color=NO_POOL, alpha=_alpha(len(rows)),
                   label="empirical (clipped to [-0.5, 1.5])")
        ax.plot(x, rows["shrinkage_model"], color=PARTIAL, lw=2, marker="",
                label="model-based")
        if (g, t) in factors.index:
            ax.axhline(factors.loc[(g, t), "pooling_factor"], color=COMPLETE, ls=":",
                       label="pooling factor (Gelman & Pardoe)")
        if meta:
            ax.set_xlabel(SE_LABEL)
        else:
            _size_axis(ax, x, g)
        ax.set_ylim(-0.55, 1.55)
        ax.set_ylabel("shrinkage toward complete pooling")
        ax.set_title(_terms(design, g, t))
        _legend_below(ax)
    _title(fig, axes is None, "How far each group was pulled toward the population")
    return fig


# ---- forest: estimates with intervals, as papers print them ------------------------------

def _interval_rows(ax, y, mean, lo, hi, *, color, marker="o", legend=None) -> None:
    ax.hlines(y, lo, hi, color=color, lw=1.6)
    ax.plot(mean, y, ls="", marker=marker, ms=5, color=color, label=legend)


def _diamond(ax, y, mean, lo, hi, *, legend: str, height: float = 0.28) -> None:
    ax.fill([lo, mean, hi, mean], [y, y + height, y, y - height], color="black", zorder=3,
            label=legend)


def _new_study(fit, g, prob: float, random_seed):
    """The interval of a new study's effect (a new level drawn from the fitted
    distribution), from ``Fit.predict``; None with study-level predictors."""
    if fit.model.design.fixed_names != ["Intercept"]:
        return None
    frame = pd.DataFrame({f: ["(new study)"] for f in g.term.factors})
    return fit.predict(frame, kind="link", new_groups="population", include_groups=[g.name],
                       prob=prob, random_seed=random_seed).iloc[0]


def _forest_meta(ax, fit, prob: float, random_seed) -> None:
    """Studies top to bottom: observed estimate +- 1.96 se (the data) and the partially
    pooled estimate; then the overall effect as a diamond with the prediction interval."""
    design = fit.model.design
    lo, hi = interval_columns(prob)
    g = next(g for g in design.groups if g.term.pooled)
    se = _level_se(design, g.name)
    weights = design.se ** -2.0
    observed = pd.Series(np.bincount(g.codes, weights=weights * design.y, minlength=len(g.levels))
                         / np.bincount(g.codes, weights=weights, minlength=len(g.levels)),
                         index=g.levels)
    pooled = fit.group_effects(kind="total", prob=prob).xs((g.name, "Intercept"),
                                                            level=("group", "term"))
    k = len(g.levels)
    y = -np.arange(k, dtype=float)
    _interval_rows(ax, y + 0.15, observed, observed - 1.96 * se, observed + 1.96 * se,
                   color=NO_POOL, marker="s", legend="observed estimate ± 1.96 SE")
    _interval_rows(ax, y - 0.15, pooled["mean"], pooled[lo], pooled[hi], color=PARTIAL,
                   legend=f"partially pooled, {_pct(prob)} interval")
    overall = fit.fixed_effects(prob).loc["Intercept"]
    new = _new_study(fit, g, prob, random_seed)
    if new is not None:
        ax.hlines(-k, new[lo], new[hi], color="black", lw=1.2, ls=":",
                  label=f"new {g.name}: {_pct(prob)} prediction interval")
        ax.plot([new[lo], new[hi]], [-k, -k], ls="", marker="|", ms=10, color="black")
    _diamond(ax, -k, overall["mean"], overall[lo], overall[hi],
             legend=f"overall effect, {_pct(prob)} interval")
    ax.axhline(-k + 0.5, color="#cccccc", lw=0.8)
    ax.axvline(0, color="#bbbbbb", lw=0.8, zorder=0)
    ax.set_yticks(list(y) + [-k], [str(v) for v in g.levels] + ["overall effect"])
    ax.set_ylim(-k - 0.7, 0.7)
    ax.set_xlabel(label(design))
    ax.set_ylabel(g.name)
    _legend_below(ax, ncol=2)


def _forest_table(ax, names_, table, lo, hi, *, ratio: bool = False, zero: float | None = 0.0):
    y = -np.arange(len(table), dtype=float)
    mean, low, high = (table[c].to_numpy(float) for c in ("mean", lo, hi))
    if ratio:
        mean, low, high = np.exp(mean), np.exp(low), np.exp(high)
        span = np.log10(max(high.max(), 1.0) / min(low.min(), 1.0))
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1, 1.5, 2, 3, 5, 7) if span < 1.5
                                                     else (1, 2, 5) if span < 3 else (1,)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    _interval_rows(ax, y, mean, low, high, color=PARTIAL)
    if zero is not None:
        ax.axvline(1.0 if ratio else zero, color="#bbbbbb", lw=0.8, zorder=0)
    ax.set_yticks(y, names_)
    ax.set_ylim(y.min() - 0.7, 0.7)


def forest(fit, *, prob: float | None = None, exponentiate: bool = False,
           random_seed: int | None = 0, ax=None, axes=None):
    """Estimates with intervals, as papers print them.

    A meta-analysis (``se=``): each study's observed estimate with +- 1.96 se and its
    partially pooled estimate (``group_effects(kind="total")``), the overall effect (the
    Intercept) as a diamond and the prediction interval of a new study (`Fit.predict`, a new
    level; ``random_seed`` for its draws): one panel (``ax=``). Any other fit: the fixed
    effects and the SDs (``variance_components``): two panels (``axes=``; one, ``ax=``, when
    the model has no SD). ``exponentiate=True`` (log or logit link) shows the fixed effects
    as rate or odds ratios on a log axis (exp of the posterior mean and of the interval's
    ends; the SDs stay on the link scale). Intervals: ``prob`` (ArviZ's ``stats.ci_prob``).
    """
    design = fit.model.design
    prob = ci_prob(prob)
    lo, hi = interval_columns(prob)
    if design.se is not None:
        if exponentiate:
            raise SpecError("exponentiate=True needs a log or logit link; a meta-analysis "
                            "has the identity link")
        k = len(next(g for g in design.groups if g.term.pooled).levels)
        fig, (panel,) = _either(1, ax, axes, width=6.5, height=1.9 + 0.42 * (k + 1))
        _forest_meta(panel, fit, prob, random_seed)
        _title(fig, ax is None and axes is None, "Forest plot: studies, partial pooling and "
               "the overall effect")
        return fig
    xlabel = (label(design, scale="ratio") if exponentiate   # refuses an identity link
              else label(design, "coefficient"))
    fixed = fit.fixed_effects(prob)
    comps = fit.variance_components(prob)
    sds = comps[[grp != "family" and not name.startswith("corr(") for grp, name in comps.index]]
    labels_sd = [_words(design, name if grp == "residual" else names.sd_entry(grp, name))[0]
                 for grp, name in sds.index]
    n = 1 + (len(sds) > 0)
    rows = max(len(fixed), len(sds))
    fig, panels = _either(n, ax, axes, width=5.0, height=1.4 + 0.38 * rows)
    family = design.spec.family_object
    baseline = "odds" if family.link.name == "logit" else "rate" if family.discrete else "mean"
    fixed_names = [f"Intercept (baseline {baseline})" if exponentiate and t == "Intercept"
                   else t for t in fixed.index]
    _forest_table(panels[0], fixed_names, fixed, lo, hi, ratio=exponentiate)
    panels[0].set_xlabel(xlabel)
    panels[0].set_title(f"fixed effects, {_pct(prob)} intervals")
    if len(sds):
        _forest_table(panels[1], labels_sd, sds, lo, hi, zero=None)
        panels[1].set_xlim(left=0)
        panels[1].set_xlabel(label(design, "SD"))
        panels[1].set_title(f"standard deviations, {_pct(prob)} intervals")
    _title(fig, ax is None and axes is None, "Forest plot")
    return fig


# ---- posterior predictive checks and conditional effects ---------------------------------

REPLICATES = 50


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of each row of ``values`` (data sets x rows) in each bin (beyond the last: none)."""
    nb = len(edges) - 1
    bins = np.searchsorted(edges, values, side="right") - 1
    inside = (bins >= 0) & (bins < nb)
    sets = np.broadcast_to(np.arange(values.shape[0])[:, None] * nb, values.shape)
    counts = np.bincount((sets + bins)[inside], minlength=values.shape[0] * nb)
    return counts.reshape(values.shape[0], nb) / values.shape[1]


def _observed_vs_replicated(ax, y, rep, discrete: bool, response: str) -> None:
    """Observed data against replicated data sets: densities, or for counts and binary
    data the share of rows at each value as bars, with the replicated sets' median share
    and 90% range at each value."""
    if discrete:
        low = float(min(y.min(), rep.min()))
        high = float(max(y.max(), np.quantile(rep, 0.995)))     # rare replicated tails cut
        edges = (np.arange(low - 0.5, high + 1.5) if high - low <= 60
                 else np.linspace(low, high + 1e-9, 41))
        centres = (edges[:-1] + edges[1:]) / 2
        ax.bar(centres, _shares(y[None, :], edges)[0], width=0.9 * np.diff(edges),
               color=NO_POOL, alpha=0.7, label=f"observed {response}")
        mid, lo, hi = np.quantile(_shares(rep, edges), [0.5, 0.05, 0.95], axis=0)
        ax.vlines(centres, lo, hi, color=PARTIAL, lw=1.5)
        ax.plot(centres, mid, ls="", marker="o", ms=4, color=PARTIAL,
                label=f"{len(rep)} replicated data sets: median, 90% range")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_ylabel("share of rows")
        ax.set_xlim(edges[0], edges[-1])
    else:
        low, high = np.quantile(np.concatenate([y, rep.ravel()]), [0.002, 0.998])
        pad = 0.05 * (high - low)
        grid = np.linspace(low - pad, high + pad, 200)
        for i, r in enumerate(rep):
            ax.plot(grid, stats.gaussian_kde(r)(grid), color=PARTIAL, alpha=0.2, lw=0.8,
                    label=f"{len(rep)} replicated data sets" if i == 0 else None)
        ax.plot(grid, stats.gaussian_kde(y)(grid), color="black", lw=2,
                label=f"observed {response}")
        ax.set_yticks([])
    ax.set_xlabel(response)
    ax.set_title("observed vs replicated data")
    ax.legend(frameon=False, fontsize="small", loc="best")


def _statistic_panel(ax, draws, row, name: str, what: str, legend: bool) -> None:
    """Histogram of T(y_rep), T(y) as a line and the Bayesian p-value in the title (red
    when below 0.05 or above 0.95). A statistic with few distinct values (counts, binary
    data) gets one bar per value instead of bins that fall between them."""
    values, freq = np.unique(draws, return_counts=True)
    if len(values) <= 40:
        width = 0.8 * np.diff(values).min() if len(values) > 1 else 0.05 * max(abs(values[0]), 1)
        ax.bar(values, freq, width=width, color=PARTIAL, alpha=0.6, label="T(replicated)")
    else:
        ax.hist(draws, bins=40, color=PARTIAL, alpha=0.6, label="T(replicated)")
    ax.axvline(row["observed"], color="black", lw=2, label="T(observed)")
    flagged = bool(ppc_stats.extreme(row["p_value"]))
    ax.set_title(f"{name}, p = {row['p_value']:.3f}", color=FLAG if flagged else "black",
                 fontweight="bold" if flagged else "normal")
    ax.set_yticks([])
    ax.set_xlabel(what)
    if legend:
        ax.legend(frameon=False, fontsize="small", loc="upper left")


def _levels_panel(ax, rows, name: str, what: str, by: str) -> None:
    """Per level: the observed statistic against the 90% interval of the replicated one."""
    y = np.arange(len(rows))
    flagged = ppc_stats.extreme(rows["p_value"])
    ax.hlines(y, rows["replicated_5%"], rows["replicated_95%"], color=PARTIAL,
              alpha=_alpha(len(rows)), lw=1.4, label="replicated, 90% interval")
    ax.scatter(rows["observed"], y, s=14 if len(rows) <= MAX_LABELS else 4, zorder=3,
               color=np.where(flagged, FLAG, "black"), label="observed")
    if len(rows) <= MAX_LABELS:
        ax.set_yticks(y, rows.index.get_level_values("level"),
                      fontsize=max(5, 9 - len(rows) // 15))
    else:
        ax.set_yticks([])
        ax.set_ylabel(f"{len(rows)} levels of {by}")
    ax.set_ylim(-1, len(rows))
    ax.set_xlabel(what)
    ax.set_title(f"{name} by {by}: {int(flagged.sum())} of {len(rows)} with p < "
                 f"{ppc_stats.P_EXTREME:g} or > {1 - ppc_stats.P_EXTREME:g}", fontsize="medium")
    ax.legend(frameon=False, fontsize="small")


def ppc(fit, stat=None, by: str | None = None, *, kind: str = "density",
        random_seed: int | None = None, table: pd.DataFrame | None = None, ax=None, axes=None):
    """Posterior predictive check: does the model reproduce the data?

    ``kind="density"``: a panel of the observed response against ``REPLICATES`` replicated
    data sets (densities; share of rows per value for counts and binary data), then one
    panel per statistic; ``kind="stats"``: the statistic panels only. A statistic panel is
    a histogram of T(y_rep) with T(y) and the Bayesian p-value of `ppc.statistics`; with
    ``by`` (a grouping factor or column), per level the observed T against the replicated
    90% interval, the title counting levels with p < 0.05 or > 0.95. ``stat``: as in
    `ppc.statistics`, or ``table=`` a table it already made (then ``stat`` and ``by`` are
    its). ``ax=`` when there is one panel, else ``axes=`` (one per panel).
    """
    if kind not in ("density", "stats"):
        raise SpecError(f"kind must be 'density' or 'stats', but got {kind!r}")
    design = fit.model.design
    if table is None:
        table = ppc_stats.statistics(fit, stat, by, random_seed=random_seed)
    by = table.attrs["by"]
    statistics = list(dict.fromkeys(table.index.get_level_values("statistic")))
    n = len(statistics) + (kind == "density")
    fig, panels = _either(n, ax, axes, width=4.4, height=3.4 if by is None else 3.0 + min(
        0.16 * table.loc[statistics[0]].shape[0], 6.0))
    response = label(design, scale="response")
    if kind == "density":
        rep = ppc_stats.replicated(fit, random_seed).values
        rep = rep.reshape(-1, rep.shape[-1])
        pick = np.random.default_rng(random_seed).choice(len(rep), min(REPLICATES, len(rep)),
                                                         replace=False)
        discrete = design.spec.family_object.discrete
        _observed_vs_replicated(panels[0], design.y, rep[pick], discrete, response)
    draws = table.attrs["draws"]
    for i, (ax_, name) in enumerate(zip(panels[kind == "density":], statistics)):
        words = ppc_stats.LABELS.get(name, name)
        what = f"{words} of {response}"
        rows = table.loc[[name]]
        if by is None:
            _statistic_panel(ax_, draws[:, table.index.get_loc((name, "all"))], rows.iloc[0],
                             words, what, legend=i == 0)
        else:
            _levels_panel(ax_, rows, words, what, by)
    _title(fig, ax is None and axes is None, "Posterior predictive check"
           + (f" by {by}" if by else ""))
    return fig


def conditional_effects(fit, variable: str, by: str | None = None, *, prob: float | None = None,
                        ax=None, data: bool = True):
    """The expected response along ``variable`` (population level, other columns at typical
    values: `effects.conditional_effects`), one line and interval ribbon per ``by`` level
    for a numeric variable, points with error bars for a categorical one; ``data=True``
    adds the observed rows as faint points. One panel (``ax=``)."""
    prob = ci_prob(prob)
    lo, hi = interval_columns(prob)
    table = effects.conditional_effects(fit, variable, by, prob=prob)
    design = fit.model.design
    column = design.data[variable]
    numeric = pd.api.types.is_numeric_dtype(column) and column.nunique() > 2
    categories = [] if numeric else list(pd.unique(table[variable]))
    fig, ax = _panel(6.0, 4.2, ax)
    levels = list(pd.unique(table[by])) if by else [None]
    colours = {level: plt.get_cmap("tab10")(i % 10) for i, level in enumerate(levels)}
    if data:
        _raw_points(ax, design, variable, by, numeric, categories, colours)
    width = 0.6 / len(levels)
    for i, level in enumerate(levels):
        rows = table if by is None else table[table[by] == level]
        colour = colours[level] if by else PARTIAL
        name = None if by is None else (f"{level:.3g}" if isinstance(level, float) else str(level))
        mean = rows["mean"].to_numpy(float)
        if numeric:
            x = rows[variable].to_numpy(float)
            ax.plot(x, mean, color=colour, lw=2, label=name)
            ax.fill_between(x, rows[lo], rows[hi], color=colour, alpha=0.2, lw=0)
        else:
            x = np.arange(len(rows)) + (i - (len(levels) - 1) / 2) * width
            ax.errorbar(x, mean, yerr=[mean - rows[lo], rows[hi] - mean], fmt="o",
                        color=colour, capsize=3, lw=1.5, label=name)
    if not numeric:
        ax.set_xticks(range(len(categories)), [str(c) for c in categories])
    ax.set_xlabel(variable)
    ax.set_ylabel(label(design, scale="mean"))
    ax.set_title(f"{label(design, scale='mean')} by {variable}, {_pct(prob)} intervals"
                 + ("; points: observed rows" if data else ""), fontsize="medium")
    if by:
        ax.legend(title=by, frameon=False, fontsize="small")
    return fig


def _raw_points(ax, design, variable, by, numeric: bool, categories, colours) -> None:
    """The observed rows, faint: the response (successes per trial for binomial rows)."""
    y = design.y / design.trials if design.trials is not None else design.y
    x = design.data[variable]
    if numeric:
        x = x.to_numpy(float)
    else:
        position = {str(c): i for i, c in enumerate(categories)}
        x = x.astype(str).map(position).to_numpy(float)
        x = x + np.random.default_rng(0).uniform(-0.15, 0.15, len(x))
    colour = np.array([NO_POOL] * len(y), dtype=object)
    if by and not isinstance(next(iter(colours)), float):
        keys = design.data[by].astype(str).to_numpy()
        lookup = {str(level): c for level, c in colours.items()}
        colour = [lookup.get(k, NO_POOL) for k in keys]
    ax.scatter(x, y, s=8, c=list(colour), alpha=min(0.35, _alpha(len(y))), lw=0,
               zorder=0, label="_observed rows")


# ---- priors and their sensitivity ---------------------------------------------------------

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
            entry = names.sd_entry(g.name, t)
            out.append((entry, sd.sel({names.term_dim(g.name): t}).values.ravel(), entries.get(entry)))
    for extra in fit.spec.family_object.extras:          # sigma, alpha, nu, psi, kappa
        out.append((extra.name, post[extra.name].values.ravel(), entries.get(extra.name)))
    return out


def variance_components(fit, *, axes=None):
    """Prior vs posterior of every group SD and the residual SD: how much the data taught.
    ``axes``: one Axes per SD (and family parameter)."""
    parts = _variance_draws(fit)
    if not parts:
        raise SpecError("this fit has no variance components to plot")
    fig, panels = _panels(len(parts), width=4.5, height=3.4, axes=axes)
    for ax, (entry, draws, prior) in zip(panels, parts):
        top = np.quantile(draws, 0.999) * 1.6
        grid = np.linspace(0, top, 400)
        ax.hist(draws, bins=60, range=(0, top), density=True, color=PARTIAL, alpha=0.55,
                label="posterior")
        density = None if prior is None else _prior_density(prior, grid)
        if density is not None:
            ax.plot(grid, density, color=COMPLETE, lw=2, label=f"prior {prior!r}")
        ax.set_xlim(0, top)
        ax.set_xlabel(label(fit.model.design, entry))
        ax.set_yticks([])
        ax.legend(frameon=False, fontsize="small")
    _title(fig, axes is None, "Variance components: prior vs posterior")
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


def prior_grid(table: pd.DataFrame, targets: list[str] | None = None, *, axes=None):
    """Each target's posterior mean and interval against the prior setting of a grid.
    ``axes``: one Axes per target."""
    targets = targets or list(dict.fromkeys(table["target"]))
    lo, hi = [c for c in table.columns if c.startswith("eti")][:2]
    x, ticks, xlabel, log = _grid_axis(table)
    missing = [t for t in targets if t not in set(table["target"])]
    if missing:
        raise SpecError(f"target {missing[0]!r} is not in the grid table; it has "
                        f"{list(dict.fromkeys(table['target']))}")
    fig, panels = _panels(len(targets), width=4.5, height=3.4, axes=axes)
    for ax, target in zip(panels, targets):
        rows = table[table["target"] == target].sort_values("point")
        mean = rows["mean"].to_numpy()
        ax.errorbar(x, mean, yerr=[mean - rows[lo], rows[hi] - mean], fmt="o-", color=PARTIAL,
                    ecolor=PARTIAL, elinewidth=1.5, capsize=3, lw=1)
        if log:
            ax.set_xscale("log")
        ax.set_xticks(x, ticks, rotation=0 if len(max(ticks, key=len)) < 8 else 30, ha="right"
                      if len(max(ticks, key=len)) >= 8 else "center")
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel(xlabel)
        ax.set_title(label(None, target), fontsize="medium")
        ax.set_ylabel(f"posterior mean, {lo[3:-3]}% interval")
    _title(fig, axes is None, "Posterior against the prior setting")
    return fig


def _support(entry: str) -> tuple[float | None, float | None]:
    """Bounds of a quantity's support, for boundary-corrected densities."""
    if entry.startswith(("icc[", "pooling_factor[")):
        return 0.0, 1.0
    if "_corr[" in entry:
        return -1.0, 1.0
    if "_sd[" in entry or entry == "sigma":
        return 0.0, None
    return None, None


def _weighted_density(draws: np.ndarray, weights, grid: np.ndarray, support) -> np.ndarray:
    """Weighted Gaussian KDE (Scott's bandwidth), reflected at the bounds of the support so
    no mass leaks past zero for an SD, or past 0 and 1 for an ICC.

    Binned: the weights are summed on the (evenly spaced) grid, extended by four bandwidths
    each side, and convolved with the kernel. Evaluating the kernel at every draw for every
    grid point took 8 of the demo report's 25 s; at the grid's resolution the curves are
    the same.
    """
    weights = np.full(draws.size, 1.0 / draws.size) if weights is None else weights
    h = stats.gaussian_kde(draws, weights=weights).covariance[0, 0] ** 0.5
    step = grid[1] - grid[0]
    reach = int(np.ceil(4 * h / step))
    edges = grid[0] + step * (np.arange(-reach, grid.size + reach + 1) - 0.5)
    centres = [draws] + [2 * bound - draws for bound in support if bound is not None]
    mass = sum(np.histogram(c, bins=edges, weights=weights)[0] for c in centres)
    offsets = step * np.arange(-reach, reach + 1)
    kernel = np.exp(-0.5 * (offsets / h) ** 2) / (np.sqrt(2 * np.pi) * h)
    density = np.convolve(mass, kernel, mode="same")[reach:reach + grid.size]
    lower, upper = support
    outside = ((grid < lower) if lower is not None else False) | (
        (grid > upper) if upper is not None else False)
    return np.where(outside, np.nan, density)


# alpha < 1 weakens the scaled component, alpha > 1 strengthens it: one colour and one line
# style each, so the lines stay apart in grey print and for colour-blind readers
SCALED_STYLES = [("#0072b2", "--"), ("#d55e00", ":"), ("#009e73", "-."),
                 ("#cc79a7", (0, (5, 1, 1, 1)))]


def _flag(ax, diagnosis: str) -> None:
    """A red frame, and the diagnosis under the panel's title."""
    for spine in ax.spines.values():
        spine.set_edgecolor(FLAG)
        spine.set_linewidth(1.4)
    ax.set_title(f"{ax.get_title()}\nflagged: {diagnosis}", color=FLAG, fontsize="medium")


def power_scale(fit, targets: list[str] | None = None, alphas=(0.8, 1.25), table=None, *,
                axes=None):
    """How each quantity's posterior moves when the prior (left) or the likelihood (right)
    is power-scaled by ``alphas``: importance-reweighted densities, no refitting. Pass the
    ``sensitivity.power_scale`` table as ``table`` to print each CJS distance in its panel
    title and to flag (in red, with the diagnosis) the quantities it diagnoses.
    ``axes``: two Axes per quantity, in order (quantity 1 prior, quantity 1 likelihood, ...)."""
    quantities = sensitivity.quantity_draws(fit, targets)
    weights = sensitivity.scaling_weights(fit, alphas)
    entries = list(quantities.data_vars)
    fig, panels = _panels(2 * len(entries), width=4.5, height=2.5, ncols=2, axes=axes)
    styles = dict(zip(sorted(alphas), SCALED_STYLES))
    design = fit.model.design
    for i, entry in enumerate(entries):
        draws = quantities[entry].values.ravel()
        support = _support(entry)
        lo_q, hi_q = np.quantile(draws, [0.001, 0.999])
        pad = 0.1 * (hi_q - lo_q)
        grid = np.linspace(lo_q - pad, hi_q + pad, 300)
        known = table is not None and entry in table.index
        diagnosis = table.loc[entry, "diagnosis"] if known else "-"
        for ax, component in zip(panels[2 * i:2 * i + 2], ("prior", "likelihood")):
            ax.plot(grid, _weighted_density(draws, None, grid, support), color="black",
                    lw=1.5, label="alpha = 1 (posterior)")
            for alpha in alphas:
                w = weights.sel(component=component, alpha=alpha).values.ravel()
                colour, style = styles[alpha]
                ax.plot(grid, _weighted_density(draws, w, grid, support), color=colour,
                        lw=1.8, ls=style, label=f"alpha = {alpha:g}")
            cjs = f", CJS {table.loc[entry, component]:.3f}" if known else ""
            ax.set_title(f"{component} power-scaled{cjs}", fontsize="medium")
            if diagnosis != "-":
                _flag(ax, diagnosis)
            ax.set_yticks([])
            ax.set_xlabel(label(design, entry))
    panels[1].legend(frameon=False, fontsize="small", loc="upper right")
    _title(fig, axes is None, "Power-scaling sensitivity")
    return fig


def prior_predictive(check, fit=None, *, axes=None):
    """Implied ICC, spread of group means and outcome range against the data.

    ``check`` is ``model.prior_predictive()``; with ``fit`` the posterior ICC is overlaid.
    ``axes``: one Axes per statistic of ``check.statistics``.
    """
    stats_ = check.statistics
    fig, panels = _panels(len(stats_), width=4.2, height=3.2, ncols=min(len(stats_), 4),
                          axes=axes)
    posterior_icc = None if fit is None else fit.icc().draws
    for ax, (name, (draws, observed)) in zip(panels, stats_.items()):
        values = draws.ravel()
        lo_q, hi_q = np.quantile(values, [0.005, 0.995])
        if name.startswith("icc["):
            lo_q, hi_q = 0.0, 1.0
        bins = np.linspace(lo_q, hi_q if hi_q > lo_q else lo_q + 1, 50)
        ax.hist(np.clip(values, bins[0], bins[-1]), bins=bins, density=True, color=NO_POOL,
                alpha=0.8, label="prior predictive")
        if np.isfinite(observed):
            ax.axvline(observed, color=COMPLETE, lw=2, label="observed")
        if posterior_icc is not None and name.startswith("icc["):
            post = posterior_icc.sel(group=name[4:-1]).values.ravel()
            ax.hist(post, bins=bins, density=True, color=PARTIAL, alpha=0.6, label="posterior")
        ax.set_yticks([])
        ax.set_xlabel(name)
        ax.legend(frameon=False, fontsize="small")
    _title(fig, axes is None,
           "Prior predictive check (tails beyond 0.5% / 99.5% piled at the edges)")
    return fig


def rank_histograms(ranks: pd.DataFrame, case: str, bins: int = 20, *, axes=None):
    """Simulation-based calibration ranks of one case (``calibration.run``): one histogram
    per parameter, with the band where 99 % of bins fall when the ranks are uniform.
    ``axes``: one Axes per parameter."""
    rank_draws = ranks.attrs.get("rank_draws", RANK_DRAWS)
    table = ranks[ranks["case"] == case]
    if table.empty:
        raise SpecError(f"no ranks for case {case!r}; cases: {sorted(ranks['case'].unique())}")
    parameters = list(dict.fromkeys(table["parameter"]))
    fig, panels = _panels(len(parameters), width=3.4, height=2.6,
                          ncols=min(len(parameters), 4), axes=axes)
    for ax, parameter in zip(panels, parameters):
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
    panels[0].set_ylabel("replications")
    _title(fig, axes is None, f"SBC {case}: {table['rep'].nunique()} replications, ranks among "
           f"{rank_draws} posterior draws (grey: 99% band under uniformity)")
    return fig


def save(fig, path, dpi: int = 150) -> None:
    """Save a figure as PNG (or any format matplotlib knows from the suffix) and close it."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


__all__ = ["caterpillar", "conditional_effects", "forest", "label", "pooling_vs_size", "ppc",
           "power_scale", "prior_grid", "prior_predictive", "rank_histograms", "save",
           "shrinkage", "variance_components"]
