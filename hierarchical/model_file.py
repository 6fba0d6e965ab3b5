"""Declarative model files (``models/*.toml``): data, model, priors, sampler and report.

A file is parsed and checked completely before any data are read or any model is built, so a
typo costs a second, not a compile. Every error names the file, the ``[table] key``, the bad
value and the valid choices. The schema::

    title = "..."                     # optional; the report's heading
    description = "..."               # optional; a paragraph in the report

    [data]                            # exactly one of dataset / csv
    dataset = "radon"                 # a packaged data set (hier.datasets.names())
    csv = "my_data.csv"               # or a CSV file, relative to the model file
    dropna = false                    # drop rows with missing values instead of failing

    [model]                           # exactly one of template / formula
    template = "random_intercepts"    # + that template's arguments (response, group, ...)
    formula = "y ~ x + (1 | g)"       # + family, link, trials, offset, exposure, weights
    family = "negativebinomial"       # families.FAMILIES; link = "probit" etc. where offered
    centered = "auto"                 # "auto", true, false or a list of grouping factors
    marginalize = "auto"              # Gaussian: integrate the effects of every factor out;
                                      # "laplace": Poisson/logit, approximately

    [priors]                          # optional overrides, by prior key
    county_sd = { dist = "HalfNormal", sigma = 0.5 }

    [sampler]                         # optional; defaults shown
    name = "nutpie"                   # nutpie | pymc | numpyro
    draws = 1000
    tune = 1000
    chains = 4
    random_seed = 1
    target_accept = 0.95              # 0.9 if the effects are integrated out

    [report]                          # optional; defaults shown
    pooling = true                    # complete / no / partial pooling (extra fits)
    cv = "loo"                        # how they are compared: loo | kfold | group (refits)
    sensitivity = true                # power-scaling prior sensitivity
    figures = ["shrinkage", "caterpillar", "pooling_vs_size", "variance_components", "power_scale"]
"""

from __future__ import annotations

import inspect
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from . import datasets, templates
from .exceptions import ModelFileError
from .formula import from_formula
from .spec import CV_METHODS, FAMILIES, ModelSpec, Prior

TEMPLATES = {name: getattr(templates, name) for name in
             ("random_intercepts", "random_slopes", "poisson_glmm", "logit_glmm", "meta_analysis")}
ROLE_KEYS = ("trials", "offset", "exposure", "link", "weights")   # passed through **roles
FORMULA_KEYS = ("formula", "family", "link", "trials", "offset", "exposure", "weights")
MODEL_OPTIONS = ("centered", "marginalize")
SAMPLERS = ("nutpie", "pymc", "numpyro")
FIGURES = ("shrinkage", "caterpillar", "pooling_vs_size", "variance_components", "power_scale")
TOP_LEVEL = ("title", "description", "data", "model", "priors", "sampler", "report")


@dataclass(frozen=True)
class SamplerSettings:
    name: str = "nutpie"
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    random_seed: int = 1
    target_accept: float | None = None    # Model.fit's default: 0.9 or 0.95

    def fit_kwargs(self) -> dict[str, Any]:
        return {"sampler": self.name, "draws": self.draws, "tune": self.tune,
                "chains": self.chains, "random_seed": self.random_seed,
                "target_accept": self.target_accept}


@dataclass(frozen=True)
class ReportSettings:
    pooling: bool = True
    cv: str = "loo"
    sensitivity: bool = True
    figures: tuple[str, ...] = FIGURES


