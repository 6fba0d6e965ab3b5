"""Every models/*.toml runs through ``hierarchical run`` (few draws) and writes the report;
``hierarchical demo`` is the README's demo command.

Few draws (2 x 150) make convergence FAIL on purpose-free grounds (ESS < 400), so the
checks below are on what the report contains and on estimates loose enough for 300 draws.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hierarchical as hier
from hierarchical import cli

MODELS = Path(__file__).resolve().parents[1] / "models"
FEW = ["--draws", "150", "--tune", "200", "--chains", "2"]
QUICK = [*FEW, "--no-progress"]
SECTIONS = ("convergence", "data", "model", "priors", "fixed", "variance", "pooling", "groups",
            "ppc", "sensitivity")
# (term, low, high): wide bands around the published values, safe at 300 draws
ESTIMATES = {
    "radon_intercepts": ("floor", -0.9, -0.45),          # Gelman & Hill: -0.69
    "radon_slopes": ("log_uranium", 0.2, 1.4),           # Gelman & Hill 13.1: about 0.8
    "sleepstudy": ("Days", 7.0, 14.0),                   # lme4: 10.47
    "epilepsy": ("lbase", 0.7, 1.3),                     # Breslow & Clayton: about 1.0
    "cbpp_logit": ("C(period)[4]", -2.6, -0.6),          # lme4: -1.58
    "eight_schools": ("Intercept", -2.0, 12.0),          # BDA: about 4.4
    "salamanders_negbin": ("mined[yes]", -3.2, -1.3),    # glmmTMB: -2.26
}


def assert_relative_paths(html: str, printed: str) -> None:
    """The report and the printed lines name files relative to the working directory."""
    shown = re.findall(r"^(?:Report|Fit): +(\S+)", printed, re.MULTILINE)
    assert len(shown) == 2 and not any(os.path.isabs(p) for p in shown), shown
    assert f"<code>{MODELS}" not in html and f"run {MODELS}" not in html


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Run every model file once; {name: (exit code, stdout, output folder)}."""
    runs = {}
    for path in sorted(MODELS.glob("*.toml")):
        out = tmp_path_factory.mktemp(path.stem)
        options = FEW if path.stem == "sleepstudy" else QUICK   # one run shows its progress
        result = subprocess.run([sys.executable, "-m", "hierarchical.cli", "run", str(path),
                                 "--out", str(out), *options],
                                capture_output=True, text=True, timeout=900)
        runs[path.stem] = (result, out)
    return runs


def test_every_model_file_has_an_estimate_check():
    assert set(ESTIMATES) == {p.stem for p in MODELS.glob("*.toml")}


@pytest.mark.parametrize("name", sorted(ESTIMATES))
@pytest.mark.slow
def test_run_writes_report_fit_figures_and_tables(reports, name):
    result, out = reports[name]
    assert result.returncode == 0, result.stderr[-3000:]
    html = (out / "report.html").read_text()
    for section in SECTIONS:
        assert f"<section id='{section}'>" in html, section
    figures = sorted(p.stem for p in (out / "figures").glob("*.png"))
    assert html.count("data:image/png;base64,") == len(figures) >= 4, figures
    assert "src='http" not in html and "<script" not in html        # self-contained
    assert re.search(r"Convergence: (PASS|FAIL)", html)
    fixed = pd.read_csv(out / "tables" / "fixed_effects.csv", index_col=0)
    term, low, high = ESTIMATES[name]
    assert low < fixed.loc[term, "mean"] < high, fixed
    loaded = hier.load(out / "fit.nc")
    pd.testing.assert_frame_equal(loaded.fixed_effects(), fixed, check_names=False, rtol=1e-6)
    assert "Report: " in result.stdout and "Fixed effects:" in result.stdout
    assert "ppc" in figures and "Bayesian p-value" in html and " ~ " in html    # PPC, likelihood
    assert_relative_paths(html, result.stdout)


@pytest.mark.slow
def test_report_compares_pooling_by_leave_county_out_cv(reports):
    _, out = reports["radon_intercepts"]          # [report] cv = "group"
    html = (out / "report.html").read_text()
    assert "Complete, no and partial pooling (leave-group-out CV by &#x27;county&#x27;, 10 folds)" in html
    assert "cannot predict a new level of &#x27;county&#x27;" in html
    compare = pd.read_csv(out / "tables" / "pooling_compare.csv", index_col=0)
    assert np.isnan(compare.loc["no pooling", "elpd"]) and compare["rmse_cv"].notna().sum() == 2


