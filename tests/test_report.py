"""The HTML report's pieces on stored fits (no sampling): the model in statistics notation,
the data summary, paths named relative to the working directory, the alignment of table
cells, the shortened group-effects table, and a whole report rendered and written."""

import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hierarchical as hier
from hierarchical import analysis, model_file, report

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"y": rng.poisson(3, 40), "x": rng.normal(size=40),
                         "g": np.repeat(list("abcdefgh"), 5), "t": rng.uniform(1, 3, 40),
                         "n": 10})


def test_likelihood_of_gaussian_varying_intercepts(stored_fit):
    model = stored_fit("radon_intercepts").model
    assert report.likelihood_lines(model) == [
        "log_radon_i ~ Normal(mu_i, sigma)",
        "mu_i = beta_0 + beta_1 floor_i + u_county[i]",
        "u_county[j] ~ Normal(0, county_sd), j = 1..85"]


def test_likelihood_of_correlated_slopes(stored_fit):
    model = stored_fit("sleepstudy_slopes").model
    assert report.likelihood_lines(model) == [
        "Reaction_i ~ Normal(mu_i, sigma)",
        "mu_i = beta_0 + beta_1 Days_i + u_Subject[i, Intercept] + u_Subject[i, Days] Days_i",
        "u_Subject[j] ~ MvNormal(0, diag(Subject_sd) Subject_corr diag(Subject_sd)), j = 1..18",
        "Subject_corr ~ LKJ(eta=2)"]


def test_likelihood_of_poisson_with_exposure_and_independent_slopes(counts):
    model = hier.Model("y ~ x + (1 + x || g)", counts, family="poisson", exposure="t")
    assert report.likelihood_lines(model) == [
        "y_i ~ Poisson(mu_i)",
        "log(mu_i) = beta_0 + beta_1 x_i + u_g[i, Intercept] + u_g[i, x] x_i + log(t_i)",
        "u_g[j, Intercept] ~ Normal(0, g_sd[Intercept]), j = 1..8",
        "u_g[j, x] ~ Normal(0, g_sd[x]), j = 1..8"]


def test_likelihood_of_binomial_names_trials_and_link(counts):
    model = hier.Model("y ~ x + (1 | g)", counts, family="binomial", trials="n")
    lines = report.likelihood_lines(model)
    assert lines[:2] == ["y_i ~ Binomial(n_i, p_i)", "logit(p_i) = beta_0 + beta_1 x_i + u_g[i]"]


def test_data_summary_counts_levels_and_rows_per_level(stored_fit):
    model = stored_fit("radon_intercepts").model
    table = report.data_summary(model.design)
    assert table.loc["county"].to_dict() == {"levels": 85, "min rows": 1, "median rows": 5,
                                             "max rows": 116}
    assert report.rows_line(model) == "919 rows used."


def test_rows_line_says_how_many_rows_dropna_dropped(counts):
    data = counts.assign(x=counts["x"].where(counts.index % 10 != 0))    # 4 rows missing x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = hier.Model("y ~ x + (1 | g)", data, family="poisson", dropna=True)
    assert report.rows_line(model, len(data)) == (
        "36 rows used; 4 of 40 dropped for missing values (dropna).")


def test_paths_are_named_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    written = tmp_path / "out" / "report.html"
    assert model_file.display_path(written) == os.path.join("out", "report.html")
    assert model_file.display_path(tmp_path.parent / "m.toml") == os.path.join("..", "m.toml")
    assert model_file.display_path("models/x.toml") == os.path.join("models", "x.toml")


def test_a_path_on_another_drive_is_named_by_its_file_name(monkeypatch):
    def other_drive(path, start=None):
        raise ValueError("path is on mount 'D:', start on mount 'C:'")

    monkeypatch.setattr(os.path, "relpath", other_drive)
    assert model_file.display_path(Path("/d/data/models/x.toml")) == "x.toml"


def test_a_csv_data_source_is_named_relative_to_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "y.csv").write_text("y,g\n1,a\n2,b\n")
    path = tmp_path / "m.toml"
    path.write_text('[data]\ncsv = "data/y.csv"\n[model]\nformula = "y ~ 1 + (1 | g)"\n')
    mf = model_file.load(path)                     # absolute: the csv path is absolute too
    monkeypatch.chdir(tmp_path)
    assert mf.data_source == f"CSV file {os.path.join('data', 'y.csv')}"
    assert model_file.load(MODELS / "sleepstudy.toml").data_source == (
        "packaged data set 'sleepstudy'")