@dataclass(frozen=True)
class ModelFile:
    """A parsed, validated model file. ``spec()`` and ``data()`` build the pieces."""

    path: Path
    title: str
    description: str
    dataset: str | None
    csv: Path | None
    dropna: bool
    model: dict[str, Any]
    options: dict[str, Any]
    priors: dict[str, Prior]
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    report: ReportSettings = field(default_factory=ReportSettings)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def data_source(self) -> str:
        """The data: a packaged data set, or its CSV named relative to the working directory."""
        return (f"packaged data set {self.dataset!r}" if self.dataset
                else f"CSV file {display_path(self.csv)}")

    def data(self) -> pd.DataFrame:
        if self.dataset is not None:
            return datasets.load(self.dataset)
        if not self.csv.is_file():
            raise ModelFileError(f"{self.path}: [data] csv: no file {str(self.csv)!r}")
        return pd.read_csv(self.csv)

    def spec(self) -> ModelSpec:
        """The ModelSpec this file describes; errors from the template name the file."""
        args = dict(self.model)
        try:
            if "formula" in args:
                formula = args.pop("formula")
                return from_formula(formula, args.pop("family", "gaussian"),
                                    priors=self.priors or None, **args)
            build = TEMPLATES[args.pop("template")]
            return build(**args, priors=self.priors or None)
        except ModelFileError:
            raise
        except (ValueError, TypeError) as err:
            raise ModelFileError(f"{self.path}: [model] {err}") from err

    def with_sampler(self, **changes) -> "ModelFile":
        """A copy with some sampler settings replaced (``None`` values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return replace(self, sampler=replace(self.sampler, **changes))

    def with_report(self, **changes) -> "ModelFile":
        changes = {k: v for k, v in changes.items() if v is not None}
        return replace(self, report=replace(self.report, **changes))


class _Reader:
    """Checks one table of the file; every message starts with ``<file>: [table]``."""

    def __init__(self, path: Path, table: str, values: dict, valid: tuple[str, ...]):
        self.path, self.table, self.values = path, table, dict(values)
        unknown = sorted(set(self.values) - set(valid))
        if unknown:
            self.fail(f"unknown key {unknown[0]!r}; valid keys: {', '.join(valid)}")

    def fail(self, message: str):
        where = f"[{self.table}] " if self.table else ""
        raise ModelFileError(f"{self.path}: {where}{message}")

    def get(self, key: str, kinds: tuple[type, ...], default=None, choices=None, what=""):
        if key not in self.values:
            return default
        value = self.values[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            self.fail(f"{key} must be {what or names}, but got {value!r}")
        if choices is not None and value not in choices:
            self.fail(f"{key} = {value!r} is not valid; choose one of {', '.join(map(repr, choices))}")
        return value

    def positive_int(self, key: str, default: int, minimum: int = 1) -> int:
        value = self.get(key, (int,), default)
        if value < minimum:
            self.fail(f"{key} must be an integer >= {minimum}, but got {value!r}")
        return value

    def columns(self, key: str) -> list[str] | None:
        value = self.get(key, (str, list), what="a column name or a list of column names")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            self.fail(f"{key} must list column names (strings), but got {value!r}")
        return value


def _table(reader: _Reader, key: str) -> dict:
    value = reader.values.get(key, {})
    if not isinstance(value, dict):
        reader.fail(f"{key} must be a table ([{key}]), but got {value!r}")
    return value


def _read_data(path: Path, values: dict) -> tuple[str | None, Path | None, bool]:
    r = _Reader(path, "data", values, ("dataset", "csv", "dropna"))
    if ("dataset" in values) == ("csv" in values):
        r.fail("give exactly one of dataset = <packaged name> or csv = <path>")
    dataset = r.get("dataset", (str,), choices=datasets.names())
    csv = r.get("csv", (str,))
    return dataset, (path.parent / csv) if csv else None, r.get("dropna", (bool,), False)


def _template_keys(name: str) -> tuple[tuple[str, ...], list[str]]:
    """(valid keys, required keys) of a template, read from its signature."""
    params = inspect.signature(TEMPLATES[name]).parameters.values()
    named = [p.name for p in params if p.kind is not p.VAR_KEYWORD and p.name != "priors"]
    roles = ROLE_KEYS if any(p.kind is p.VAR_KEYWORD for p in params) else ()
    required = [p.name for p in params if p.default is p.empty and p.kind is not p.VAR_KEYWORD]
    return ("template", *named, *(k for k in roles if k not in named)), required


def _read_model(path: Path, values: dict) -> tuple[dict, dict]:
    if ("template" in values) == ("formula" in values):
        _Reader(path, "model", {}, ()).fail(
            f"give exactly one of template = <{' | '.join(TEMPLATES)}> or formula = \"y ~ x + (1 | g)\"")
    if "template" in values:
        _Reader(path, "model", {"template": values["template"]}, ("template",)).get(
            "template", (str,), choices=tuple(TEMPLATES))
        valid, required = _template_keys(values["template"])
        valid += MODEL_OPTIONS
    else:
        valid = FORMULA_KEYS + MODEL_OPTIONS
    r = _Reader(path, "model", values, valid)
    if "template" in values:
        missing = [key for key in required if key not in values]
        if missing:
            r.fail(f"template {values['template']!r} needs {', '.join(missing)}")
    model = {}
    for key in values:
        if key in MODEL_OPTIONS:
            continue
        if key in ("predictors", "slopes"):
            model[key] = r.columns(key)
        elif key == "correlated":
            model[key] = r.get(key, (bool,))
        elif key == "family":
            model[key] = r.get(key, (str,), choices=FAMILIES)
        else:
            model[key] = r.get(key, (str,))
    options = {}
    if "centered" in values:
        options["centered"] = r.get("centered", (bool, str, list),
                                    what="\"auto\", true, false or a list of grouping factors")
        if isinstance(options["centered"], str) and options["centered"] != "auto":
            r.fail(f"centered = {options['centered']!r} is not valid; choose \"auto\", true, "
                   "false or a list of grouping factors")
    if "marginalize" in values:
        options["marginalize"] = r.get("marginalize", (bool, str),
                                       what="\"auto\", \"laplace\", true or false")
        if options["marginalize"] not in ("auto", "laplace", True, False):
            r.fail(f"marginalize = {options['marginalize']!r} is not valid; choose \"auto\", "
                   "\"laplace\", true or false")
    return model, options


def _read_priors(path: Path, values: dict) -> dict[str, Prior]:
    priors = {}
    for key, value in values.items():
        if not isinstance(value, dict) or not isinstance(value.get("dist"), str):
            raise ModelFileError(
                f"{path}: [priors] {key} must be an inline table naming a PyMC distribution, "
                f"e.g. {key} = {{ dist = \"HalfNormal\", sigma = 1 }}, but got {value!r}")
        bad = {k: v for k, v in value.items()
               if k != "dist" and (isinstance(v, bool) or not isinstance(v, (int, float)))}
        if bad:
            raise ModelFileError(f"{path}: [priors] {key}: parameters must be numbers, but got {bad}")
        priors[key] = Prior.from_dict(value)
    return priors


def _read_sampler(path: Path, values: dict) -> SamplerSettings:
    valid = ("name", "draws", "tune", "chains", "random_seed", "target_accept")
    r, d = _Reader(path, "sampler", values, valid), SamplerSettings()
    target = r.get("target_accept", (float, int), d.target_accept, what="a number in (0, 1)")
    if target is not None and not 0 < target < 1:
        r.fail(f"target_accept must be in (0, 1), but got {target!r}")
    return SamplerSettings(name=r.get("name", (str,), d.name, choices=SAMPLERS),
                           draws=r.positive_int("draws", d.draws),
                           tune=r.positive_int("tune", d.tune, minimum=0),
                           chains=r.positive_int("chains", d.chains),
                           random_seed=r.positive_int("random_seed", d.random_seed, minimum=0),
                           target_accept=None if target is None else float(target))


def display_path(path, start=None) -> str:
    """``path`` relative to ``start`` (the working directory), so that no report or printed
    line shows the author's absolute paths; the file name alone when there is no relative
    path (another drive on Windows)."""
    try:
        return os.path.relpath(Path(path), start or os.getcwd())
    except ValueError:
        return Path(path).name


def _read_report(path: Path, values: dict) -> ReportSettings:
    r, d = (_Reader(path, "report", values, ("pooling", "cv", "sensitivity", "figures")),
            ReportSettings())
    cv = r.get("cv", (str,), d.cv)
    if cv not in CV_METHODS:
        r.fail(f"cv: unknown method {cv!r}; valid: {', '.join(CV_METHODS)}")
    figures = r.get("figures", (list,), list(d.figures), what="a list of figure names")
    unknown = [f for f in figures if f not in FIGURES]
    if unknown:
        r.fail(f"figures: unknown figure {unknown[0]!r}; valid figures: {', '.join(FIGURES)}")
    return ReportSettings(pooling=r.get("pooling", (bool,), d.pooling), cv=cv,
                          sensitivity=r.get("sensitivity", (bool,), d.sensitivity),
                          figures=tuple(figures))


def parse(values: dict, path: Path) -> ModelFile:
    """A parsed TOML document (a dict) -> a validated ModelFile; ``path`` names it in errors
    and anchors relative CSV paths."""
    top = _Reader(path, "", values, TOP_LEVEL)
    for required in ("data", "model"):
        if required not in values:
            top.fail(f"missing table [{required}]")
    dataset, csv, dropna = _read_data(path, _table(top, "data"))
    model, options = _read_model(path, _table(top, "model"))
    return ModelFile(path=path, title=top.get("title", (str,), path.stem),
                     description=top.get("description", (str,), ""),
                     dataset=dataset, csv=csv, dropna=dropna, model=model, options=options,
                     priors=_read_priors(path, _table(top, "priors")),
                     sampler=_read_sampler(path, _table(top, "sampler")),
                     report=_read_report(path, _table(top, "report")))


def load(path) -> ModelFile:
    """Read and validate ``models/X.toml``."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no model file {str(path)!r}")
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ModelFileError(f"{path}: not valid TOML: {err}") from err
    return parse(values, path)
