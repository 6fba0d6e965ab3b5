"""One compiled sampler per model structure: a data set's values, sizes and dtypes reach
the compiled log density only as data, so other data of the same structure give the same
PyTensor graph, hence the same numba cache entry (``nutpie_sampler._flat_functions``)."""

import numpy as np
import pytest
from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

import hierarchical as hier
from hierarchical import nutpie_sampler

STRUCTURES = {
    # name: (formula or spec, dataset, the factor whose levels the second data set drops, options)
    "gaussian, marginalised": ("log_radon ~ floor + (1 | county)", "radon", "county", {}),
    "gaussian, correlated slopes": ("log_radon ~ floor + (1 + floor | county)", "radon",
                                    "county", {"marginalize": False}),
    "poisson, centred": ("y ~ trt + lbase + V4 + (1 | subject)", "epil", "subject",
                         {"family": "poisson"}),
    "binomial with trials": ("incidence ~ period + (1 | herd)", "cbpp", "herd",
                             {"family": "binomial", "trials": "size"}),
    "meta-analysis": (hier.meta_analysis("y", se="se", group="school"), "eight_schools",
                      "school", {}),
}


def _fewer_levels(data, column, seed=0):
    """The rows of 60% of the column's levels: fewer rows, levels and parameters."""
    levels = np.random.default_rng(seed).permutation(data[column].unique())
    return data[data[column].isin(levels[:int(len(levels) * 0.6)])].reset_index(drop=True)


def _cache_key(function) -> str:
    """The key PyTensor's numba linker files the compiled graph under."""
    _, key = numba_funcify_and_cache_key(function.maker.fgraph)
    return key


# three structures in every session; the costlier compiles in the slow tier
SLOW = ("gaussian, correlated slopes", "binomial with trials")


@pytest.fixture(scope="module", params=[pytest.param(name, marks=pytest.mark.slow) if name in SLOW
                                        else name for name in STRUCTURES])
def two_data_sets(request):
    formula, dataset, factor, options = STRUCTURES[request.param]
    data = hier.datasets.load(dataset)
    models = [hier.Model(formula, d, **options) for d in (data, _fewer_levels(data, factor))]
    for model in models:
        model.compiled_nutpie("callback")
    return models


@pytest.mark.skipif(nutpie_sampler.callback_unavailable() is not None,
                    reason="the installed nutpie has no callback route")
def test_other_data_of_the_same_structure_share_the_compiled_graph(two_data_sets):
    full, part = two_data_sets
    assert part.nutpie.compiled.n_dim < full.nutpie.compiled.n_dim or part.marginalized
    a, b = full.nutpie.functions, part.nutpie.functions
    assert _cache_key(a.logp) == _cache_key(b.logp) is not None
    assert _cache_key(a.expand) == _cache_key(b.expand) is not None


@pytest.mark.skipif(nutpie_sampler.callback_unavailable() is not None,
                    reason="the installed nutpie has no callback route")
def test_the_shared_graph_computes_each_data_sets_own_density(two_data_sets):
    """At jittered starting points, the numba function (shared by both data sets) equals
    PyMC's own log density of each model, compiled separately in Python mode."""
    for model in two_data_sets:
        functions = model.nutpie.functions
        reference = model.pymc_model.compile_logp(mode="FAST_COMPILE")
        for seed in (1, 2):
            x = model.nutpie.initial_point(seed)
            logp, _ = model.nutpie.logp_and_gradient(x)
            point, start = {}, 0
            for name, shape in zip(functions.value_names, functions.shapes, strict=True):
                size = int(np.prod(shape))
                point[name] = x[start:start + size].reshape(shape)
                start += size
            assert start == x.size
            assert logp == pytest.approx(float(reference(point)), rel=1e-10)
