"""The analysis report: one self-contained HTML file (figures embedded), plus the saved fit,
the PNG figures and the tables as CSV, written to one output folder.

Only formatting happens here: every number comes from the `Analysis` (``analysis.py``), the
fit, or the posterior predictive check (``ppc.py``), drawn after the fit is saved.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import io
import shutil
from datetime import datetime, timezone
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc as pm
import pytensor

from . import names, plots, ppc
from .model_file import display_path
from .persist import versions

FIGURE_TITLES = {
    "shrinkage": "Shrinkage: no pooling to partial pooling",
    "pooling_vs_size": "Shrinkage against group size",
    "caterpillar": "Group effects",
    "variance_components": "Variance components: prior and posterior",
    "power_scale": "Prior sensitivity: power-scaled posteriors",
    "ppc": "Posterior predictive check",
}
FIGURE_NOTES = {
    "shrinkage": "Each arrow goes from a level's own estimate (no pooling) to its partial-pooling "
                 "estimate; the dashed line is complete pooling. Small groups move most.",
    "pooling_vs_size": "Empirical shrinkage (1 - (partial - complete) / (no pooling - complete)) "
                       "and the model-based shrinkage against the number of observations.",
    "caterpillar": "Posterior mean and interval of each level's coefficient, sorted; the "
                   "dashed line is the population mean.",
    "variance_components": "Posterior (filled) against prior (line) for every SD: where they "
                           "coincide, the data said little.",
    "power_scale": "How each posterior moves when the prior (or the likelihood) is raised to "
                   "the power 0.8 or 1.25.",
    "ppc": "The data against data replicated from the posterior: a test statistic of the data "
           "far in the tail of its replications is a feature the model does not reproduce.",
}
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 1080px; margin: 2rem auto; padding: 0 1.5rem; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h2 { border-bottom: 1px solid #d0d7de;
     padding-bottom: .25rem; margin-top: 2.2rem; font-size: 1.3rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
.meta { color: #59636e; font-size: .92rem; } code, pre { background: #f6f8fa; border-radius: 4px; }
pre { padding: .7rem; overflow-x: auto; font-size: .82rem; } code { padding: 0 .25rem; }
pre.statement { font-size: .95rem; line-height: 1.6; padding: .7rem 1rem; white-space: pre-wrap; }
table { border-collapse: collapse; font-size: .86rem; margin: .5rem 0 1rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e5e7eb; vertical-align: top;
         white-space: nowrap; } td.text:last-child { white-space: normal; min-width: 16rem; }
.scroll { max-width: 100%; overflow-x: auto; }
th { background: #f6f8fa; } .num { text-align: right; font-variant-numeric: tabular-nums; }
.text { text-align: left; }
.verdict { display: inline-block; padding: .35rem .8rem; border-radius: 6px; font-weight: 600;
           color: white; } .pass { background: #1a7f37; } .fail { background: #cf222e; }
.flag { color: #cf222e; font-weight: 600; } figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; border: 1px solid #eaeef2; } figcaption { color: #59636e;
font-size: .9rem; } .note { color: #59636e; font-size: .92rem; }
tr.gap td { color: #59636e; background: #fbfcfd; text-align: center; }
.graph svg { max-width: 100%; height: auto; }
nav a { margin-right: .8rem; font-size: .92rem; }
"""
# formatted as whole numbers (one decimal where a value is not whole, e.g. a median)
COUNT_COLUMNS = {"divergences", "rank", "n_levels", "failed_folds", "unconverged_folds",
                 "levels_from_prior", "n", "rows", "levels", "min rows", "median rows", "max rows"}
SHOWN_LEVELS = 10   # a factor with more than 3x this many levels shows its extremes only
GRAPH_SIZE = {"size": "7.5,6"}   # inches: Graphviz scales a larger graph down to fit


# ---- paths -------------------------------------------------------------------------------

def _builtin(model_file) -> bool:
    """True for the package's own demo file, which ``hierarchical demo`` runs."""
    return Path(model_file.path).resolve().parent == Path(__file__).resolve().parent


# ---- tables ------------------------------------------------------------------------------

def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating))
                                               and np.isnan(value))


def _is_number(value) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)))


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def cell_class(value, numeric_column: bool = False) -> str:
    """'num' (right-aligned, so digits line up) for numbers, 'text' (left-aligned) for labels
    and strings; a missing value takes its column's kind."""
    if _missing(value):          # None, NA or NaN: a string column holds NaN for None
        return "num" if numeric_column else "text"
    return "num" if _is_number(value) else "text"


