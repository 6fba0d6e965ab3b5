"""Compile ahead of time: the samplers a model file's run needs, left in the disk cache.

A graph holds its data set's values and sizes only as data (``graph.as_data``,
``nutpie_sampler._flat_functions``), so PyTensor's numba cache is keyed by the model's
structure: formula terms, family and link, each factor's parameterisation, the prior
distributions. Compiling a model file's models once (``hierarchical warm``, which
``make install`` runs for the demo and ``models/*.toml``) serves every later process that
fits the same structures, on these data or on others. What is reused and what is not:

* reused: the log density with its gradient and the function that expands a draw into
  every traced variable (the callback route), and every operation's own numba code;
* the package's own numba kernels (``laplace_chain``: about 8 s of LLVM, once per
  installation; a nested GLMM's first graph then links them from the cache);
* compiled again per process, taking about a second: PyTensor's graph rewrites, PyMC's
  initial-point function and, on the cfunc route (large models with parallel chains),
  nutpie's wrapper, which numba cannot cache because it closes over the data.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from . import laplace_chain
from .analysis import build_model
from .model import Model
from .model_file import ModelFile, display_path
from .model_file import load as load_model_file
from .pooling import pooling_plan


def models_of(model_file: ModelFile) -> dict[str, Model]:
    """Every model ``hierarchical run`` fits for the file: the model itself and, when the
    report compares pooling, complete pooling and no pooling of each pooled factor."""
    model = build_model(model_file)
    models = {model.spec.formula: model}
    for name, spec in pooling_plan(model) if model_file.report.pooling else []:
        models[f"{name}: {spec.formula}"] = Model(spec, model.data)
    return models


def compile_model(model: Model, *, chains: int = 4, iterations: int = 2000) -> str:
    """Compile the sampler a default fit would use and run its log density once (numba
    compiles on the first call); returns the route taken."""
    model.compiled_nutpie(chains=chains, iterations=iterations)
    model.nutpie.logp_and_gradient(model.nutpie.initial_point(0))
    return model.nutpie_route.name


def warm(paths: list[str | Path], *, log=print) -> pd.DataFrame:
    """Compile every model of every model file, and the package's own numba kernels (the
    Laplace approximation of nested random intercepts: ``laplace_chain.warm_up``); one row
    per model with the seconds taken."""
    start = time.perf_counter()
    laplace_chain.warm_up()
    if log:
        log(f"the Laplace kernels of nested GLMMs compiled in {time.perf_counter() - start:.1f} s")
    rows = []
    for path in paths:
        model_file = load_model_file(path)
        settings = model_file.sampler
        for name, model in models_of(model_file).items():
            start = time.perf_counter()
            route = compile_model(model, chains=settings.chains,
                                  iterations=settings.draws + settings.tune)
            seconds = time.perf_counter() - start
            rows.append({"file": display_path(model_file.path), "model": name, "route": route,
                         "seconds": round(seconds, 1)})
            if log:
                log(f"{display_path(model_file.path)}: {name} ({route}) compiled in {seconds:.1f} s")
    return pd.DataFrame(rows)
