"""nutpie for one model graph: compiled once, reused, and the only place nutpie's (and
PyTensor's) private helpers are touched.

nutpie's public route, ``nutpie.compile_pymc_model``, wraps the log density in a numba
``cfunc``. numba cannot cache that wrapper (it closes over the data), so every new process
and every new model pays 1-7 s of LLVM work, however small the model. The PyTensor function
underneath *is* cached on disk, and calling it from Python costs about 5 microseconds. So for
a model whose gradient is cheap, handing nutpie that function as a Python callback reaches
the first draw seconds sooner. A callback holds the GIL, so its chains run one after
another, unless the gradient is costly (PARALLEL_CALLBACK_SECONDS): then the callback calls
a copy of the log density compiled to release the GIL while it runs (`_releasing_gil`), and
nutpie's threads run the chains in parallel; only the Python around each call takes turns.

The callback route compiles its own functions of the flat vector (`_flat_functions`), whose
graph holds no sizes, so that it compiles once per model structure. It needs nutpie's private
``_prepare_dims_and_coords`` and PyTensor's ``Function.vm.jit_fn``. They are used only when
nutpie's minor version is one the route was written against (``CALLBACK_NUTPIE``) and the
helpers are there; otherwise every model takes the public route, and ``route.reason`` says
why.

The route is chosen from the graph, never from a timing, so a run's route (and its cost) is
the same every time; ``fit.settings["route"]`` records it. Since everything compiles without
fast-math (``sampling.numba_mode``), both routes compute the same bits as well.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import threading
import time
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import nutpie
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.backends.arviz import patch_nutpie_idata
from pytensor.graph.traversal import applys_between, graph_inputs
from xarray import DataTree

from . import graph
from .exceptions import SpecError
from .sampling import numba_mode

ROUTES = ("callback", "cfunc")
CALLBACK_NUTPIE = ("0.16.",)   # nutpie versions whose private helpers the callback route uses

# Cost model, measured on the 2-core development machine (nutpie 0.16, warm caches): the
# cfunc wrapper takes 3 s plus about 12 ms per operation of the log density's graph to
# compile (radon 139 operations: 3-10 s; egsingle 778: 17-33 s; the Laplace graphs of
# cbpp_obs and grouseticks, 1,885 and 3,210: 16 and 45 s); a callback adds about 5 us of
# Python per gradient, which holds the GIL (the log density releases it: two threads ran
# Chem97's 85 us gradient at 46 us each). A gradient costs a base, a share per operation in
# the log density's graph, a share per element of the data and constants it reads and a
# share per observed value (its log density and gradient; fitted to 13 models from 10 us to
# 250 us: radon 12 us, 122 nodes; the lme4 bank's egsingle 250 us, 869 nodes and 35,000
# elements; VerbAgg 200-230 us, 7,584 Bernoulli rows; within a factor of 2).
CFUNC_COMPILE_SECONDS = 3.0
CFUNC_COMPILE_SECONDS_PER_NODE = 0.012
CALLBACK_OVERHEAD_SECONDS = 5e-6
# Below this gradient time the callback's chains run one after another: handing the GIL
# between threads costs more than short calls gain (in parallel: radon, 9 us per gradient,
# 1.8 -> 3.3 s; cbpp_obs by Laplace, 40 us, 4.3 -> 4.5 s); above it they run in parallel
# (Arabidopsis by Laplace, 68 us, 6.0 -> 5.3 s; Chem97, 85 us, 9.6 -> 7.1 s; egsingle
# 24.5 -> 15.2 s; VerbAgg 68 -> 41 s). `sample` times the compiled gradient for this: the
# estimate is a factor 2-5 off for some graphs, and threads change no draw.
PARALLEL_CALLBACK_SECONDS = 60e-6
LEAPFROG_STEPS_PER_DRAW = 8  # typical tree size of a well-adapted hierarchical model
BASE_GRADIENT_SECONDS = 5e-6
SECONDS_PER_NODE = 1.0e-7
SECONDS_PER_ELEMENT = 2.5e-9
SECONDS_PER_OBSERVATION = 1.5e-8

LOW_RANK_MAX_DIM = 100
# Regularisation of the low-rank estimate. nutpie's default (1e-5) leaves the covariance of
# the first few warm-up draws nearly singular: its extreme eigenvalues forced 100-200
# leapfrog steps per draw in the first 200 warm-up draws (lme4 bank, egsingle: 142,000
# warm-up gradients, 39 s; with 1e-2: 35,000, 16 s, min bulk ESS 2,500 -> 3,600; epilepsy
# and pixel unchanged).
LOW_RANK_GAMMA = 1e-2


@dataclass(frozen=True)
class Route:
    name: str                 # "callback" or "cfunc"
    gradient_seconds: float   # the cost model's estimate of one log density + gradient
    reason: str


def callback_unavailable() -> str | None:
    """Why the callback route cannot be used with the installed nutpie, or None."""
    version = metadata.version("nutpie")
    if not version.startswith(CALLBACK_NUTPIE):
        return (f"nutpie {version} is not a version the callback route was written for "
                f"({', '.join(v + 'x' for v in CALLBACK_NUTPIE)}): nutpie's public compile")
    from nutpie import compile_pymc, compiled_pyfunc

    missing = [name for module, name in ((compile_pymc, "_prepare_dims_and_coords"),
                                         (compiled_pyfunc, "from_pyfunc"))
               if not hasattr(module, name)]
    if missing:
        return f"nutpie {version} lacks {missing}: nutpie's public compile"
    return None


def data_elements(model: pm.Model) -> int:
    """Elements of every array the log density reads (data and constants): what a
    gradient's cost grows with."""
    return (sum(int(np.size(node.data)) for node in graph.constants(model))
            + sum(int(np.size(v.get_value())) for v in model.data_vars))