def _number(column: str, value) -> str:
    if _missing(value):
        return "&ndash;"
    if not _is_number(value):
        return html.escape(str(value))
    if column.startswith(("ess", "n_")):
        return f"{value:,.0f}"
    if isinstance(value, (int, np.integer)) or column in COUNT_COLUMNS:
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{value:.3f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _head(frame: pd.DataFrame) -> str:
    names_ = [n or "" for n in frame.index.names]
    cells = [f"<th class='text'>{html.escape(str(n))}</th>" for n in names_]
    cells += [f"<th class='{'num' if _numeric(frame[c]) else 'text'}'>{html.escape(str(c))}</th>"
              for c in frame.columns]
    return "<tr>" + "".join(cells) + "</tr>"


def table_html(frame: pd.DataFrame, flag: str | None = None,
               gaps: dict[int, str] | None = None) -> str:
    """A DataFrame as an HTML table: labels and strings left-aligned, numbers right-aligned
    (3 decimals, counts as integers), the ``flag`` column highlighted where it says something.
    ``gaps``: {row position: text} for a row that marks rows left out before that one."""
    kinds = [_numeric(frame[c]) for c in frame.columns]   # by position: column names may repeat
    width = frame.index.nlevels + frame.shape[1]
    rows = []
    for i, (index, values) in enumerate(zip(frame.index, frame.itertuples(index=False, name=None))):
        if gaps and i in gaps:
            rows.append(f"<tr class='gap'><td class='text' colspan='{width}'>"
                        f"{html.escape(gaps[i])}</td></tr>")
        keys = index if isinstance(index, tuple) else (index,)
        cells = [f"<td class='text'>{html.escape(str(k))}</td>" for k in keys]
        for column, numeric, value in zip(frame.columns, kinds, values):
            css = cell_class(value, numeric)
            if column == flag and value not in ("-", "", None):
                css += " flag"
            cells.append(f"<td class='{css}'>{_number(str(column), value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div class='scroll'><table><thead>{_head(frame)}</thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


# ---- figures -----------------------------------------------------------------------------

FIGURE_DPI = 150    # figures/*.png, and the same bytes inside the report
SHOWN_DPI = 110     # the size the report shows them at (sharper on dense screens)


def figure_png(fig, dpi: int = FIGURE_DPI) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _figure_html(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    width = round(int.from_bytes(png[16:20], "big") * SHOWN_DPI / FIGURE_DPI)  # PNG header
    return (f"<figure><img alt='{FIGURE_TITLES[name]}' width='{width}' "
            f"src='data:image/png;base64,{data}'>"
            f"<figcaption>{FIGURE_NOTES[name]}</figcaption></figure>")


def _section(anchor: str, title: str, body: str) -> str:
    return f"<section id='{anchor}'><h2>{html.escape(title)}</h2>{body}</section>"


# ---- the model as a statistician writes it -----------------------------------------------



def _row_value(name: str) -> str:
    """A design column at row i: ``floor_i``; an interaction as the product of its parts."""
    return " ".join(f"{part}_i" for part in name.split(":"))


def _fixed_part(fixed_names: list[str]) -> list[str]:
    """beta_0 + beta_1 x_i + ...: numbered from 0 when there is an intercept, else from 1."""
    start = 0 if fixed_names[:1] == ["Intercept"] else 1
    return [f"beta_{k}" if name == "Intercept" else f"beta_{k} {_row_value(name)}"
            for k, name in enumerate(fixed_names, start)]


def _group_part(g) -> list[str]:
    """u_g[i] (one term) or u_g[i, term] x_i (several): the effect of row i's level of g."""
    single = len(g.term_names) == 1
    parts = []
    for term in g.term_names:
        u = f"u_{g.name}[i]" if single else f"u_{g.name}[i, {term}]"
        parts.append(u if term == "Intercept" else f"{u} {_row_value(term)}")
    return parts


def _offset_part(spec) -> list[str]:
    if spec.exposure:
        return [f"log({spec.exposure}_i)"]
    return [f"{spec.offset}_i"] if spec.offset else []


def _group_distribution(g, priors: pd.DataFrame) -> list[str]:
    """How the levels' effects are distributed: the pooling this factor does."""
    n, name = len(g.levels), g.name
    if not g.term.pooled:
        return [f"u_{name}[j, {t}] ~ prior {names.coef_entry(name, t)}, independently for "
                f"each level j = 1..{n} (no pooling)" for t in g.term_names]
    if len(g.term_names) == 1:
        return [f"u_{name}[j] ~ Normal(0, {names.sd(name)}), j = 1..{n}"]
    if not g.term.correlated:
        return [f"u_{name}[j, {t}] ~ Normal(0, {names.sd_entry(name, t)}), j = 1..{n}"
                for t in g.term_names]
    corr, sd = names.corr(name), names.sd(name)
    lkj = priors["prior"].get(corr, "LKJ") if "prior" in priors else "LKJ"
    return [f"u_{name}[j] ~ MvNormal(0, diag({sd}) {corr} diag({sd})), j = 1..{n}",
            f"{corr} ~ {lkj}"]


def likelihood_lines(model) -> list[str]:
    """The model in statistics notation, one line per statement: the likelihood, the link
    and linear predictor, and the distribution of each factor's effects. Built from the
    spec and design (not PyMC's graph), so it reads like the model in a paper."""
    spec, design = model.spec, model.design
    family = spec.family_object
    m = "p_i" if spec.family in ("binomial", "bernoulli") else "mu_i"
    template = family.statement or f"{family.pymc_dist}({{m}})"
    lines = [f"{spec.response}_i ~ " + template.format(m=m, se=spec.se, trials=spec.trials)]
    terms = _fixed_part(design.fixed_names) + [p for g in design.groups for p in _group_part(g)]
    lhs = m if family.link.name == "identity" else f"{family.link.name}({m})"
    lines.append(f"{lhs} = " + " + ".join(terms + _offset_part(spec) or ["0"]))
    for g in design.groups:
        lines += _group_distribution(g, model.priors)
    if spec.weights:
        lines.append(f"row i counts {spec.weights}_i times (frequency weights)")
    return lines


def graph_svg(model) -> tuple[str | None, str]:
    """(inline SVG of the PyMC graph, None when it cannot be drawn) and a line saying why
    not: Graphviz is optional, and a missing ``dot`` must not stop a report."""
    if shutil.which("dot") is None:
        return None, "No picture of the graph: Graphviz's dot is not on PATH."
    # asked first: PyMC evaluates every shape before it imports the package
    if importlib.util.find_spec("graphviz") is None:
        return None, "No picture of the graph: the graphviz Python package is not installed."
    # PyMC evaluates every variable's shape once; without a C compiler PyTensor runs the ops'
    # Python code instead of compiling C thunks (about 10 s with an empty cache)
    with pytensor.config.change_flags(cxx=""):
        graph = pm.model_to_graphviz(model.full_pymc_model, graph_attr=GRAPH_SIZE)
    svg = graph.pipe(format="svg").decode("utf-8")
    return svg[svg.find("<svg"):], ""


def _graph_html(model) -> str:
    svg, why = graph_svg(model)
    if svg is None:
        return f"<p class='note'>{html.escape(why)}</p>"
    return ("<h3>Graph</h3><div class='graph'>" + svg + "</div><p class='note'>The PyMC graph "
            "(pm.model_to_graphviz): a rounded box is a plate over a dimension, a shaded node is "
            "observed and a rectangle is a deterministic function of its parents.</p>")


def _model_section(analysis) -> str:
    model = analysis.model
    spec, family = model.spec, model.spec.family_object
    statement = html.escape("\n".join(likelihood_lines(model)))
    return (f"<p>Formula <code>{html.escape(spec.formula)}</code>, family "
            f"<code>{spec.family}</code> with the <code>{family.link.name}</code> link.</p>"
            f"<pre class='statement'>{statement}</pre>"
            "<p class='note'>i indexes rows and j the levels of a grouping factor; u_g[i] is "
            "the effect of row i's level of g. The priors are listed below.</p>"
            + {"exact": "<p class='note'>Gaussian group effects"
                        + (" and the fixed effects (Normal priors)"
                           if model.integrated_fixed else "")
                        + " are integrated out while sampling and drawn exactly afterwards.</p>",
               "laplace": "<p class='note'>Group effects are integrated out while sampling "
                          "by the Laplace approximation and drawn from its Gaussian "
                          "afterwards.</p>"}.get(model.integration, "")
            + "<h3>Parameterisation</h3>" + table_html(model.parameterisation)
            + _graph_html(model))


# ---- data --------------------------------------------------------------------------------

def data_summary(design) -> pd.DataFrame:
    """Per grouping factor: its number of levels and the rows per level (min, median, max),
    which say how much each level's estimate can lean on its own data."""
    rows = {g.name: {"levels": len(g.levels), "min rows": int(g.counts.min()),
                     "median rows": float(np.median(g.counts)), "max rows": int(g.counts.max())}
            for g in design.groups}
    frame = pd.DataFrame.from_dict(rows, orient="index",
                                   columns=["levels", "min rows", "median rows", "max rows"])
    frame.index.name = "grouping factor"
    return frame


def rows_line(model, n_input: int | None = None) -> str:
    """Rows used, and how many ``dropna`` dropped out of ``n_input`` (the rows read)."""
    n = model.design.n
    line = f"{n:,} rows used"
    if n_input is not None and n_input > n:
        line += f"; {n_input - n:,} of {n_input:,} dropped for missing values (dropna)"
    sampled = getattr(model, "sampled_design", model.design).n
    if sampled != n:
        line += f"; sampled as {sampled:,} aggregated rows"
    return line + "."


def _data_section(analysis) -> str:
    model, mf = analysis.model, analysis.model_file
    n_input = len(mf.data()) if model.dropna else None    # only dropna can drop rows
    table = data_summary(model.design)
    source = mf.data_source
    return (f"<p>{html.escape(source[0].upper() + source[1:])}: "
            f"{html.escape(rows_line(model, n_input))}</p>"
            + (table_html(table) if len(table) else "<p class='note'>No grouping factor.</p>"))


# ---- results -----------------------------------------------------------------------------

def shorten_levels(table: pd.DataFrame, keep: int = SHOWN_LEVELS
                   ) -> tuple[pd.DataFrame, str, dict[int, str]]:
    """One factor's group effects, index (level, term): all of them, or for a factor with
    more than 3 x ``keep`` levels the ``keep`` smallest and largest posterior means of each
    term (sorted), a note saying so and the gap rows for `table_html`: a long table hides
    the levels worth reading."""
    levels = table.index.get_level_values("level").unique()
    if len(levels) <= 3 * keep:
        return table, "", {}
    parts = [part.sort_values("mean").iloc[np.r_[0:keep, -keep:0]]
             for _, part in table.groupby(level="term", sort=False)]
    note = (f"{len(levels)} levels: the {keep} smallest and {keep} largest posterior means of "
            "each term, sorted; every level is in tables/group_effects.csv.")
    gaps = {keep * (2 * k + 1): f"\u22ee {len(levels) - 2 * keep} levels in between"
            for k in range(len(parts))}
    return pd.concat(parts), note, gaps


def _group_effects_section(analysis) -> str:
    fit = analysis.fit
    effects = fit.group_effects()
    if effects.empty:
        return "<p class='note'>The model has no group terms.</p>"
    keep = [c for c in effects.columns if c not in ("mcse_mean", "ess_bulk", "ess_tail")]
    parts = []
    for g in fit.model.design.groups:
        table = effects.loc[g.name, keep]
        rows = dict(zip(g.levels, g.counts))
        table.insert(0, "rows", [rows[level] for level in table.index.get_level_values("level")])
        table, note, gaps = shorten_levels(table)
        parts += [f"<h3>{html.escape(g.name)}</h3>",
                  f"<p class='note'>{html.escape(note)}</p>" if note else "",
                  table_html(table, gaps=gaps)]
    return ("<p class='note'>Each level's coefficient (fixed effect plus the level's "
            "deviation), with the rows it has.</p>" + "".join(parts))


def posterior_check(analysis) -> tuple[pd.DataFrame, object]:
    """The Bayesian p-values (``ppc.statistics``) and the figure (``plots.ppc``) drawn from
    that table: the replicated data are drawn and the statistics computed once."""
    fit, seed = analysis.fit, analysis.model_file.sampler.random_seed
    table = ppc.statistics(fit, random_seed=seed)
    return table, plots.ppc(fit, random_seed=seed, table=table)


def _ppc_table(table: pd.DataFrame) -> pd.DataFrame:
    """The p-value table as shown: without the 'all' level, extreme p-values flagged."""
    shown = table.droplevel("level") if table.attrs.get("by") is None else table
    extreme = ppc.extreme(shown["p_value"])
    return shown.assign(diagnosis=np.where(extreme, "extreme p-value", "-"))


def _ppc_section(table: pd.DataFrame) -> str:
    shown = _ppc_table(table)
    flagged = int((shown["diagnosis"] != "-").sum())
    verdict = (f"<p class='flag'>{flagged} statistic{'s' if flagged != 1 else ''} of the data "
               f"fall{'' if flagged != 1 else 's'} in the tail of the replications.</p>"
               if flagged else "<p>The replicated data reproduce every statistic checked.</p>")
    return (verdict + f"<p class='note'>Bayesian p-value: P(T(y_rep) &ge; T(y)) over the "
            f"posterior draws (Gelman, Meng &amp; Stern 1996); flagged below {ppc.P_EXTREME} or "
            f"above {1 - ppc.P_EXTREME}. The interval is 90% of T(y_rep).</p>"
            + table_html(shown, flag="diagnosis"))


def _convergence(fit) -> str:
    d = fit.diagnostics()
    worst = d.table.sort_values("ess_bulk").head(8)
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in d.problems)
    line = html.escape(repr(d).splitlines()[1].strip())
    return (f"<p><span class='verdict {'pass' if d.passed else 'fail'}'>Convergence: "
            f"{d.verdict}</span> &nbsp;{line}</p>"
            + (f"<ul>{problems}</ul>" if problems else
               "<p class='note'>Thresholds: r_hat &le; 1.01, bulk ESS &ge; 400, no divergent "
               "transitions, E-BFMI &ge; 0.3 (Vehtari et al. 2021).</p>")
            + "<p class='note'>Parameters with the smallest bulk ESS:</p>" + table_html(worst))


CV_NOTES = {
    "loo": "Predicting a new observation of a seen group, by Pareto-smoothed importance "
           "sampling (no refits); n_high_pareto_k counts the observations where it is unreliable.",
    "kfold": "Predicting new observations: each fold's rows are held out and the models "
             "refitted without them, every model on the same folds.",
    "group": "Predicting new groups: each fold holds whole levels out, and the models "
             "predict them as new levels drawn from the fitted group distribution. No pooling "
             "has no group distribution, so it cannot predict a new level (no number is given).",
}


def _pooling_section(analysis) -> str:
    fit, pc = analysis.fit, analysis.pooling
    parts = ["<h3>Intraclass correlation</h3>", table_html(fit.icc().summary),
             "<h3>Pooling factors (Gelman &amp; Pardoe 2006)</h3>",
             "<p class='note'>0: the group estimates are their own (no pooling); 1: they are "
             "the population value (complete pooling).</p>", table_html(fit.pooling_factors())]
    if pc is not None:
        method = pc.compare.attrs.get("method", "PSIS-LOO")
        parts += [f"<h3>Complete, no and partial pooling ({html.escape(method)})</h3>",
                  f"<p class='note'>{CV_NOTES[pc.cv]}</p>", table_html(pc.compare)]
    else:
        parts.append(f"<p class='note'>Pooling comparison not run: "
                     f"{html.escape(analysis.skipped.get('pooling', ''))}.</p>")
    return "".join(parts)


def _sensitivity_section(analysis) -> str:
    table = analysis.sensitivity
    if table is None:
        return (f"<p class='note'>Not run: {html.escape(analysis.skipped['sensitivity'])}.</p>")
    flagged = int((table["diagnosis"] != "-").sum())
    verdict = (f"<p class='flag'>{flagged} quantit{'y is' if flagged == 1 else 'ies are'} "
               "sensitive to the prior: report a prior grid (hier.sensitivity.prior_grid) "
               "or justify the prior.</p>" if flagged else
               "<p>No reported quantity is sensitive to the prior.</p>")
    return (verdict + "<p class='note'>Power-scaling (Kallioinen et al. 2023): cumulative "
            f"Jensen-Shannon distance per unit log2(alpha); flagged at &ge; "
            f"{table.attrs.get('threshold', 0.05)}. Scaled priors: "
            f"{html.escape(', '.join(table.attrs.get('scaled_priors', [])))}.</p>"
            + table_html(table, flag="diagnosis"))


# ---- the page ----------------------------------------------------------------------------

def _header(analysis) -> str:
    mf, model = analysis.model_file, analysis.model
    design, s = model.design, mf.sampler
    groups = ", ".join(f"{g.name} ({len(g.levels)} levels)" for g in design.groups) or "none"
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in analysis.seconds.items())
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    description = f"<p>{html.escape(mf.description)}</p>" if mf.description else ""
    where = "the built-in demo" if _builtin(mf) else display_path(mf.path)
    return (f"<h1>{html.escape(mf.title)}</h1>{description}"
            f"<p class='meta'>Model file <code>{html.escape(where)}</code> &middot; data: "
            f"{html.escape(mf.data_source)}, {design.n:,} rows, groups: {html.escape(groups)}"
            f"<br>Sampler {s.name}: {s.chains} chains x {s.draws} draws after {s.tune} tuning, "
            f"seed {s.random_seed}, target_accept {analysis.fit.settings['target_accept']} &middot; "
            f"{timing}"
            f"<br>Made {stamp} with "
            + ", ".join(f"{k} {v}" for k, v in versions().items()) + "</p>")


def _footer(analysis) -> str:
    mf = analysis.model_file
    skipped = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>"
                      for k, v in analysis.skipped.items())
    command = "hierarchical demo" if _builtin(mf) else f"hierarchical run {display_path(mf.path)}"
    return ((f"<p class='note'>Left out:</p><ul class='note'>{skipped}</ul>" if skipped else "")
            + f"<p class='note'>Reproduce: <code>{html.escape(command)}</code>. The draws are in "
            "<code>fit.nc</code>: <code>hier.load(\"fit.nc\")</code>.</p>")


