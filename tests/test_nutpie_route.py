"""nutpie's two compile routes: the rule that picks one, and that both sample the same chain."""

import numpy as np
import pytest

import hierarchical as hier
from hierarchical import nutpie_callback
from hierarchical.exceptions import SpecError

FIT = dict(draws=500, tune=500, chains=2, random_seed=11, progressbar=False)


def test_cheap_gradients_take_the_callback_and_costly_ones_the_cfunc():
    # radon all states marginalised: 20 us per gradient; InstEval crossed: 200 us.
    cheap = nutpie_callback.choose_route(20e-6, chains=2, iterations=2000, cores=2)
    costly = nutpie_callback.choose_route(200e-6, chains=2, iterations=2000, cores=2)
    assert cheap.name == "callback" and "20 us" in cheap.reason
    assert costly.name == "cfunc"
    # One chain gains nothing from parallelism: the callback route always wins.
    assert nutpie_callback.choose_route(1e-3, chains=1, iterations=2000, cores=2).name == "callback"


def test_the_rule_is_the_written_cost_model():
    t, evaluations = 80e-6, 4 * 2000 * nutpie_callback.LEAPFROG_STEPS_PER_DRAW
    callback = evaluations * (t + nutpie_callback.CALLBACK_OVERHEAD_SECONDS)
    cfunc = nutpie_callback.CFUNC_COMPILE_SECONDS + evaluations * t / 2
    route = nutpie_callback.choose_route(t, chains=4, iterations=2000, cores=2)
    assert route.name == ("callback" if callback <= cfunc else "cfunc")
    assert f"{callback:.1f} s" in route.reason and f"{cfunc:.1f} s" in route.reason


@pytest.fixture(scope="module")
def sleep_data():
    return hier.datasets.load("sleepstudy")


def test_both_routes_sample_the_same_chain_up_to_rounding(sleep_data):
    """Same seed, same trajectory. Not bit for bit: the cfunc wrapper lets LLVM re-optimise the
    inlined gradient (a fresh clone measured relative differences of 1e-11)."""
    formula = "Reaction ~ Days + (Days | Subject)"
    via_callback = hier.Model(formula, sleep_data)
    via_callback.compiled_nutpie("callback")
    via_cfunc = hier.Model(formula, sleep_data)
    via_cfunc.compiled_nutpie("cfunc")
    a, b = via_callback.fit(**FIT), via_cfunc.fit(**FIT)
    assert via_callback.nutpie_route.name == "callback" and via_cfunc.nutpie_route.name == "cfunc"
    for name in ("beta", "Subject_sd", "Subject_corr", "sigma", "Subject_effect"):
        np.testing.assert_allclose(a.posterior[name].values, b.posterior[name].values,
                                   rtol=1e-8, atol=1e-10)


def test_marginalised_radon_takes_the_callback_route():
    model = hier.Model("log_radon ~ floor + (1 | county)", hier.datasets.load("radon"))
    model.compiled_nutpie(chains=4, iterations=2000)
    assert model.nutpie_route.name == "callback"
    assert 0 < model.nutpie_route.gradient_seconds < 1e-3


def test_prior_data_swaps_into_the_callback_without_recompiling(sleep_data):
    model = hier.Model("Reaction ~ Days + (1 | Subject)", sleep_data, priors_as_data=True)
    model.compiled_nutpie("callback")
    tight = model.with_priors({"Subject_sd": hier.Prior("HalfNormal", sigma=1.0)})
    assert tight.is_compiled and tight.nutpie_route.name == "callback"
    wide, narrow = model.fit(**FIT), tight.fit(**FIT)
    # HalfNormal(1) on an SD the data put near 37 must pull it far down.
    assert float(narrow.posterior["Subject_sd"].mean()) < 5
    assert float(wide.posterior["Subject_sd"].mean()) > 25


def test_unknown_route_is_refused(sleep_data):
    with pytest.raises(SpecError, match="'gpu'"):
        hier.Model("Reaction ~ Days + (1 | Subject)", sleep_data).compiled_nutpie("gpu")
