"""Bad input raises a hierarchical error naming column, value and rows, before PyMC runs,
and the caller's DataFrame is left exactly as it was."""

import functools

import numpy as np
import pandas as pd
import pytest

import hierarchical as hier
from hierarchical.exceptions import DataError, FormulaError, PriorError, SpecError

from tests.conftest import frame_hash, prior_fit


def small_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    g = np.repeat(["a", "b", "c", "d"], 5)
    return pd.DataFrame({"y": rng.normal(size=20), "x": rng.normal(size=20),
                         "z": np.tile([0.0, 1.0, 2.0, 3.0, 4.0], 4), "g": g,
                         "k": rng.poisson(3, size=20), "cat": np.tile(list("pqrst"), 4)})


def with_value(column, row, value):
    def edit(frame):
        frame = frame.copy()
        frame[column] = frame[column].astype(object) if value is None else frame[column]
        frame.loc[row, column] = value
        return frame
    return edit


CASES = [
    # (id, formula / spec builder, data edit, model kwargs, error, words that must appear)
    ("missing column", "y ~ x + w + (1|g)", None, {}, DataError, ["'w'", "not found", "available"]),
    ("missing group column", "y ~ x + (1|school)", None, {}, DataError, ["'school'", "not found"]),
    ("NaN response", "y ~ x + (1|g)", with_value("y", 3, np.nan), {}, DataError,
     ["'y'", "nan", "row(s): 3", "dropna=True"]),
    ("inf predictor", "y ~ x + (1|g)", with_value("x", 7, np.inf), {}, DataError,
     ["'x'", "inf", "row(s): 7"]),
    ("None group", "y ~ x + (1|g)", with_value("g", 11, None), {}, DataError,
     ["'g'", "None", "row(s): 11"]),
    ("string response", "cat ~ x + (1|g)", None, {}, DataError, ["'cat'", "numeric", "'p'"]),
    ("one level", "y ~ x + (1|g)", lambda f: f.assign(g="a"), {}, DataError,
     ["'g'", "single level", "'a'"]),
    ("slope constant within groups", "y ~ x + (1 + w|g)",
     lambda f: f.assign(w=f["g"].map({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})), {}, DataError,
     ["'w'", "never varies within", "'g'"]),
    ("group named like a variable", "y ~ x + (1|sigma)", lambda f: f.assign(sigma=f["g"]), {},
     SpecError, ["'sigma'", "rename the column", "fixed_term"]),
    ("float group labels", "y ~ x + (1|h)", lambda f: f.assign(h=f["x"]), {}, DataError,
     ["'h'", "non-integer floats", "row(s): 0"]),
    ("empty frame", "y ~ x + (1|g)", lambda f: f.iloc[:0], {}, DataError, ["no rows"]),
    ("duplicate column names", "y ~ x + (1|g)",
     lambda f: pd.concat([f, f[["x"]]], axis=1), {}, DataError, ["duplicate", "'x'"]),
    ("constant response", "y ~ x + (1|g)", lambda f: f.assign(y=2.0), {}, DataError,
     ["'y'", "constant"]),
    ("collinear predictors", "y ~ x + x2 + (1|g)", lambda f: f.assign(x2=2 * f["x"]), {},
     DataError, ["'x2'", "linear combinations"]),
    ("not a DataFrame", "y ~ x + (1|g)", lambda f: f.to_dict(), {}, DataError, ["DataFrame", "dict"]),
    ("unknown family", "y ~ x + (1|g)", None, {"family": "weibull"}, SpecError,
     ["family", "'weibull'", "gaussian", "negativebinomial"]),
    ("formula syntax", "y ~ x + (1|g", None, {}, FormulaError, ["unclosed", "position 8"]),
    ("unknown prior key", "y ~ x + (1|g)", None, {"priors": {"g_sigma": hier.Prior("HalfNormal", sigma=1)}},
     PriorError, ["'g_sigma'", "valid keys", "g_sd"]),
    ("negative prior scale", "y ~ x + (1|g)", None, {"priors": {"g_sd": hier.Prior("HalfNormal", sigma=-1)}},
     PriorError, ["sigma", "> 0", "-1"]),
    ("SD prior not positive", "y ~ x + (1|g)", None, {"priors": {"sigma": hier.Prior("Normal", mu=0, sigma=1)}},
     PriorError, ["'sigma'", "positive"]),
    ("misspelt prior parameter", "y ~ x + (1|g)", None, {"priors": {"x": hier.Prior("Normal", mu=0, sd=1)}},
     PriorError, ["'x'", "Normal"]),
    ("Poisson fractional counts", "y ~ x + (1|g)", None, {"family": "poisson"}, DataError,
     ["'y'", "non-negative integer", "row(s): 0"]),
    ("Bernoulli outside 0/1", "k ~ x + (1|g)", None, {"family": "bernoulli"}, DataError,
     ["'k'", "0/1"]),
    ("Poisson negative count", "k ~ x + (1|g)", with_value("k", 4, -2), {"family": "poisson"},
     DataError, ["'k'", "non-negative integer", "-2", "row(s): 4"]),
    ("successes above trials", "k ~ x + (1|g)",
     lambda f: f.assign(n=f["k"] + 1, k=lambda d: d["k"].where(d.index != 3, d["n"] + 2)),
     {"family": "binomial", "trials": "n"}, DataError, ["'k'", "cannot exceed", "'n'"]),
    ("fractional trials", "k ~ x + (1|g)", lambda f: f.assign(n=f["k"] + 2.5),
     {"family": "binomial", "trials": "n"}, DataError, ["'n'", "integers >= 1"]),
    ("zero trials", "k ~ x + (1|g)", lambda f: f.assign(k=0, n=0),
     {"family": "binomial", "trials": "n"}, DataError, ["'n'", "integers >= 1", "row(s): 0"]),
    ("exposure not positive", "k ~ x + (1|g)", lambda f: f.assign(t=1.0).assign(t=lambda d: d["t"].where(d.index != 6, 0.0)),
     {"family": "poisson", "exposure": "t"}, DataError, ["'t'", "> 0", "row(s): 6"]),
    ("NaN offset", "k ~ x + (1|g)", lambda f: f.assign(o=0.0).pipe(with_value("o", 9, np.nan)),
     {"family": "poisson", "offset": "o"}, DataError, ["'o'", "nan", "row(s): 9"]),
    ("standard error not positive", None, lambda f: f.assign(se=1.0).pipe(with_value("se", 2, -1.0)),
     {}, DataError, ["'se'", "> 0", "row(s): 2"]),
    ("trials without binomial", "k ~ x + (1|g)", lambda f: f.assign(n=10),
     {"family": "poisson", "trials": "n"}, SpecError, ["trials", "binomial"]),
    ("boolean response, Gaussian", "b ~ x + (1|g)", lambda f: f.assign(b=f["x"] > 0), {},
     DataError, ["'b'", "boolean", "family='bernoulli'"]),
    ("categorical response", "c ~ x + (1|g)", lambda f: f.assign(c=pd.Categorical(f["cat"])),
     {}, DataError, ["'c'", "numeric", "category", "'p'"]),
    ("counts as strings", "s ~ x + (1|g)", lambda f: f.assign(s=f["k"].astype(str)),
     {"family": "poisson"}, DataError, ["'s'", "numeric", "'3'"]),
    ("missing count (Int64 NA)", "k ~ x + (1|g)",
     lambda f: f.assign(k=pd.array(np.where(f.index == 3, None, f["k"]), dtype="Int64")),
     {"family": "poisson"}, DataError, ["'k'", "<NA>", "row(s): 3"]),
    ("None in trials", "k ~ x + (1|g)",
     lambda f: f.assign(n=f["k"] + 3).pipe(with_value("n", 5, None)),
     {"family": "binomial", "trials": "n"}, DataError, ["'n'", "None", "row(s): 5"]),
    ("inf exposure", "k ~ x + (1|g)", lambda f: f.assign(t=1.0).pipe(with_value("t", 2, np.inf)),
     {"family": "poisson", "exposure": "t"}, DataError, ["'t'", "inf", "row(s): 2"]),
    ("NaN standard error", None, lambda f: f.assign(se=1.0).pipe(with_value("se", 1, np.nan)),
     {}, DataError, ["'se'", "nan", "row(s): 1"]),
    ("None estimate", None, lambda f: f.assign(se=1.0).pipe(with_value("y", 4, None)), {},
     DataError, ["'y'", "None", "row(s): 4"]),
    ("NaN in a categorical predictor", "y ~ cat + (1|g)", with_value("cat", 8, np.nan), {},
     DataError, ["'cat'", "nan", "row(s): 8"]),
    ("date predictor", "y ~ d + (1|g)",
     lambda f: f.assign(d=pd.Timestamp("2020-01-01") + pd.to_timedelta(f.index, "D")), {},
     DataError, ["'d'", "datetime64", "convert"]),
    ("one row", "y ~ x + (1|g)", lambda f: f.iloc[:1], {}, DataError, ["1 row", "2 groups"]),
    ("slope column missing", "y ~ x + (1 + w|g)", None, {}, DataError, ["'w'", "not found"]),
    ("group column all NaN", "y ~ x + (1|h)", lambda f: f.assign(h=np.nan), {}, DataError,
     ["'h'", "nan", "20 row(s)"]),
    ("offset on a Gaussian model", "y ~ x + (1|g)", lambda f: f.assign(o=0.0),
     {"offset": "o"}, SpecError, ["offset", "poisson", "'gaussian'"]),
    ("LKJ eta not positive", "y ~ x + (1 + x|g)", None,
     {"priors": {"g_corr": hier.Prior("LKJ", eta=-1)}}, PriorError, ["'g_corr'", "eta", "-1"]),
    ("prior not a Prior", "y ~ x + (1|g)", None, {"priors": {"sigma": 3.0}}, PriorError,
     ["'sigma'", "hier.Prior", "3.0"]),
    ("misspelt distribution", "y ~ x + (1|g)", None,
     {"priors": {"sigma": hier.Prior("HalfNormel", sigma=3.0)}}, PriorError,
     ["'sigma'", "'HalfNormel'", "HalfNormal"]),
]