def render(analysis, pngs: dict[str, bytes], checks: pd.DataFrame | None = None) -> str:
    """The report as one HTML string; ``pngs`` are the rendered figures by name, ``checks``
    the posterior predictive p-values (computed here when not given)."""
    fit = analysis.fit
    checks = ppc.statistics(fit) if checks is None else checks
    figure = lambda name: _figure_html(name, pngs[name]) if name in pngs else ""  # noqa: E731
    sections = [
        ("convergence", "Convergence", _convergence(fit)),
        ("data", "Data", _data_section(analysis)),
        ("model", "Model", _model_section(analysis)),
        ("priors", "Priors", table_html(analysis.model.priors)),
        ("fixed", "Fixed effects", table_html(fit.fixed_effects())),
        ("variance", "Variance components",
         table_html(fit.variance_components()) + figure("variance_components")),
        ("pooling", "Pooling and ICC", _pooling_section(analysis) + figure("shrinkage")
         + figure("pooling_vs_size")),
        ("groups", "Group effects", figure("caterpillar") + _group_effects_section(analysis)),
        ("ppc", "Posterior predictive check", figure("ppc") + _ppc_section(checks)),
        ("sensitivity", "Prior sensitivity", _sensitivity_section(analysis) + figure("power_scale")),
    ]
    nav = "<nav>" + "".join(f"<a href='#{a}'>{t}</a>" for a, t, _ in sections) + "</nav>"
    body = "".join(_section(*s) for s in sections)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(analysis.model_file.title)}</title><style>{STYLE}</style></head>"
            f"<body>{_header(analysis)}{nav}{body}{_footer(analysis)}</body></html>")