@pytest.mark.slow
def test_progress_goes_to_stderr(reports):
    result, _ = reports["sleepstudy"]
    for step in ("building the model", "fitting", "pooling comparison", "prior sensitivity"):
        assert step in result.stderr, result.stderr[-2000:]


@pytest.mark.slow
def test_meta_analysis_report_pools_schools(reports):
    _, out = reports["eight_schools"]
    pooling = pd.read_csv(out / "tables" / "pooling_factors.csv")
    assert 0.3 < pooling["pooling_factor"].iloc[0] < 1.0   # tau is small against the se's
    priors = pd.read_csv(out / "tables" / "priors.csv", index_col=0)
    assert priors.loc["school_sd[Intercept]", "prior"] == "HalfCauchy(beta=5)"


@pytest.mark.integration
def test_options_switch_parts_off_and_strict_fails_on_bad_convergence(tmp_path, capsys):
    path = MODELS / "radon_intercepts.toml"   # no LKJ graph: a cheap compile
    code = cli.main(["run", str(path), "--out", str(tmp_path), "--no-pooling", "--no-sensitivity",
                     "--strict", "--draws", "30", "--tune", "50", "--chains", "2", "--no-progress"])
    assert code == 3                               # 60 draws cannot reach bulk ESS 400
    figures = sorted(p.stem for p in (tmp_path / "figures").glob("*.png"))
    assert figures == ["caterpillar", "ppc", "variance_components"]
    html = (tmp_path / "report.html").read_text()
    assert "Pooling comparison not run: [report] pooling = false" in html
    assert "Not run: [report] sensitivity = false" in html
    printed = capsys.readouterr().out
    assert "skipped shrinkage" in printed
    assert_relative_paths(html, printed)


@pytest.mark.integration
def test_demo_writes_the_radon_report(tmp_path):
    result = subprocess.run([sys.executable, "-m", "hierarchical.cli", "demo", "--out",
                             str(tmp_path), "--no-pooling", *QUICK],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout
    assert "919 rows; 85 levels of county" in text
    for heading in ("Priors in use:", "Fixed effects:", "Variance components:", "Convergence:"):
        assert heading in text
    assert "corr(Intercept, floor)" in text
    floor = pd.read_csv(tmp_path / "tables" / "fixed_effects.csv", index_col=0).loc["floor", "mean"]
    assert -0.9 < floor < -0.4                     # Gelman & Hill: about -0.66
    assert (tmp_path / "report.html").stat().st_size > 100_000


def test_help_answers_without_importing_the_modelling_stack():
    """``hierarchical --help`` must be instant: no PyMC, PyTensor or matplotlib import."""
    result = subprocess.run([sys.executable, "-m", "hierarchical.cli", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage: hierarchical" in result.stdout
    probe = ("import sys; from hierarchical import cli; cli.build_parser().format_help(); "
             "print(sorted({'pymc', 'pytensor', 'matplotlib', 'nutpie'} & set(sys.modules)))")
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              timeout=60, check=True).stdout.strip()
    assert imported == "[]", imported


def test_warm_lists_what_a_run_fits_and_compiles_it(tmp_path, capsys):
    """``hierarchical warm`` (run by ``make install``) compiles every model a run fits: the
    demo's model and its two pooling alternatives; here one file without pooling."""
    from importlib import resources

    from hierarchical import laplace_chain, model_file, warm

    with resources.as_file(resources.files("hierarchical") / cli.DEMO_FILE) as demo:
        demo_models = warm.models_of(model_file.load(demo))
    assert list(demo_models) == ["log_radon ~ floor + (1 + floor | county)",
                                 "complete pooling: log_radon ~ floor",
                                 "no pooling: log_radon ~ 0 + unpooled(1 + floor | county)"]
    path = tmp_path / "radon.toml"          # a structure other tests compile: a cache hit
    text = (MODELS / "radon_intercepts.toml").read_text()
    assert "pooling = true" in text
    path.write_text(text.replace("pooling = true", "pooling = false", 1))
    assert cli.main(["warm", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "log_radon ~ 1 + floor + (1 | county) (callback) compiled in" in printed
    assert "1 models compiled" in printed
    assert "the Laplace kernels of nested GLMMs compiled in" in printed
    assert laplace_chain.laplace_chain.signatures and laplace_chain.chain_effects.signatures
