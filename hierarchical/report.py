"""The analysis report: one self-contained HTML file (figures embedded), plus the saved fit,
the PNG figures and the tables as CSV, written to one output folder.

Only formatting happens here: every number comes from the `Analysis` (``analysis.py``).
"""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime, timezone
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .persist import versions

FIGURE_TITLES = {
    "shrinkage": "Shrinkage: no pooling to partial pooling",
    "pooling_vs_size": "Shrinkage against group size",
    "caterpillar": "Group effects",
    "variance_components": "Variance components: prior and posterior",
    "power_scale": "Prior sensitivity: power-scaled posteriors",
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
}
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 1080px; margin: 2rem auto; padding: 0 1.5rem; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h2 { border-bottom: 1px solid #d0d7de;
     padding-bottom: .25rem; margin-top: 2.2rem; font-size: 1.3rem; }
.meta { color: #59636e; font-size: .92rem; } code, pre { background: #f6f8fa; border-radius: 4px; }
pre { padding: .7rem; overflow-x: auto; font-size: .82rem; } code { padding: 0 .25rem; }
table { border-collapse: collapse; font-size: .86rem; margin: .5rem 0 1rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e5e7eb; text-align: right; }
th { background: #f6f8fa; } td:first-child, th:first-child { text-align: left; }
.verdict { display: inline-block; padding: .35rem .8rem; border-radius: 6px; font-weight: 600;
           color: white; } .pass { background: #1a7f37; } .fail { background: #cf222e; }
.flag { color: #cf222e; font-weight: 600; } figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; border: 1px solid #eaeef2; } figcaption { color: #59636e;
font-size: .9rem; } .note { color: #59636e; font-size: .92rem; }
nav a { margin-right: .8rem; font-size: .92rem; }
"""


def _number(column: str, value) -> str:
    if value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return "&ndash;"
    if isinstance(value, (float, np.floating, int, np.integer)) and not isinstance(value, bool):
        if column.startswith(("ess", "n_")) or column in ("divergences", "rank", "n_levels",
                                                          "failed_folds", "unconverged_folds",
                                                          "levels_from_prior"):
            return f"{value:,.0f}"
        return f"{value:.3f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return html.escape(str(value))


def table_html(frame: pd.DataFrame, flag: str | None = None) -> str:
    """A DataFrame as an HTML table: 3 decimals, ESS as integers, ``flag`` column highlighted."""
    names = [n or "" for n in frame.index.names]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [*names, *frame.columns])
    rows = []
    for index, row in frame.iterrows():
        keys = index if isinstance(index, tuple) else (index,)
        cells = [f"<td>{html.escape(str(k))}</td>" for k in keys]
        for column, value in row.items():
            text = _number(str(column), value)
            flagged = column == flag and value not in ("-", "", None)
            cells.append(f"<td class='flag'>{text}</td>" if flagged else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def figure_png(fig, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _figure_html(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure><img alt='{FIGURE_TITLES[name]}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{FIGURE_NOTES[name]}</figcaption></figure>")


def _section(anchor: str, title: str, body: str) -> str:
    return f"<section id='{anchor}'><h2>{html.escape(title)}</h2>{body}</section>"


def _header(analysis) -> str:
    mf, model, fit = analysis.model_file, analysis.model, analysis.fit
    design, s = model.design, mf.sampler
    groups = ", ".join(f"{g.name} ({len(g.levels)} levels)" for g in design.groups) or "none"
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in analysis.seconds.items())
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    description = f"<p>{html.escape(mf.description)}</p>" if mf.description else ""
    return (f"<h1>{html.escape(mf.title)}</h1>{description}"
            f"<p class='meta'>Model file <code>{html.escape(str(mf.path))}</code> &middot; data: "
            f"{html.escape(mf.data_source)}, {design.n:,} rows, groups: {html.escape(groups)}"
            f"<br>Sampler {s.name}: {s.chains} chains x {s.draws} draws after {s.tune} tuning, "
            f"seed {s.random_seed}, target_accept {s.target_accept} &middot; {timing}"
            f"<br>Made {stamp} with "
            + ", ".join(f"{k} {v}" for k, v in versions().items()) + "</p>")


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


def _model_section(analysis) -> str:
    model = analysis.model
    spec = model.spec
    return (f"<p>Formula <code>{html.escape(spec.formula)}</code>, family "
            f"<code>{spec.family}</code>. "
            + ("Gaussian group effects are integrated out while sampling and drawn exactly "
               "afterwards." if model.marginalized else "") + "</p>"
            + table_html(model.parameterisation)
            + f"<pre>{html.escape(model.pymc_model.str_repr())}</pre>")


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


def render(analysis, pngs: dict[str, bytes]) -> str:
    """The report as one HTML string; ``pngs`` are the rendered figures by name."""
    fit = analysis.fit
    figure = lambda name: _figure_html(name, pngs[name]) if name in pngs else ""  # noqa: E731
    skipped = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>"
                      for k, v in analysis.skipped.items())
    sections = [
        ("convergence", "Convergence", _convergence(fit)),
        ("model", "Model", _model_section(analysis)),
        ("priors", "Priors", table_html(analysis.model.priors)),
        ("fixed", "Fixed effects", table_html(fit.fixed_effects())),
        ("variance", "Variance components",
         table_html(fit.variance_components()) + figure("variance_components")),
        ("pooling", "Pooling and ICC", _pooling_section(analysis) + figure("shrinkage")
         + figure("pooling_vs_size")),
        ("groups", "Group effects", figure("caterpillar")),
        ("sensitivity", "Prior sensitivity", _sensitivity_section(analysis) + figure("power_scale")),
    ]
    nav = "<nav>" + "".join(f"<a href='#{a}'>{t}</a>" for a, t, _ in sections) + "</nav>"
    body = "".join(_section(*s) for s in sections)
    footer = (f"<p class='note'>Left out: <ul>{skipped}</ul></p>" if skipped else "") + (
        f"<p class='note'>Reproduce: <code>hierarchical run {html.escape(str(analysis.model_file.path))}"
        "</code>. The draws are in <code>fit.nc</code>: <code>hier.load(\"fit.nc\")</code>.</p>")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(analysis.model_file.title)}</title><style>{STYLE}</style></head>"
            f"<body>{_header(analysis)}{nav}{body}{footer}</body></html>")


def _tables(analysis) -> dict[str, pd.DataFrame]:
    fit = analysis.fit
    tables = {"fixed_effects": fit.fixed_effects(), "variance_components": fit.variance_components(),
              "priors": analysis.model.priors, "diagnostics": fit.diagnostics().table}
    if analysis.has_pooled_groups:
        tables |= {"group_effects": fit.group_effects(), "icc": fit.icc().summary,
                   "pooling_factors": fit.pooling_factors()}
    if analysis.pooling is not None:
        tables |= {"pooling_estimates": analysis.pooling.table,
                   "pooling_compare": analysis.pooling.compare}
    if analysis.sensitivity is not None:
        tables["sensitivity"] = analysis.sensitivity
    return tables


def write(analysis, out) -> dict[str, Path]:
    """Write report.html, fit.nc, figures/*.png and tables/*.csv under ``out``; returns paths."""
    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(exist_ok=True)
    written = {}
    pngs = {}
    for name, fig in analysis.figures.items():
        path = out / "figures" / f"{name}.png"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        pngs[name] = figure_png(fig)
        plt.close(fig)
        written[f"figures/{name}"] = path
    for name, frame in _tables(analysis).items():
        path = out / "tables" / f"{name}.csv"
        frame.to_csv(path)
        written[f"tables/{name}"] = path
    analysis.fit.save(out / "fit.nc")
    written["fit"] = out / "fit.nc"
    report = out / "report.html"
    report.write_text(render(analysis, pngs), encoding="utf-8")
    written["report"] = report
    return written
