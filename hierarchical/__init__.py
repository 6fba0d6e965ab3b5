"""hierarchical: Bayesian hierarchical (mixed-effects) models on PyMC.

Templates and lme4 formulas compile to real `pm.Model` graphs with named dims, are sampled
with NUTS (nutpie by default) and are read as a statistician would: fixed effects, variance
components, group effects, shrinkage, prior sensitivity and convergence verdicts.

Names are imported on first use (PEP 562), so ``hierarchical --help`` and the spec-side
modules start without importing PyMC or matplotlib.
"""

from importlib import import_module

__version__ = "0.1.0"

_MODULES = ("analysis", "calibration", "cv", "datasets", "effects", "exceptions", "model_file",
            "plots", "pooling", "ppc", "report", "sensitivity")
_NAMES = {
    "Fit": "fit", "GroupTerm": "spec", "Model": "model", "ModelSpec": "spec",
    "PoolingComparison": "pooling", "Prior": "spec", "PriorPredictive": "prior_predictive",
    "compare_pooling": "pooling", "from_bambi": "bambi_interop", "from_formula": "formula",
    "load": "model", "logit_glmm": "templates", "meta_analysis": "templates",
    "poisson_glmm": "templates", "random_intercepts": "templates", "random_slopes": "templates",
}

__all__ = sorted([*_MODULES, *_NAMES])


def __getattr__(name: str):
    if name in _MODULES:
        return import_module(f".{name}", __name__)
    if name in _NAMES:
        value = getattr(import_module(f".{_NAMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hierarchical' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