# predict on new data: (id, new rows, predict kwargs, error, words)
PREDICT_CASES = [
    ("unseen level in predict", pd.DataFrame({"x": [0.0], "g": ["zz"]}), {"new_groups": "error"},
     DataError, ["'g'", "zz"]),
    ("predict without a predictor", pd.DataFrame({"g": ["a"]}), {}, DataError,
     ["'x'", "not found"]),
    ("NaN predictor in predict", pd.DataFrame({"x": [np.nan], "g": ["a"]}), {}, DataError,
     ["'x'", "nan"]),
    ("unknown prediction kind", pd.DataFrame({"x": [0.0], "g": ["a"]}), {"kind": "probability"},
     SpecError, ["kind", "'probability'"]),
]


def raise_model_case(case):
    """Build the case's model; return (exception, the frame's hash before, after)."""
    _, formula, edit, kwargs, error, _ = case
    frame = small_frame() if edit is None else edit(small_frame())
    hashable = isinstance(frame, pd.DataFrame) and frame.columns.is_unique
    before = frame_hash(frame) if hashable else None
    try:
        hier.Model(formula or hier.meta_analysis("y", se="se", group="g"), frame, **kwargs)
    except Exception as exc:                   # the test checks the type
        return exc, before, frame_hash(frame) if hashable else None
    return None, before, before


