"""nutpie's two compile routes: the rule that picks one (from the graph, never a timing), and
that both compute the same log density and gradient (compared by value at fixed points:
trajectories of separately compiled functions part after rounding differences grow)."""

import numpy as np
import pytest

import hierarchical as hier
from hierarchical import nutpie_sampler
from hierarchical.exceptions import SpecError


def test_the_callback_wins_unless_its_chains_run_serially_and_the_compile_is_cheap():
    # radon all states marginalised: 20 us per gradient; Chem97 about 100 us, VerbAgg 200 us
    cheap = nutpie_sampler.choose_route(20e-6, chains=2, iterations=2000, cores=2)
    costly = nutpie_sampler.choose_route(200e-6, chains=4, iterations=2000, cores=2)
    assert cheap.name == "callback" and "20 us" in cheap.reason
    assert costly.name == "callback"          # its chains run in parallel (the GIL released)
    # below the parallel threshold a callback's chains take turns: with 8 cores the cfunc's
    # parallel chains pay for a cheap compile
    assert nutpie_sampler.choose_route(50e-6, chains=8, iterations=2000, cores=8).name == "cfunc"
    # one chain gains nothing from parallelism: the callback route always wins
    assert nutpie_sampler.choose_route(1e-3, chains=1, iterations=2000, cores=2).name == "callback"


@pytest.mark.parametrize("t", [50e-6, 200e-6])
@pytest.mark.parametrize("nodes", [0, 800])
def test_the_rule_is_the_written_cost_model(t, nodes):
    evaluations, cores = 4 * 2000 * nutpie_sampler.LEAPFROG_STEPS_PER_DRAW, 4
    parallel = t >= nutpie_sampler.PARALLEL_CALLBACK_SECONDS
    callback = (evaluations * (t + nutpie_sampler.CALLBACK_OVERHEAD_SECONDS)
                / (cores if parallel else 1))
    cfunc = (nutpie_sampler.CFUNC_COMPILE_SECONDS
             + nutpie_sampler.CFUNC_COMPILE_SECONDS_PER_NODE * nodes + evaluations * t / cores)
    route = nutpie_sampler.choose_route(t, nodes=nodes, chains=4, iterations=2000, cores=cores)
    assert route.name == ("callback" if callback <= cfunc else "cfunc")
    assert f"{callback:.1f} s" in route.reason and f"{cfunc:.1f} s" in route.reason


def test_a_large_graph_pays_for_its_cfunc_compile():
    """egsingle's marginal graph (778 operations) compiled to a cfunc in 17-33 s."""
    assert nutpie_sampler.choose_route(50e-6, nodes=778, chains=8, cores=8).name == "callback"
    assert nutpie_sampler.choose_route(50e-6, nodes=0, chains=8, cores=8).name == "cfunc"


def test_the_callbacks_log_density_releases_the_gil():
    """nutpie's chain threads overlap inside it; its values are PyTensor's own."""
    import pytensor
    import pytensor.tensor as pt

    x = pt.vector("x")
    f = pytensor.function([x], [(x ** 2).sum(), 2 * x], mode="NUMBA")
    released = nutpie_sampler._releasing_gil(f.vm.jit_fn)
    point = np.array([0.5, -1.5, 2.0])
    assert released.targetoptions["nogil"]
    for ours, theirs in zip(released(point), f.vm.jit_fn(point)):
        np.testing.assert_array_equal(ours, theirs)


@pytest.fixture(scope="module")
def sleep_data():
    return hier.datasets.load("sleepstudy")


def test_the_route_depends_on_the_graph_not_on_a_timing(sleep_data):
    small = hier.Model("Reaction ~ Days + (Days | Subject)", sleep_data)
    plans = {small.nutpie.plan(chains=4, iterations=2000, cores=2) for _ in range(3)}
    assert len(plans) == 1
    # the estimate grows with the operations in the graph, the data they read and the
    # observed values (none in the marginalised graph: its likelihood is a Potential)
    elements = nutpie_sampler.data_elements(small.pymc_model)
    nodes = nutpie_sampler.graph_nodes(small.pymc_model)
    assert elements > 0 and nodes > 0 and nutpie_sampler.observations(small.pymc_model) == 0
    seconds = nutpie_sampler.estimated_gradient_seconds(small.pymc_model)
    assert seconds == pytest.approx(nutpie_sampler.BASE_GRADIENT_SECONDS
                                    + nutpie_sampler.SECONDS_PER_NODE * nodes
                                    + nutpie_sampler.SECONDS_PER_ELEMENT * elements)
    explicit = hier.Model("Reaction ~ Days + (Days | Subject)", sleep_data, marginalize=False)
    assert nutpie_sampler.observations(explicit.pymc_model) == len(sleep_data)


