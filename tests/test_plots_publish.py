"""The figures people publish (issue 19): every plot draws into the caller's Axes, labels
speak the response's language, caterpillar panels line up, the meta-analysis shrinkage and
forest plots use the studies' standard errors, and the PPC / conditional-effects plots show
exactly the numbers ``ppc.py`` / ``effects.py`` computed. Stored fits and prior draws only."""

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

import hierarchical as hier  # noqa: E402
from hierarchical import effects, plots, pooling, ppc  # noqa: E402
from hierarchical.exceptions import SpecError  # noqa: E402
from hierarchical.summary import ci_prob, interval_columns  # noqa: E402

from .conftest import prior_fit  # noqa: E402

NARROW = {"Intercept": hier.Prior("Normal", mu=1, sigma=0.3),
          "fixed": hier.Prior("Normal", mu=0, sigma=0.3),
          "g_sd": hier.Prior("HalfNormal", sigma=0.3)}
INTERNAL = re.compile(r"_sd\[|_corr\[|link scale|\w+_effect|\[Intercept\]")


def counts(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(8), rng.integers(3, 9, 8))
    frame = pd.DataFrame({"g": g, "x": rng.normal(size=g.size),
                          "trt": np.resize(["a", "b", "c"], g.size)})
    frame["y"] = rng.poisson(np.exp(1 + 0.3 * frame["x"]))
    frame["hit"] = (rng.uniform(size=g.size) < 0.5).astype(int)
    return frame


@pytest.fixture(scope="module")
def poisson_fit():
    return prior_fit(hier.Model("y ~ x + trt + (1 | g)", counts(), family="poisson",
                                priors=NARROW), draws=100, seed=1)


@pytest.fixture(scope="module")
def schools():
    """Eight schools: complete, no and partial pooling, each from prior draws."""
    data = hier.datasets.load("eight_schools")
    model = hier.Model(hier.meta_analysis("y", se="se", group="school"), data)
    fits = {pooling.PARTIAL: prior_fit(model, draws=40),
            pooling.COMPLETE: prior_fit(hier.Model(pooling.complete_pooling_spec(model.spec),
                                                   data), draws=40)}
    fits[pooling.no_pooling_name(model, "school")] = prior_fit(
        hier.Model(pooling.no_pooling_spec(model, "school"), data), draws=40)
    return pooling.from_fits(fits)


@pytest.fixture(scope="module")
def sleep_pooling(stored_comparison):
    return stored_comparison("sleepstudy_pooling")


def _texts(fig) -> list[str]:
    out = []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels() + ax.texts]
    return out


# --- labels ----------------------------------------------------------------------------

def test_labels_use_the_response_and_its_scale(stored_fit, poisson_fit, schools):
    radon = stored_fit("radon_intercepts").model.design
    assert plots.label(radon, ("county", "Intercept")) == "county intercept, log radon"
    assert plots.label(radon, "county_sd[Intercept]") == "SD of county intercepts, log radon"
    assert plots.label(radon, "sigma") == "residual SD, log radon"
    assert plots.label(radon, "floor") == "coefficient of floor, log radon"
    assert plots.label(radon, scale="mean") == "expected log radon"
    counts_ = poisson_fit.model.design
    assert plots.label(counts_, ("g", "Intercept")) == "g intercept (log rate of y)"
    assert plots.label(counts_, "g_sd[Intercept]") == "SD of g intercepts (log rate of y)"
    assert plots.label(counts_, scale="ratio") == "rate ratio for y"
    assert plots.label(counts_, "icc[g]") == "ICC of g"            # no scale: a proportion
    logit = hier.Model("hit ~ x + (1 | g)", counts(), family="bernoulli").design
    assert plots.label(logit, ("g", "x")) == "g slope on x (log-odds of hit)"
    assert plots.label(logit, scale="mean") == "probability of hit"
    assert plots.label(logit, scale="ratio") == "odds ratio for hit"
    assert plots.label(schools.partial.model.design, ("school", "Intercept")) == "school effect, y"
    assert plots.label(None, "Batch_sd[Intercept]") == "SD of Batch intercepts"
    with pytest.raises(SpecError, match="log or logit link"):
        plots.label(radon, scale="ratio")