@functools.cache
def small_fit():
    """Draws to predict from (the same model in the test and the printed table); only the
    validation of the new data is under test, so prior draws do."""
    return prior_fit(hier.Model("y ~ x + (1|g)", small_frame()))


def raise_predict_case(case):
    _, new, kwargs, _, _ = case
    before = frame_hash(new)
    try:
        small_fit().predict(new, **kwargs)
    except Exception as exc:
        return exc, before, frame_hash(new)
    return None, before, before


def _check(exc, error, words, before, after):
    assert isinstance(exc, error), f"expected {error.__name__}, got {exc!r}"
    for word in words:
        assert word in str(exc), f"{word!r} not in: {exc}"
    assert "pytensor" not in str(exc).lower()
    assert before == after, "the caller's DataFrame was changed"


def _reached_pymc(*args, **kwargs):
    raise AssertionError("bad input reached the PyMC graph builder")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(case, monkeypatch):
    monkeypatch.setattr("hierarchical.model.build_pymc_model", _reached_pymc)
    monkeypatch.setattr("hierarchical.model.build_marginal_model", _reached_pymc)
    exc, before, after = raise_model_case(case)
    _check(exc, case[4], case[5], before, after)


@pytest.mark.parametrize("case", PREDICT_CASES, ids=[c[0] for c in PREDICT_CASES])
def test_bad_prediction_input_is_a_clear_error(case):
    exc, before, after = raise_predict_case(case)
    _check(exc, case[3], case[4], before, after)


def test_the_table_has_at_least_thirty_distinct_cases():
    names = [c[0] for c in CASES + PREDICT_CASES]
    assert len(names) >= 30 and len(set(names)) == len(names)


def test_dropna_drops_with_a_warning_and_leaves_caller_data_alone():
    frame = small_frame()
    frame.loc[[2, 5], "x"] = np.nan
    before = frame_hash(frame)
    with pytest.warns(UserWarning, match="dropped 2 of 20 rows"):
        model = hier.Model("y ~ x + (1|g)", frame, dropna=True)
    assert model.design.n == 18
    assert frame_hash(frame) == before


def test_valid_model_does_not_modify_the_callers_frame():
    frame = small_frame()
    before = frame_hash(frame)
    hier.Model("y ~ x + cat + (1 + z|g)", frame)
    assert frame_hash(frame) == before


def test_integer_valued_float_groups_are_labels():
    frame = small_frame().assign(h=lambda f: f["g"].map({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}))
    model = hier.Model("y ~ x + (1|h)", frame)
    assert model.design.groups[0].levels == ["1", "2", "3", "4"]


def test_template_and_model_arguments_must_not_conflict():
    spec = hier.random_intercepts("y", group="g", predictors=["x"])
    with pytest.raises(SpecError, match="family"):
        hier.Model(spec, small_frame(), family="poisson")
