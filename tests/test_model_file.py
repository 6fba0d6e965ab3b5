"""Model files: every shipped file is valid; bad files fail naming the file, key and choices.

No sampling here (``hierarchical check`` builds the model only); the CLI runs are in test_cli.py.
"""

from pathlib import Path

import pandas as pd
import pytest

import hierarchical as hier
from hierarchical import analysis, cli, model_file
from hierarchical.exceptions import ModelFileError

MODELS = sorted((Path(__file__).resolve().parents[1] / "models").glob("*.toml"))
GOOD = """
[data]
dataset = "radon"
[model]
template = "random_intercepts"
response = "log_radon"
group = "county"
predictors = ["floor"]
"""


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(text)
    return path


def test_the_shipped_model_files_cover_the_issue():
    names = {p.stem for p in MODELS}
    assert {"radon_intercepts", "radon_slopes", "sleepstudy", "epilepsy", "cbpp_logit",
            "eight_schools"} <= names


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_every_model_file_builds(path, capsys):
    assert cli.main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "prior" in out


def test_a_file_becomes_the_same_model_as_the_template(tmp_path):
    mf = model_file.load(write(tmp_path, GOOD + '[priors]\ncounty_sd = { dist = "HalfNormal", sigma = 0.5 }\n'))
    expected = hier.random_intercepts("log_radon", group="county", predictors=["floor"],
                                      priors={"county_sd": hier.Prior("HalfNormal", sigma=0.5)})
    assert mf.spec() == expected
    model = analysis.build_model(mf)
    assert model.priors.loc["county_sd[Intercept]", "prior"] == "HalfNormal(sigma=0.5)"
    assert mf.sampler == model_file.SamplerSettings()           # defaults when [sampler] is absent
    assert mf.report.figures == model_file.FIGURES


def test_csv_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "data").mkdir()
    frame = hier.datasets.load("dyestuff")
    frame.to_csv(tmp_path / "data" / "dye.csv", index=False)
    mf = model_file.load(write(tmp_path, '[data]\ncsv = "data/dye.csv"\n[model]\n'
                                         'formula = "Yield ~ 1 + (1 | Batch)"\n'))
    pd.testing.assert_frame_equal(mf.data(), frame)
    assert analysis.build_model(mf).design.n == len(frame)


def test_formula_files_take_family_and_roles(tmp_path):
    mf = model_file.load(write(tmp_path, '[data]\ndataset = "cbpp"\n[model]\nformula = '
                                         '"incidence ~ C(period) + (1 | herd)"\nfamily = "binomial"\n'
                                         'trials = "size"\n'))
    spec = mf.spec()
    assert (spec.family, spec.trials) == ("binomial", "size")