# --- ax= / axes= -----------------------------------------------------------------------

def _axes(n):
    fig, axes = plt.subplots(1, n, squeeze=False)
    return fig, list(axes.flat)


def _drew(ax) -> bool:
    return bool(ax.lines or ax.collections or ax.patches)


def test_every_plot_draws_into_the_callers_axes(sleep_pooling, poisson_fit, schools):
    fit = sleep_pooling.partial
    multi = {
        "shrinkage": (lambda axes: plots.shrinkage(sleep_pooling, axes=axes), 2),
        "caterpillar": (lambda axes: plots.caterpillar(fit, axes=axes), 2),
        "pooling_vs_size": (lambda axes: plots.pooling_vs_size(sleep_pooling, axes=axes), 2),
        "variance_components": (lambda axes: plots.variance_components(fit, axes=axes), 3),
        "forest": (lambda axes: plots.forest(fit, axes=axes), 2),
        "ppc": (lambda axes: plots.ppc(poisson_fit, ["mean", "max"], axes=axes,
                                       random_seed=1), 3),
    }
    for name, (draw, n) in multi.items():
        fig, axes = _axes(n)
        assert draw(axes) is fig, name
        assert all(_drew(ax) for ax in axes), name
        assert fig._suptitle is None, name                # the caller's figure, the caller's title
        plt.close(fig)
        fig, axes = _axes(n + 1)
        with pytest.raises(SpecError, match=f"needs {n} Axes"):
            draw(axes)
        plt.close(fig)
    single = {
        "forest (meta-analysis)": lambda ax: plots.forest(schools.partial, ax=ax),
        "conditional_effects": lambda ax: plots.conditional_effects(poisson_fit, "x", ax=ax),
        "ppc (one statistic)": lambda ax: plots.ppc(poisson_fit, "sd", kind="stats", ax=ax,
                                                    random_seed=1),
    }
    for name, draw in single.items():
        fig, ax = plt.subplots()
        assert draw(ax) is fig and _drew(ax), name
        plt.close(fig)
    fig, ax = plt.subplots()
    with pytest.raises(SpecError, match="needs axes= with 2 Axes"):
        plots.forest(fit, ax=ax)
    plt.close("all")


def test_no_internal_names_on_the_figures(sleep_pooling, poisson_fit, schools):
    figures = [plots.shrinkage(sleep_pooling), plots.caterpillar(sleep_pooling.partial),
               plots.caterpillar(poisson_fit, kind="deviation"),
               plots.variance_components(poisson_fit), plots.forest(poisson_fit),
               plots.forest(schools.partial), plots.pooling_vs_size(schools)]
    for fig in figures:
        bad = [t for t in _texts(fig) if INTERNAL.search(t)]
        assert not bad, bad
    plt.close("all")


# --- caterpillar ---------------------------------------------------------------------------

def test_caterpillar_panels_share_one_level_order(sleep_pooling):
    fit = sleep_pooling.partial
    fig = plots.caterpillar(fit)
    ticks = [[t.get_text() for t in ax.get_yticklabels()] for ax in fig.axes]
    assert ticks[0] == ticks[1] and len(ticks[0]) == 18
    intercepts = fit.group_effects().xs(("Subject", "Intercept"), level=("group", "term"))
    assert ticks[0] == list(intercepts["mean"].sort_values().index)   # the first panel sorts
    slopes = fit.group_effects().xs(("Subject", "Days"), level=("group", "term"))
    drawn = fig.axes[1].collections[1].get_offsets()[:, 0]            # the slope means, in rows
    np.testing.assert_allclose(drawn, slopes["mean"].reindex(ticks[0]))
    plt.close(fig)


def test_caterpillar_writes_each_levels_size(stored_fit):
    fit = stored_fit("radon_intercepts")
    fig = plots.caterpillar(fit)
    ax = fig.axes[0]
    levels = [t.get_text() for t in ax.get_yticklabels()]
    sizes = [t.get_text() for t in ax.texts if t.get_text().startswith("n=")]
    g = fit.model.design.groups[0]
    counts_ = dict(zip(g.levels, g.counts))
    assert sizes == [f"n={counts_[level]}" for level in levels]
    assert ax.get_xlabel() == "county intercept, log radon"
    plt.close(fig)


