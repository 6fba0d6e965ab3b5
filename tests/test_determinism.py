"""Determinism: the same seed gives the same draws bit for bit, on a first run with empty
compile caches and on every rerun, in this process and in fresh ones, on local processes and
across worker pools; a saved fit loads back exactly, as the same model.

Draws are compared bit for bit only where one compiled function produced them, or where the
compile is the same code read from the cache (see ``sampling.numba_mode``); separately
compiled routes are compared by value in ``test_nutpie_route``.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import hierarchical as hier
from hierarchical import calibration, names, nutpie_sampler
from benchmarks import sbc

pytestmark = pytest.mark.integration   # real fits

SMALL = dict(draws=200, tune=200, chains=2, progressbar=False, warn=False)

# Four graphs that compile differently: explicit Gaussian effects, the marginalised path, a
# Poisson GLMM and LKJ-correlated slopes.
MODELS = textwrap.dedent("""
    import numpy as np, pandas as pd
    import hierarchical as hier
    rng = np.random.default_rng(9)
    g = np.repeat(np.arange(12), 10)
    x = rng.normal(size=g.size)
    frame = pd.DataFrame({"y": 2 + rng.normal(0, 0.8, 12)[g] + (0.5 + rng.normal(0, 0.3, 12)[g]) * x
                               + rng.normal(size=g.size),
                          "x": x, "g": g,
                          "count": rng.poisson(np.exp(0.5 + rng.normal(0, 0.5, 12)[g] + 0.3 * x))})
    MODELS = {
        "gaussian": hier.Model("y ~ 1 + (1 | g)", frame, marginalize=False),
        "marginal": hier.Model("y ~ 1 + (1 | g)", frame),
        "poisson": hier.Model("count ~ x + (1 | g)", frame, family="poisson"),
        "lkj": hier.Model("y ~ x + (x | g)", frame, marginalize=False),
    }
