"""hierarchical: Bayesian hierarchical (mixed-effects) models on PyMC.

Templates and lme4 formulas compile to real `pm.Model` graphs with named dims, are sampled
with NUTS (nutpie by default) and are read as a statistician would: fixed effects, variance
components, group effects, shrinkage, prior sensitivity and convergence verdicts.
"""

from . import analysis, calibration, datasets, exceptions, model_file, plots, report, sensitivity
from .bambi_interop import from_bambi
from .fit import Fit
from .formula import from_formula
from .model import Model
from .persist import load
from .pooling import PoolingComparison, compare_pooling
from .prior_predictive import PriorPredictive
from .spec import GroupTerm, ModelSpec, Prior
from .templates import logit_glmm, meta_analysis, poisson_glmm, random_intercepts, random_slopes

__version__ = "0.1.0"

__all__ = [
    "Fit", "GroupTerm", "Model", "ModelSpec", "PoolingComparison", "Prior", "PriorPredictive",
    "analysis", "calibration", "compare_pooling", "datasets", "exceptions", "from_bambi", "from_formula", "load",
    "logit_glmm", "meta_analysis", "model_file", "plots", "poisson_glmm", "random_intercepts",
    "random_slopes", "report", "sensitivity",
]