# --- meta-analysis: shrinkage against the standard error, forest ---------------------------

def test_meta_analysis_shrinkage_is_against_the_standard_error(schools):
    se = hier.datasets.load("eight_schools").set_index("school")["se"]
    for fig in (plots.shrinkage(schools), plots.pooling_vs_size(schools)):
        ax = fig.axes[0]
        assert "standard error" in ax.get_xlabel()
        assert ax.get_xscale() == "linear"
        plt.close(fig)
    ax = plots.shrinkage(schools).axes[0]
    no_pool = ax.collections[0].get_offsets()
    np.testing.assert_allclose(no_pool[:, 0], se.loc[schools.table.index.get_level_values("level")])
    np.testing.assert_allclose(no_pool[:, 1], schools.table["no_pool_mean"])
    plt.close("all")


def test_forest_of_a_meta_analysis_has_a_row_per_study_and_the_overall_effect(schools):
    fit = schools.partial
    data = hier.datasets.load("eight_schools")
    fig = plots.forest(fit)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(data["school"]) + ["overall effect"]
    observed = [line for line in ax.lines if line.get_label().startswith("observed")][0]
    np.testing.assert_allclose(observed.get_xdata(), data["y"])
    lo, hi = interval_columns(ci_prob())
    pooled = fit.group_effects().xs(("school", "Intercept"), level=("group", "term"))
    partial = [line for line in ax.lines if line.get_label().startswith("partially")][0]
    np.testing.assert_allclose(partial.get_xdata(), pooled["mean"])
    overall = fit.fixed_effects().loc["Intercept"]
    diamond = [p for p in ax.patches if p.get_label().startswith("overall")][0].get_xy()
    assert diamond[:, 0].min() == pytest.approx(overall[lo])
    assert diamond[:, 0].max() == pytest.approx(overall[hi])
    new = [c for c in ax.collections if c.get_label().startswith("new school")]
    assert len(new) == 1                                   # the prediction interval
    expected = fit.predict(pd.DataFrame({"school": ["(new study)"]}), kind="link",
                           random_seed=0).iloc[0]          # a new level, the plot's seed
    np.testing.assert_allclose(new[0].get_segments()[0][:, 0], expected[[lo, hi]])
    plt.close(fig)


def test_forest_of_fixed_effects_and_sds(poisson_fit, stored_fit):
    fig = plots.forest(poisson_fit, exponentiate=True, prob=0.9)
    fixed_ax, sd_ax = fig.axes
    fixed = poisson_fit.fixed_effects(0.9)
    assert [t.get_text() for t in fixed_ax.get_yticklabels()] == [
        "Intercept (baseline rate)", "x", "trt[b]", "trt[c]"]
    assert fixed_ax.get_xscale() == "log" and fixed_ax.get_xlabel() == "rate ratio for y"
    np.testing.assert_allclose(fixed_ax.lines[0].get_xdata(), np.exp(fixed["mean"]))
    assert [t.get_text() for t in sd_ax.get_yticklabels()] == ["SD of g intercepts"]
    assert sd_ax.get_xlabel() == "SD (log rate of y)"
    plt.close(fig)
    with pytest.raises(SpecError, match="log or logit link"):
        plots.forest(stored_fit("radon_intercepts"), exponentiate=True)


# --- power-scaling ---------------------------------------------------------------------------

def test_power_scale_lines_differ_and_flags_show(stored_fit):
    fit = stored_fit("dyestuff_marginalised")
    targets = ["Batch_sd[Intercept]", "sigma"]
    table = pd.DataFrame({"prior": [0.08, 0.02], "likelihood": [0.13, 0.04],
                          "diagnosis": ["prior-data conflict", "-"]},
                         index=pd.Index(targets, name="quantity"))
    fig = plots.power_scale(fit, targets, table=table)
    flagged, plain = fig.axes[0], fig.axes[2]
    assert "flagged: prior-data conflict" in flagged.get_title()
    assert to_hex(flagged.title.get_color()) == plots.FLAG
    assert "flagged" not in plain.get_title() and to_hex(plain.title.get_color()) == "#000000"
    styles = [(to_hex(line.get_color()), str(line.get_linestyle())) for line in flagged.lines]
    assert len({c for c, _ in styles}) == len({s for _, s in styles}) == len(styles) == 3
    legend = fig.axes[1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "alpha = 1 (posterior)", "alpha = 0.8", "alpha = 1.25"]
    assert flagged.get_xlabel() == "SD of Batch intercepts, Yield"
    plt.close(fig)


