"""Determinism: the same seed gives the same draws bit for bit, in this process, in a fresh
process and on both nutpie routes; a saved fit loads back exactly.

(``test_samplers`` checks repeated fits in one process for nutpie, PyMC and numpyro.)
"""

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import hierarchical as hier

SMALL = dict(draws=300, tune=300, chains=2, progressbar=False, warn=False)
FRAME = textwrap.dedent("""
    import numpy as np, pandas as pd
    rng = np.random.default_rng(9)
    g = np.repeat(np.arange(12), 10)
    frame = pd.DataFrame({"y": 2 + rng.normal(0, 0.8, 12)[g] + rng.normal(size=g.size), "g": g})
""")


def small_frame() -> pd.DataFrame:
    scope: dict = {}
    exec(FRAME, scope)
    return scope["frame"]


def test_a_fresh_process_draws_the_same_numbers(tmp_path):
    out = tmp_path / "draws.npy"
    script = FRAME + textwrap.dedent(f"""
        import hierarchical as hier
        fit = hier.Model("y ~ 1 + (1 | g)", frame).fit(random_seed=21, **{SMALL!r})
        np.save({str(out)!r}, fit.posterior["g_effect"].values)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=600)
    here = hier.Model("y ~ 1 + (1 | g)", small_frame()).fit(random_seed=21, **SMALL)
    assert np.array_equal(np.load(out), here.posterior["g_effect"].values)


@pytest.mark.parametrize("route", ["callback", "cfunc"])
def test_each_nutpie_route_repeats_itself_exactly(route):
    model = hier.Model("y ~ 1 + (1 | g)", small_frame(), marginalize=False)
    model.compiled_nutpie(route)
    first, second = (model.fit(random_seed=5, **SMALL) for _ in range(2))
    assert model.nutpie_route.name == route
    for name in ("beta", "g_sd", "sigma", "g_effect"):
        assert np.array_equal(first.posterior[name].values, second.posterior[name].values)


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