def graph_nodes(model: pm.Model) -> int:
    """Operations in the model's log density graph."""
    return len(list(applys_between(model.value_vars, [model.logp()])))


def observations(model: pm.Model) -> int:
    """Values of the observed variables (a marginalised model has none: a Potential), read
    from the data they come from (evaluating them would compile a function: 0.14 s)."""
    return sum(int(np.size(node.get_value()))
               for rv in model.observed_RVs
               for node in graph_inputs([model.rvs_to_values[rv]]) if hasattr(node, "get_value"))


def estimated_gradient_seconds(model: pm.Model, nodes: int | None = None) -> float:
    nodes = graph_nodes(model) if nodes is None else nodes
    return (BASE_GRADIENT_SECONDS + SECONDS_PER_NODE * nodes
            + SECONDS_PER_ELEMENT * data_elements(model)
            + SECONDS_PER_OBSERVATION * observations(model))


def choose_route(seconds: float, *, nodes: int = 0, chains: int = 4, iterations: int = 2000,
                 cores: int | None = None) -> Route:
    """Callback (no wrapper compile; chains in parallel only for costly gradients) or cfunc
    (compile, chains in parallel), whichever the expected wall time favours:

        callback: E * (t + 5 us) / (c if t >= 60 us else 1)
        cfunc:    3 s + 12 ms * nodes + E * t / c

    with E = chains x iterations x 8 gradient evaluations, t the estimated gradient time
    (`NutpieSampler.parallel_callback` times the compiled one for the threads), c =
    min(chains, cores) and nodes the operations in the log density's graph.
    """
    cores = min(chains, cores or os.cpu_count() or 1)
    evaluations = chains * iterations * LEAPFROG_STEPS_PER_DRAW
    callback = evaluations * (seconds + CALLBACK_OVERHEAD_SECONDS) / (
        cores if seconds >= PARALLEL_CALLBACK_SECONDS else 1)
    cfunc = (CFUNC_COMPILE_SECONDS + CFUNC_COMPILE_SECONDS_PER_NODE * nodes
             + evaluations * seconds / cores)
    name = "callback" if callback <= cfunc else "cfunc"
    return Route(name, seconds, f"gradient about {seconds * 1e6:.0f} us: expected {callback:.1f} s "
                 f"through a Python callback, {cfunc:.1f} s compiled to a cfunc")


def adaptation(n_dim: int) -> str:
    """Mass-matrix adaptation: low-rank for small models, diagonal for large ones.

    Group effects leave ridges a diagonal mass matrix follows slowly: between crossed
    factors, and between a group-constant predictor and the group effects. nutpie's low-rank
    adaptation learns them (measured, 4 x 1000 draws: simulated crossed model min bulk ESS
    293 -> 5,385; epilepsy Poisson `lbase` ~400 -> ~5,500). Its cost grows quickly with the
    dimension (radon slopes, 176 parameters: 1.4 s -> 43 s of sampling), so it is used up to
    LOW_RANK_MAX_DIM unconstrained parameters. Above, it did not pay even where trajectories
    are long: VerbAgg (348 parameters, crossed, centred) took 25.9-26.7 leapfrog steps per
    draw with it (gamma 1e-2, eigenvalue cutoff 100 or 3) against 26.9 diagonal, 20-30 %
    slower.
    """
    return "low_rank" if n_dim <= LOW_RANK_MAX_DIM else "diag"