# --- posterior predictive check ------------------------------------------------------------

def test_ppc_panels_show_the_tables_p_values(poisson_fit):
    table = ppc.statistics(poisson_fit, random_seed=5)
    fig = plots.ppc(poisson_fit, random_seed=5)
    overlay, *panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == len(table)
    shown = [float(re.search(r"p = ([0-9.]+)", ax.get_title())[1]) for ax in panels]
    np.testing.assert_allclose(shown, table["p_value"], atol=5e-4)
    assert [ax.get_xlabel() for ax in panels] == [
        "mean of y", "standard deviation of y", "share of zeros of y", "maximum of y"]
    # counts: bars of the observed share of rows at each value, no density curves
    assert not any(len(line.get_xdata()) == 200 for line in overlay.lines)
    y = poisson_fit.model.design.y
    for bar in overlay.patches:
        value = bar.get_x() + bar.get_width() / 2
        assert bar.get_height() == pytest.approx(np.mean(y == round(value)))
    # each histogram holds T(y_rep) of every draw; the line is T(y)
    mean_ax = panels[0]
    assert mean_ax.lines[0].get_xdata()[0] == pytest.approx(table.loc[("mean", "all"), "observed"])
    plt.close(fig)


def test_ppc_by_group_counts_the_extreme_levels(poisson_fit):
    table = ppc.statistics(poisson_fit, "mean", by="g", random_seed=5)
    fig = plots.ppc(poisson_fit, "mean", by="g", kind="stats", random_seed=5)
    ax = fig.axes[0]
    extreme = int(((table["p_value"] < 0.05) | (table["p_value"] > 0.95)).sum())
    assert ax.get_title().startswith(f"mean by g: {extreme} of {len(table)} ")
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table.index.get_level_values("level"))
    np.testing.assert_allclose(ax.collections[1].get_offsets()[:, 0], table["observed"])
    plt.close(fig)
    # a table made already is drawn as it is (the report computes it once for both)
    given = plots.ppc(poisson_fit, kind="stats", table=table)
    assert given.axes[0].get_title() == ax.get_title()
    plt.close(given)
    with pytest.raises(SpecError, match="kind must be"):
        plots.ppc(poisson_fit, kind="violin")


def test_ppc_of_continuous_data_overlays_densities(stored_fit):
    fit = stored_fit("dyestuff_marginalised")
    fig = plots.ppc(fit, "sd", random_seed=1)
    overlay = fig.axes[0]
    assert len(overlay.lines) == plots.REPLICATES + 1      # the replicated sets and the data
    assert overlay.get_xlabel() == "Yield"
    plt.close(fig)


# --- conditional effects -------------------------------------------------------------------

def test_conditional_effects_draw_one_line_per_level(poisson_fit):
    table = effects.conditional_effects(poisson_fit, "x", by="trt")
    fig = plots.conditional_effects(poisson_fit, "x", by="trt")
    ax = fig.axes[0]
    lines = [line for line in ax.lines if not line.get_label().startswith("_")]
    assert [line.get_label() for line in lines] == ["a", "b", "c"]
    for line, (_, rows) in zip(lines, table.groupby("trt", sort=False)):
        np.testing.assert_allclose(line.get_ydata(), rows["mean"])
    assert ax.get_ylabel() == "expected y"
    assert len(ax.collections) == 1 + 3                     # the data and three ribbons
    plt.close(fig)
    fig = plots.conditional_effects(poisson_fit, "trt", data=False)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert len(ax.containers) == 1                          # one set of error bars
    plt.close(fig)


def test_conditional_effects_of_a_probability():
    fit = prior_fit(hier.Model("hit ~ x + (1 | g)", counts(), family="bernoulli",
                               priors=NARROW), draws=60)
    fig = plots.conditional_effects(fit, "x")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "probability of hit"
    assert 0 <= ax.lines[0].get_ydata().min() and ax.lines[0].get_ydata().max() <= 1
    plt.close(fig)