@pytest.mark.skipif(nutpie_sampler.callback_unavailable() is not None,
                    reason="the installed nutpie has no callback route")
def test_both_routes_compute_the_same_log_density_and_gradient(sleep_data):
    """The callback calls PyTensor's function; the cfunc is nutpie's LLVM-wrapped copy of it.
    At the same points they agree to rounding (a fresh clone measured 1e-11 relative)."""
    formula = "Reaction ~ Days + (Days || Subject)"   # (LKJ's own checks: test_lkj.py)
    via_callback, via_cfunc = hier.Model(formula, sleep_data), hier.Model(formula, sleep_data)
    via_callback.compiled_nutpie("callback")
    via_cfunc.compiled_nutpie("cfunc")
    assert via_callback.nutpie_route.name == "callback" and via_cfunc.nutpie_route.name == "cfunc"
    for seed in range(5):
        x = via_callback.nutpie.initial_point(seed)
        np.testing.assert_array_equal(x, via_cfunc.nutpie.initial_point(seed))
        logp_a, grad_a = via_callback.nutpie.logp_and_gradient(x)
        logp_b, grad_b = via_cfunc.nutpie.logp_and_gradient(x)
        assert np.isfinite(logp_a) and logp_b == pytest.approx(logp_a, rel=1e-10)
        np.testing.assert_allclose(grad_b, grad_a, rtol=1e-8, atol=1e-8 * np.abs(grad_a).max())


def test_marginalised_radon_takes_the_callback_route(radon):
    model = hier.Model("log_radon ~ floor + (1 | county)", radon)
    route = model.nutpie.plan(chains=4, iterations=2000)
    if nutpie_sampler.callback_unavailable() is None:
        assert route.name == "callback"
    assert 0 < route.gradient_seconds < 1e-4


@pytest.mark.integration
def test_prior_data_swaps_into_the_callback_without_recompiling(sleep_data):
    model = hier.Model("Reaction ~ Days + (1 | Subject)", sleep_data)
    model.compiled_nutpie()
    tight = model.with_priors({"Subject_sd": hier.Prior("HalfNormal", sigma=1.0)})
    assert tight.is_compiled and tight.nutpie_route == model.nutpie_route
    fit = dict(draws=300, tune=300, chains=2, random_seed=11, progressbar=False, warn=False)
    wide, narrow = model.fit(**fit), tight.fit(**fit)
    # HalfNormal(1) on an SD the data put near 37 must pull it far down.
    assert float(narrow.posterior["Subject_sd"].mean()) < 5
    assert float(wide.posterior["Subject_sd"].mean()) > 25


def test_unknown_route_is_refused(sleep_data):
    with pytest.raises(SpecError, match="'gpu'"):
        hier.Model("Reaction ~ Days + (1 | Subject)", sleep_data).compiled_nutpie("gpu")


def test_a_nutpie_without_the_private_helpers_falls_back_to_the_public_compile(monkeypatch,
                                                                              sleep_data):
    monkeypatch.setattr(nutpie_sampler, "CALLBACK_NUTPIE", ("9.99.",))
    model = hier.Model("Reaction ~ Days + (1 | Subject)", sleep_data)
    route = model.nutpie.plan()
    assert route.name == "cfunc" and "public compile" in route.reason
    with pytest.raises(SpecError, match="callback.*not available"):
        model.nutpie.plan("callback")


@pytest.mark.skipif(nutpie_sampler.callback_unavailable() is not None,
                    reason="the installed nutpie has no callback route")
def test_chains_started_from_several_threads_start_from_their_own_seed(sleep_data):
    """nutpie asks for each chain's start from the chain's thread. The initial-point function
    is one PyTensor Function (shared storage, seeded generators): unguarded, threads switching
    inside it started chains from another chain's seed or from garbage (an Assay fit failed
    with "Failed to generate a new initial position", 1 in 8). Forced switching (a GIL
    interval of 1 us) makes the race all but certain without the lock."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    model = hier.Model("Reaction ~ Days + (Days || Subject)", sleep_data)
    model.compiled_nutpie("callback")
    start = model.nutpie.compiled._make_initial_points
    seeds = list(range(40))
    serial = [start(seed) for seed in seeds]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(8) as pool:
            threaded = list(pool.map(start, seeds * 5))
    finally:
        sys.setswitchinterval(interval)
    for seed, point in zip(seeds * 5, threaded):
        np.testing.assert_array_equal(point, serial[seed])