def _compile_cfunc(model: pm.Model):
    with numba_mode():
        compiled = nutpie.compile_pymc_model(model, backend="numba")
    return compiled, {var.name for var in compiled.shared_var_keys}, None


LAYOUT = "layout:values"   # the shared variable holding every value variable's shape


@dataclass
class FlatFunctions:
    """The log density of one flat vector, and the draws' expansion."""

    logp: pytensor.compile.Function      # flat -> (logp, gradient)
    expand: pytensor.compile.Function    # the value variables -> every other traced variable
    names: list[str]                     # of the value variables, then of the traced ones
    value_names: list[str]
    shapes: list[tuple[int, ...]]         # of the value variables, which the layout holds
    parallel: bool = False                # the callback's chains share threads: the GIL-free copy

    def split(self, x: np.ndarray) -> list[np.ndarray]:
        """The flat vector as the value variables (views). Runs once per kept draw in the
        sampler's thread, holding the GIL: math.prod, not np.prod (0.5 s of Chem97's fit)."""
        out, start = [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            out.append(x[start:start + size].reshape(shape))
            start += size
        return out


def _flat_functions(model: pm.Model, shapes: list[tuple[int, ...]]) -> FlatFunctions:
    """Compile the log density (with its gradient) as a function of the flat unconstrained
    vector, and the expansion of a draw into every other traced variable as a function of
    the value variables (numpy cuts the vector for it: fewer operations to compile).

    nutpie's own helper cuts the vector by constant sizes. Here every value variable's
    shape is read from a shared vector (``layout:values``), so nothing in the compiled
    graph depends on the data set's sizes: with the data and prior parameters held as data
    (``graph.as_data``), every data set of the same structure (formula, family,
    parameterisation, prior distributions) compiles to the same graph, whose numba code
    the disk cache serves to later processes.
    """
    from pymc.pytensorf import compile as compile_pymc
    from pytensor.graph import rewrite_graph
    from pytensor.graph.replace import clone_replace

    values = [model.rvs_to_values[rv] for rv in model.free_RVs]
    layout = np.array([d for shape in shapes for d in shape], dtype="int64")
    sizes = pytensor.shared(layout, name=LAYOUT)
    flat = pt.vector("flat", dtype="float64")
    pieces, start, cursor = {}, 0, 0
    for value, shape in zip(values, shapes, strict=True):
        dims = [sizes[cursor + i] for i in range(len(shape))]
        cursor += len(shape)
        if not dims:
            pieces[value] = flat[start].astype(value.dtype)
            start = start + 1
            continue
        size = pt.prod(pt.stack(dims))
        pieces[value] = flat[start:start + size].reshape(pt.stack(dims), ndim=len(dims)
                                                          ).astype(value.dtype)
        start = start + size
    rewrites = ["canonicalize", "stabilize"]
    if not model.check_bounds:
        rewrites.append("local_remove_check_parameter")
    logp = rewrite_graph(model.logp(), include=rewrites)
    grad = pt.concatenate([g.ravel() for g in pt.grad(logp, values)])
    logp, grad = clone_replace([logp, grad], pieces)
    value_names = [v.name for v in values]
    traced = [v for v in model.unobserved_value_vars if v.name not in value_names]
    with model:
        logp_fn = compile_pymc([flat], [logp, grad], mode="NUMBA")
        expand_fn = compile_pymc(values, traced, mode="NUMBA", on_unused_input="ignore")
    return FlatFunctions(logp_fn, expand_fn, [*value_names, *(v.name for v in traced)],
                         value_names, list(shapes))


def _releasing_gil(dispatcher):
    """The numba function PyTensor compiled, compiled again to release the GIL while it runs,
    so that nutpie's chain threads overlap in it. It is cached beside PyTensor's copy under
    its own key: numba's cache index does not tell the two apart, and a copy holding the
    GIL loaded in its place would be correct but serial."""
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src
    from pytensor.link.numba.dispatch.basic import numba_njit

    py_func = dispatcher.py_func
    key = CACHED_SRC_FUNCTIONS.get(py_func)
    if key is None or not hasattr(py_func, "__source__"):
        return numba_njit(py_func, final_function=True, nogil=True)      # not cacheable
    copy = compile_numba_function_src(py_func.__source__, py_func.__name__,
                                      global_env=py_func.__globals__, cache_key=f"{key}:nogil")
    return numba_njit(copy, final_function=True, cache=True, nogil=True)


def _compile_callback(model: pm.Model):
    """The model as a nutpie ``PyFuncModel`` calling PyTensor's numba functions."""
    from nutpie.compile_pymc import _prepare_dims_and_coords
    from nutpie.compiled_pyfunc import from_pyfunc
    from pymc.initial_point import make_initial_point_fn

    # PyMC compiles the initial-point function in FAST_COMPILE mode, whose VM would build C
    # thunks (needing gcc and BLAS); without a C compiler it runs the ops' Python code, which
    # is all one call at start-up needs
    with numba_mode():
        with pytensor.config.change_flags(cxx=""):
            initial_point = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                                  default_strategy="support_point",
                                                  return_transformed=True)
        start = initial_point(0)
        shapes = [np.shape(start[model.rvs_to_values[rv].name]) for rv in model.free_RVs]
        functions = _flat_functions(model, shapes)
    value_names = functions.value_names
    holding_gil, expand_jit = functions.logp.vm.jit_fn, functions.expand.vm.jit_fn
    releasing_gil = functools.cache(lambda: _releasing_gil(holding_gil))
    logp_shared = [v.name for v in functions.logp.get_shared()]
    expand_shared = [v.name for v in functions.expand.get_shared()]
    shared = {v.name: np.asarray(v.get_value())
              for v in [*functions.logp.get_shared(), *functions.expand.get_shared()]}

    # nutpie asks for each chain's start from that chain's thread. The initial-point function
    # is a PyTensor Function, whose storage and seeded generators the calls share: two at once
    # could start a chain from another's seed, or from garbage ("Failed to generate a new
    # initial position", 1 Assay fit in 8), so they take turns, as in nutpie's own route
    lock = threading.Lock()

    def initial_flat(seed):
        with lock:
            point = initial_point(seed)
        return np.concatenate([np.ravel(point[name]) for name in value_names]).astype("float64")

    traced = len(functions.names) > len(value_names)   # else nothing to expand (no outputs)

    def expanded(x, data) -> list[np.ndarray]:
        values = functions.split(x)
        if not traced:
            return values
        return [*values, *expand_jit(*values, *[data[name] for name in expand_shared])]

    x0 = initial_flat(0)
    shapes_out = [np.shape(value) for value in expanded(x0, shared)]
    names = functions.names

    def make_logp_fn():
        # one chain at a time: PyTensor's own copy, so that the GIL-free one (2-3 s of LLVM
        # for its outer function on an empty cache) is compiled only when chains share threads
        logp_jit = releasing_gil() if functions.parallel else holding_gil

        def logp(x, **data):
            value, grad = logp_jit(x, *[data[name] for name in logp_shared])
            return float(value), np.asarray(grad, dtype="float64")
        return logp

    def make_expand_fn(seed1, seed2, chain):
        def expand(x, **data):
            return {name: np.asarray(value, dtype="float64").reshape(shape)
                    for name, value, shape in zip(names, expanded(x, data), shapes_out,
                                                  strict=True)}
        return expand

    reparameterized = [model.rvs_to_values[rv].name for rv in model.free_RVs
                       if model.rvs_to_transforms.get(rv) is not None]
    dims, coords = _prepare_dims_and_coords(model, (names, [None] * len(names), shapes_out),
                                            reparameterized)
    compiled = from_pyfunc(ndim=x0.size, make_logp_fn=make_logp_fn,
                           make_expand_fn=make_expand_fn, make_initial_point_fn=initial_flat,
                           expanded_dtypes=[np.dtype("float64")] * len(names),
                           expanded_shapes=shapes_out, expanded_names=names, dims=dims,
                           coords=coords, shared_data=shared,
                           reparameterized_names=reparameterized)
    return compiled, set(shared), functions