def _classes(html: str) -> list[list[str]]:
    """The CSS class of every cell, row by row."""
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    return [re.findall(r"<t[hd] class='([^']*)'", row) for row in rows]


def test_text_is_left_aligned_and_numbers_right_aligned():
    frame = pd.DataFrame({"note": ["own estimates", None], "mean": [1.5, np.nan],
                          "n": [3, 12], "centered": [True, False]},
                         index=pd.Index(["a", "b"], name="level"))
    head, first, second = _classes(report.table_html(frame))
    assert head == ["text", "text", "num", "num", "text"]
    assert first == ["text", "text", "num", "num", "text"]
    assert second == ["text", "text", "num", "num", "text"]   # None in text, NaN in numbers
    html = report.table_html(frame)
    assert ">12<" in html and ">1.500<" in html and "&ndash;" in html


def test_flagged_text_keeps_its_alignment():
    frame = pd.DataFrame({"p_value": [0.5, 0.99], "diagnosis": ["-", "extreme p-value"]})
    rows = _classes(report.table_html(frame, flag="diagnosis"))
    assert rows[1][-1] == "text" and rows[2][-1] == "text flag"


def _effects(levels: int, terms=("Intercept", "x")) -> pd.DataFrame:
    index = pd.MultiIndex.from_product([[f"L{i:02d}" for i in range(levels)], list(terms)],
                                       names=["level", "term"])
    return pd.DataFrame({"mean": np.random.default_rng(1).normal(size=len(index))}, index=index)


def test_many_levels_are_shortened_to_the_extremes_of_each_term():
    table = _effects(40)
    short, note, gaps = report.shorten_levels(table, keep=10)
    assert len(short) == 2 * 20 and "40 levels" in note
    assert list(gaps) == [10, 30] and "20 levels in between" in gaps[10]
    for term, part in short.groupby(level="term"):
        means = table.xs(term, level="term")["mean"].sort_values()
        assert part["mean"].tolist() == [*means.iloc[:10], *means.iloc[-10:]]
    html = report.table_html(short, gaps=gaps)
    assert html.count("class='gap'") == 2


def test_few_levels_are_all_shown():
    table = _effects(30)
    assert report.shorten_levels(table, keep=10) == (table, "", {})


@pytest.fixture
def radon_analysis(stored_fit, monkeypatch):
    """The radon model file's Analysis on its stored fit (pooling and sensitivity left out)."""
    monkeypatch.chdir(MODELS.parent)
    fit = stored_fit("radon_intercepts")
    mf = model_file.load(MODELS / "radon_intercepts.toml")
    return analysis.Analysis(mf, fit.model, fit,
                             skipped={"pooling": "left out", "sensitivity": "left out"})


def test_report_has_the_new_sections_and_no_absolute_path(radon_analysis, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)          # as without Graphviz
    html = report.render(radon_analysis, {})
    for section in ("data", "model", "groups", "ppc"):
        assert f"<section id='{section}'>" in html
    assert "919 rows used." in html
    assert "mu_i = beta_0 + beta_1 floor_i + u_county[i]" in html
    assert "str_repr" not in html and "&lt;constant&gt;" not in html and "Potential" not in html
    assert "Graphviz&#x27;s dot is not on PATH" in html
    assert "85 levels: the 10 smallest and 10 largest" in html
    assert "Bayesian p-value" in html and "<td class='text'>sd</td>" in html
    assert str(MODELS.parent) not in html and "models/radon_intercepts.toml" in html


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not on PATH")
def test_graph_is_embedded_as_inline_svg(stored_fit):
    pytest.importorskip("graphviz")
    svg, why = report.graph_svg(stored_fit("radon_intercepts").model)
    assert why == "" and svg.startswith("<svg") and "county_sd" in svg and "<script" not in svg


def test_write_saves_the_fit_before_drawing_replicated_data(radon_analysis, tmp_path):
    written = report.write(radon_analysis, tmp_path / "out")
    assert {"figures/ppc", "tables/ppc", "tables/data", "report", "fit"} <= set(written)
    assert "posterior_predictive" not in hier.load(written["fit"]).idata.children
    checks = pd.read_csv(written["tables/ppc"], index_col=[0, 1])
    assert checks["p_value"].between(0, 1).all()
    assert "data:image/png;base64," in written["report"].read_text()