# (file text, words the message must contain)
BAD = [
    (GOOD + "colour = 1\n", ["[model]", "'colour'", "valid keys", "predictors"]),
    (GOOD.replace("[data]", "titel = 'x'\n[data]"), ["'titel'", "valid keys", "description"]),
    (GOOD.replace('group = "county"', 'grup = "county"'), ["[model]", "'grup'", "group"]),
    (GOOD.replace("random_intercepts", "random_intercept"),
     ["template", "'random_intercept'", "random_intercepts", "meta_analysis"]),
    (GOOD.replace('template = "random_intercepts"', 'formula = "y ~ 1"\ntemplate = "random_intercepts"'),
     ["exactly one of template", "formula"]),
    (GOOD.replace('template = "random_intercepts"\n', ""), ["exactly one of template"]),
    (GOOD.replace('group = "county"\n', ""), ["[model]", "needs group"]),
    (GOOD.replace('dataset = "radon"', 'dataset = "radom"'), ["[data]", "'radom'", "sleepstudy"]),
    (GOOD.replace('dataset = "radon"', 'dataset = "radon"\ncsv = "x.csv"'), ["[data]", "exactly one"]),
    (GOOD.replace("[model]", "[modle]"), ["'modle'", "valid keys"]),
    (GOOD.replace('dataset = "radon"\n', ""), ["[data]", "exactly one of dataset"]),
    (GOOD + "correlated = \"yes\"\n", ["[model]", "'correlated'"]),
    (GOOD + 'centered = "sometimes"\n', ["[model]", "centered", "'sometimes'", "auto"]),
    (GOOD + 'marginalize = "maybe"\n', ["[model]", "marginalize", "'maybe'", "auto"]),
    (GOOD.replace('predictors = ["floor"]', "predictors = [1, 2]"), ["predictors", "[1, 2]"]),
    (GOOD + "[sampler]\nname = \"stan\"\n", ["[sampler]", "'stan'", "'nutpie'", "'numpyro'"]),
    (GOOD + "[sampler]\ndraws = 0\n", ["[sampler]", "draws", ">= 1", "0"]),
    (GOOD + "[sampler]\ndraws = \"many\"\n", ["[sampler]", "draws", "'many'"]),
    (GOOD + "[sampler]\ndraws = true\n", ["[sampler]", "draws", "True"]),
    (GOOD + "[sampler]\ntarget_accept = 1.5\n", ["[sampler]", "target_accept", "(0, 1)", "1.5"]),
    (GOOD + "[sampler]\nwarmup = 10\n", ["[sampler]", "'warmup'", "tune"]),
    (GOOD + '[report]\nfigures = ["shrinkage", "funnel"]\n', ["[report]", "'funnel'", "caterpillar"]),
    (GOOD + "[report]\npooling = 1\n", ["[report]", "pooling", "bool"]),
    (GOOD + '[priors]\ncounty_sd = "HalfNormal(1)"\n', ["[priors]", "county_sd", "dist ="]),
    (GOOD + '[priors]\ncounty_sd = { dist = "HalfNormal", sigma = "1" }\n', ["[priors]", "county_sd", "numbers"]),
    (GOOD + "[model.extra]\n", ["[model]", "'extra'"]),
    (GOOD + "[data\n", ["not valid TOML", "line"]),
]


@pytest.mark.parametrize("text, words", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_files_name_file_key_and_choices(tmp_path, text, words):
    with pytest.raises(ModelFileError) as err:
        model_file.load(write(tmp_path, text))
    message = str(err.value)
    assert message.startswith(str(tmp_path / "m.toml")), message
    for word in words:
        assert word in message, (word, message)


# errors only the data or the prior resolution can find: raised by build_model, file named
BUILD_ERRORS = [
    (GOOD + '[priors]\nconty_sd = { dist = "HalfNormal", sigma = 1 }\n', ["[priors]", "conty_sd", "county_sd"]),
    (GOOD + '[priors]\ncounty_sd = { dist = "HalfNormal", mu = 1 }\n', ["[priors]", "county_sd", "mu"]),
    (GOOD.replace('["floor"]', '["flor"]'), ["'flor'", "floor"]),
    (GOOD.replace('dataset = "radon"', 'csv = "missing.csv"'), ["[data]", "missing.csv"]),
]


@pytest.mark.parametrize("text, words", BUILD_ERRORS, ids=[f"build{i}" for i in range(len(BUILD_ERRORS))])
def test_data_and_prior_errors_name_the_file(tmp_path, text, words):
    mf = model_file.load(write(tmp_path, text))
    with pytest.raises(ModelFileError) as err:
        analysis.build_model(mf)
    message = str(err.value)
    assert message.startswith(str(tmp_path / "m.toml")), message
    for word in words:
        assert word in message, (word, message)


def test_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace("random_intercepts", "random_intercept"))
    assert cli.main(["run", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "random_intercepts" in err


def test_help_explains_the_commands(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for word in ("run", "demo", "check", "models/", "report"):
        assert word in text
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = capsys.readouterr().out
    for option in ("--out", "--draws", "--no-pooling", "--no-sensitivity", "--strict", "--sampler"):
        assert option in text