class NutpieSampler:
    """nutpie for one `pm.Model`: the compiled model (built on first use and reused by every
    later fit), the route it took and why, and the data names a refit may swap."""

    def __init__(self, model: pm.Model):
        self.model = model
        self.compiled = None
        self.route: Route | None = None
        self._data_names: set[str] = set()
        self.functions: FlatFunctions | None = None   # the callback route's functions
        self._parallel_callback: bool | None = None    # measured once (PARALLEL_CALLBACK_SECONDS)

    @property
    def is_compiled(self) -> bool:
        return self.compiled is not None

    def plan(self, route: str | None = None, *, chains: int = 4, iterations: int = 2000,
             cores: int | None = None) -> Route:
        """The route a compile would take, from the graph alone (see the module docstring)."""
        if route not in (None, *ROUTES):
            raise SpecError(f"route must be 'callback', 'cfunc' or None, but got {route!r}")
        blocked = callback_unavailable()
        nodes = graph_nodes(self.model)
        seconds = estimated_gradient_seconds(self.model, nodes)
        if route == "callback" and blocked:
            raise SpecError(f"route='callback' is not available: {blocked}")
        if blocked:
            return Route("cfunc", seconds, blocked)
        if route is not None:
            return Route(route, seconds, "set by the caller")
        return choose_route(seconds, nodes=nodes, chains=chains, iterations=iterations,
                            cores=cores)

    def compile(self, route: str | None = None, *, chains: int = 4, iterations: int = 2000,
                cores: int | None = None):
        """The compiled model; compiles on first use, or again when ``route`` asks for the
        other route."""
        if self.compiled is not None and route in (None, self.route.name):
            return self.compiled
        self.route = self.plan(route, chains=chains, iterations=iterations, cores=cores)
        build = _compile_callback if self.route.name == "callback" else _compile_cfunc
        self.compiled, self._data_names, self.functions = build(self.model)
        self._parallel_callback = None
        return self.compiled

    def adopt(self, other: "NutpieSampler") -> None:
        """Take ``other``'s compiled model with this graph's data: the caller has checked
        that the two graphs differ only in ``pm.Data`` values."""
        values = {v.name: v.get_value() for v in self.model.data_vars
                  if v.name in other._data_names}
        self.compiled = other.compiled.with_data(**values)
        self.route, self._data_names = other.route, other._data_names
        self.functions = other.functions

    def logp_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The compiled log density and its gradient at an unconstrained point, through the
        function the sampler calls: routes are compared by value, not by trajectories."""
        x = np.ascontiguousarray(x, dtype="float64")
        if self.route.name == "callback":
            return self.compiled._make_logp_func()(x, **self.compiled._shared_data)
        grad, logp = np.empty_like(x), np.empty(())
        pointer = ctypes.POINTER(ctypes.c_double)
        status = self.compiled.compiled_logp_func.ctypes(
            x.size, x.ctypes.data_as(pointer), grad.ctypes.data_as(pointer),
            logp.ctypes.data_as(pointer), ctypes.c_void_p(self.compiled.user_data.ctypes.data))
        if status not in (0, 3, 4):   # 3 and 4: a non-finite gradient or value, returned as is
            raise RuntimeError(f"nutpie's compiled log density failed with status {status}")
        return float(logp), grad

    def parallel_callback(self) -> bool:
        """Whether the callback's gradient takes PARALLEL_CALLBACK_SECONDS or more: the
        median of 15 calls at the initial point, after one that loads the code."""
        if self._parallel_callback is None:
            x = self.initial_point(0)
            self.logp_and_gradient(x)
            times = []
            for _ in range(15):
                start = time.perf_counter()
                self.logp_and_gradient(x)
                times.append(time.perf_counter() - start)
            self._parallel_callback = float(np.median(times)) >= PARALLEL_CALLBACK_SECONDS
        return self._parallel_callback

    def initial_point(self, seed: int) -> np.ndarray:
        """The jittered unconstrained starting point nutpie draws for ``seed``."""
        if self.route.name == "callback":
            return np.asarray(self.compiled._make_initial_points(seed), dtype="float64")
        return np.asarray(self.compiled.initial_point_func(seed), dtype="float64")

    def sample(self, *, draws, tune, chains, cores, random_seed, progressbar, target_accept,
               route: str | None = None) -> DataTree:
        compiled = self.compile(route, chains=chains, iterations=draws + tune, cores=cores)
        if self.route.name == "callback":
            self.functions.parallel = self.parallel_callback()
            if not self.functions.parallel:
                cores = 1   # short calls: threads would spend more on handing the GIL over
        extra = {"adaptation": adaptation(compiled.n_dim)}
        if extra["adaptation"] == "low_rank":
            extra["mass_matrix_gamma"] = LOW_RANK_GAMMA
        if target_accept is not None:
            extra["target_accept"] = target_accept
        start = time.time()
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=cores,
                              seed=None if random_seed is None else int(random_seed),
                              save_warmup=False, progress_bar=progressbar, **extra)
        with numba_mode():
            patch_nutpie_idata(idata, self.model, sampling_time=time.time() - start)
        return idata