""")


def _draw_in_fresh_process(keys, cache, out):
    """Fit the ``keys`` models in a new interpreter whose PyTensor and numba caches are
    ``cache``."""
    script = MODELS + textwrap.dedent(f"""
        arrays = {{}}
        for key in {list(keys)!r}:
            model = MODELS[key]
            fit = model.fit(random_seed=21, **{SMALL!r})
            for name, values in fit.posterior.data_vars.items():
                arrays[f"{{key}}/{{name}}"] = values.values
        np.savez({str(out)!r}, **arrays)
    """)
    flags = ",".join(filter(None, [os.environ.get("PYTENSOR_FLAGS"), f"base_compiledir={cache}"]))
    env = {**os.environ, "PYTENSOR_FLAGS": flags, "NUMBA_CACHE_DIR": str(cache / "numba")}
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, env=env,
                   timeout=900)
    return dict(np.load(out))


# The LKJ graph compiles for about 20 s cold: it runs in the slow tier.
@pytest.mark.parametrize("keys", [("gaussian", "marginal", "poisson"),
                                  pytest.param(("lkj",), marks=pytest.mark.slow)])
def test_a_first_run_with_empty_caches_and_a_rerun_draw_the_same_numbers(keys, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    first = _draw_in_fresh_process(keys, cache, tmp_path / "first.npz")
    assert any(cache.rglob("*.nbi")), "the first run should have filled the numba cache"
    second = _draw_in_fresh_process(keys, cache, tmp_path / "second.npz")
    assert set(first) == set(second)
    assert {key.split("/")[0] for key in first} == set(keys)
    differ = [key for key in first if not np.array_equal(first[key], second[key])]
    assert not differ, f"cold and warm runs differ in {differ}"
    # and this process, whatever its cache state, draws the same numbers too
    scope: dict = {}
    exec(MODELS, scope)
    key = keys[0]
    here = scope["MODELS"][key].fit(random_seed=21, **SMALL)
    for name in here.posterior.data_vars:
        assert np.array_equal(here.posterior[name].values, first[f"{key}/{name}"]), name


@pytest.mark.parametrize("route", ["callback", "cfunc"])
def test_each_nutpie_route_repeats_itself_exactly(route):
    scope: dict = {}
    exec(MODELS, scope)
    model = scope["MODELS"]["gaussian"]
    if route == "callback" and nutpie_sampler.callback_unavailable():
        pytest.skip("the installed nutpie has no callback route")
    model.compiled_nutpie(route)
    first, second = (model.fit(random_seed=5, **SMALL) for _ in range(2))
    assert model.nutpie_route.name == route
    assert first.settings["route"] == route
    for name in ("beta", "g_sd", "sigma", "g_effect"):
        assert np.array_equal(first.posterior[name].values, second.posterior[name].values)


@pytest.mark.skipif(nutpie_sampler.callback_unavailable() is not None,
                    reason="the installed nutpie has no callback route")
def test_chains_sharing_threads_draw_what_they_draw_one_at_a_time(monkeypatch):
    """The callback's GIL-free log density, its chains on two threads or on one: one
    compiled function, so the same draws bit for bit (threads change no draw)."""
    monkeypatch.setattr(nutpie_sampler, "PARALLEL_CALLBACK_SECONDS", 0.0)
    scope: dict = {}
    exec(MODELS, scope)
    model = scope["MODELS"]["gaussian"]
    model.compiled_nutpie("callback")
    threads = model.fit(random_seed=5, cores=2, **SMALL)
    assert model.nutpie.functions.parallel
    one = model.fit(random_seed=5, cores=1, **SMALL)
    for name in ("beta", "g_sd", "sigma", "g_effect"):
        assert np.array_equal(threads.posterior[name].values, one.posterior[name].values)


def test_save_load_round_trip_is_exact_for_every_group(sleepstudy_fit, tmp_path):
    path = tmp_path / "fit.nc"
    sleepstudy_fit.save(path)
    loaded = hier.load(path)
    original = sleepstudy_fit.idata
    assert set(loaded.idata.children) == set(original.children)
    for group in original.children:
        a, b = original[group].to_dataset(), loaded.idata[group].to_dataset()
        assert set(a.data_vars) == set(b.data_vars), group
        for name in a.data_vars:
            assert a[name].dims == b[name].dims, (group, name)
            assert a[name].dtype == b[name].dtype, (group, name)
            assert np.array_equal(a[name].values, b[name].values, equal_nan=a[name].dtype.kind == "f"), (group, name)
        for coord in a.coords:
            assert np.array_equal(a[coord].values, b[coord].values), (group, coord)
    pd.testing.assert_frame_equal(loaded.model.data, sleepstudy_fit.model.data)
    assert loaded.settings == sleepstudy_fit.settings


@pytest.mark.parametrize("options", [
    {"marginalize": False},
    {"marginalize": False, "centered": False},
    {"aggregate_rows": False},
    {"dropna": True},
])
def test_a_saved_fit_reloads_as_the_model_it_was_made_with(options, tmp_path):
    data = hier.datasets.load("cbpp") if "aggregate_rows" in options else \
        hier.datasets.load("dyestuff")
    if "dropna" in options:
        data = data.copy()
        data.loc[data.index[3], "Yield"] = np.nan
    if "aggregate_rows" in options:
        model = hier.Model("incidence ~ period + (1 | herd)", data, family="binomial",
                           trials="size", **options)
    else:
        model = hier.Model("Yield ~ 1 + (1 | Batch)", data, **options)
    fit = model.fit(random_seed=3, draws=100, tune=100, chains=1, progressbar=False,
                    warn=False, target_accept=0.9)
    fit.save(tmp_path / "fit.nc")
    loaded = hier.load(tmp_path / "fit.nc")
    assert loaded.model.options == model.options
    assert loaded.model.resolved_spec == model.resolved_spec
    assert loaded.model.parameterisation["centered"].equals(model.parameterisation["centered"])
    assert loaded.settings == fit.settings and loaded.settings["target_accept"] == 0.9
    assert loaded.model.graph_structure() == model.graph_structure()
    refit = loaded.model.fit(random_seed=3, draws=100, tune=100, chains=1, progressbar=False,
                             warn=False, target_accept=0.9, route=fit.settings["route"])
    for name in fit.posterior.data_vars:
        assert np.array_equal(refit.posterior[name].values, fit.posterior[name].values), name


def test_saved_fits_are_compressed(sleepstudy_fit, tmp_path):
    path = tmp_path / "fit.nc"
    sleepstudy_fit.save(path)
    raw = sum(sleepstudy_fit.idata[g].to_dataset().nbytes for g in sleepstudy_fit.idata.children)
    assert path.stat().st_size < 0.75 * raw


@pytest.mark.slow
def test_prior_grid_is_the_same_on_a_cold_and_a_warm_worker_pool(tmp_path, monkeypatch):
    scope: dict = {}
    exec(MODELS, scope)
    model = scope["MODELS"]["gaussian"]
    grid = {"g_sd": [hier.Prior("HalfNormal", sigma=s) for s in (0.5, 2.0)]}
    cache = tmp_path / "cache"
    monkeypatch.setenv("PYTENSOR_FLAGS", f"base_compiledir={cache}")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache / "numba"))
    kwargs = dict(targets=[names.sd_entry("g", "Intercept")], draws=200, tune=200, chains=2,
                  workers=2, progressbar=False)
    cold = hier.sensitivity.prior_grid(model, grid, **kwargs)
    warm = hier.sensitivity.prior_grid(model, grid, **kwargs)
    timing = ["worker", "compile_seconds", "sample_seconds"]
    pd.testing.assert_frame_equal(cold.drop(columns=timing), warm.drop(columns=timing))


@pytest.mark.slow
def test_sbc_ranks_are_the_same_on_one_and_on_two_workers():
    case = [sbc.CASES["meta_analysis"]]
    kwargs = dict(reps=4, draws=250, tune=250, progressbar=False)
    one = calibration.run(case, workers=1, **kwargs)
    two = calibration.run(case, workers=2, **kwargs)
    columns = ["case", "rep", "parameter", "rank", "ess_bulk", "divergences"]
    pd.testing.assert_frame_equal(one[columns], two[columns])