def _tables(analysis) -> dict[str, pd.DataFrame]:
    fit = analysis.fit
    tables = {"fixed_effects": fit.fixed_effects(), "variance_components": fit.variance_components(),
              "priors": analysis.model.priors, "diagnostics": fit.diagnostics().table,
              "data": data_summary(analysis.model.design)}
    if analysis.has_pooled_groups:
        tables |= {"group_effects": fit.group_effects(), "icc": fit.icc().summary,
                   "pooling_factors": fit.pooling_factors()}
    if analysis.pooling is not None:
        tables |= {"pooling_estimates": analysis.pooling.table,
                   "pooling_compare": analysis.pooling.compare}
    if analysis.sensitivity is not None:
        tables["sensitivity"] = analysis.sensitivity
    return tables


def _save_figure(fig, name: str, out: Path, pngs: dict, written: dict) -> None:
    path = out / "figures" / f"{name}.png"
    pngs[name] = figure_png(fig)          # drawn once, written and embedded
    path.write_bytes(pngs[name])
    plt.close(fig)
    written[f"figures/{name}"] = path


def write(analysis, out) -> dict[str, Path]:
    """Write report.html, fit.nc, figures/*.png and tables/*.csv under ``out``; returns paths."""
    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(exist_ok=True)
    written, pngs = {}, {}
    for name, fig in analysis.figures.items():
        _save_figure(fig, name, out, pngs, written)
    tables = _tables(analysis)
    analysis.fit.save(out / "fit.nc")     # before the replicated data are drawn: fit.nc stays small
    written["fit"] = out / "fit.nc"
    tables["ppc"], fig = posterior_check(analysis)
    _save_figure(fig, "ppc", out, pngs, written)
    for name, frame in tables.items():
        path = out / "tables" / f"{name}.csv"
        frame.to_csv(path)
        written[f"tables/{name}"] = path
    report = out / "report.html"
    report.write_text(render(analysis, pngs, tables["ppc"]), encoding="utf-8")
    written["report"] = report
    return written
