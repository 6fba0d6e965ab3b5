"""Run what a model file asks for: build, fit, pooling comparison, sensitivity, figures.

The results are gathered in an `Analysis` that `report.py` renders; nothing here writes files
or formats text, so notebooks can run a model file and inspect the pieces.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import pandas as pd

from . import plots
from .exceptions import DataError, ModelFileError, PriorError, SpecError
from .fit import Fit
from .model import Model
from .model_file import ModelFile
from .pooling import PoolingComparison, compare_pooling
from .sensitivity import power_scale

NEEDS_POOLING = ("shrinkage", "pooling_vs_size")
NEEDS_GROUP_EFFECTS = ("shrinkage", "pooling_vs_size", "caterpillar")
NO_POOLED_GROUP = "the model has no partially pooled group term"


@dataclass
class Analysis:
    """Everything a report shows. ``skipped`` says why a requested part is absent."""

    model_file: ModelFile
    model: Model
    fit: Fit
    pooling: PoolingComparison | None = None
    sensitivity: pd.DataFrame | None = None
    figures: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def has_pooled_groups(self) -> bool:
        return any(g.term.pooled for g in self.model.design.groups)


def build_model(model_file: ModelFile) -> Model:
    """The Model a file describes; data and prior errors are re-raised naming the file."""
    spec = model_file.spec()
    data = model_file.data()
    try:
        return Model(spec, data, dropna=model_file.dropna, **model_file.options)
    except PriorError as err:
        raise ModelFileError(f"{model_file.path}: [priors] {err}") from err
    except (DataError, SpecError) as err:
        raise ModelFileError(f"{model_file.path}: {err}") from err


def _step(log, message: str) -> None:
    if log:
        print(message, file=sys.stderr, flush=True)


def _figures(analysis: Analysis) -> None:
    report, fit, pc = analysis.model_file.report, analysis.fit, analysis.pooling
    draw = {"shrinkage": lambda: plots.shrinkage(pc),
            "pooling_vs_size": lambda: plots.pooling_vs_size(pc),
            "caterpillar": lambda: plots.caterpillar(fit),
            "variance_components": lambda: plots.variance_components(fit),
            "power_scale": lambda: plots.power_scale(fit, table=analysis.sensitivity)}
    for name in report.figures:
        if name in NEEDS_POOLING and pc is None:
            analysis.skipped[name] = analysis.skipped.get("pooling", "[report] pooling = false")
        elif name == "power_scale" and analysis.sensitivity is None:
            analysis.skipped[name] = analysis.skipped.get("sensitivity", "[report] sensitivity = false")
        elif name in NEEDS_GROUP_EFFECTS and not analysis.has_pooled_groups:
            analysis.skipped[name] = NO_POOLED_GROUP
        else:
            analysis.figures[name] = draw[name]()


def run(model_file: ModelFile, *, progressbar: bool = True) -> Analysis:
    """Fit the model and compute every part of the report the file asks for.

    ``progressbar`` shows the sampler's progress and one line per step on stderr.
    """
    seconds = {}
    start = time.perf_counter()
    _step(progressbar, f"{model_file.title}: building the model from {model_file.data_source}")
    model = build_model(model_file)
    seconds["build"] = time.perf_counter() - start
    settings = model_file.sampler.fit_kwargs() | {"progressbar": progressbar}
    _step(progressbar, f"fitting {model.spec.formula} ({model.spec.family}) with "
                       f"{settings['sampler']}: {settings['chains']} chains x {settings['draws']} draws")
    start = time.perf_counter()
    fit = model.fit(**settings)
    seconds["fit"] = time.perf_counter() - start
    analysis = Analysis(model_file, model, fit, seconds=seconds)
    if model_file.report.pooling and analysis.has_pooled_groups:
        cv = model_file.report.cv
        _step(progressbar, "pooling comparison: fitting complete and no pooling"
                           + ("" if cv == "loo" else f", then {cv} cross-validation of all three"))
        start = time.perf_counter()
        analysis.pooling = compare_pooling(fit, cv=cv, **settings)
        seconds["pooling"] = time.perf_counter() - start
    elif model_file.report.pooling:
        analysis.skipped["pooling"] = NO_POOLED_GROUP
    else:
        analysis.skipped["pooling"] = "[report] pooling = false"
    if model_file.report.sensitivity:
        _step(progressbar, "prior sensitivity: power-scaling the priors")
        start = time.perf_counter()
        analysis.sensitivity = power_scale(fit)
        seconds["sensitivity"] = time.perf_counter() - start
    else:
        analysis.skipped["sensitivity"] = "[report] sensitivity = false"
    start = time.perf_counter()
    _figures(analysis)
    seconds["figures"] = time.perf_counter() - start
    return analysis
