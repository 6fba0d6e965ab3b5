"""nutpie driving PyTensor's numba-compiled log density through a Python callback.

nutpie's own PyMC route wraps the log density in a numba ``cfunc``. numba cannot cache that
wrapper (it closes over the data), so every new process and every new model pays 1-7 s of
LLVM work, however small the model: on radon it was most of a marginalised fit. The
PyTensor function underneath *is* cached on disk, and calling it from Python costs about
5 microseconds. So for a model whose gradient is cheap, handing nutpie that function as a
callback reaches the first draw seconds sooner. Callbacks hold the GIL, so the chains then
run one after another; for a costly gradient the cfunc route with parallel chains wins.
``choose_route`` weighs the two with the measured cost of one gradient.

The graph functions come from nutpie's ``_make_functions``, the same helper its JAX route
uses with the same callback protocol (``from_pyfunc``); pyproject pins nutpie's minor
version because that helper is private.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor

# Measured on the 2-core development machine (nutpie 0.16, warm caches): the cfunc wrapper
# of a small model takes 1.3-7 s to compile; 3 s is the typical case.
CFUNC_COMPILE_SECONDS = 3.0
CALLBACK_OVERHEAD_SECONDS = 5e-6
LEAPFROG_STEPS_PER_DRAW = 8  # typical tree size of a well-adapted hierarchical model


@dataclass(frozen=True)
class Route:
    name: str                 # "callback" or "cfunc"
    gradient_seconds: float   # one log density + gradient evaluation
    reason: str


def compile_callback(model: pm.Model):
    """The model as a nutpie ``PyFuncModel`` calling PyTensor's numba function."""
    from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords
    from nutpie.compiled_pyfunc import from_pyfunc
    from pymc.initial_point import make_initial_point_fn

    from .sampling import numba_mode

    # PyMC compiles the initial-point function in FAST_COMPILE mode, whose VM would build C
    # thunks (needing gcc and BLAS); without a C compiler it runs the ops' Python code, which
    # is all one call at start-up needs
    with numba_mode():
        with pytensor.config.change_flags(cxx=""):
            initial_point = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                                  default_strategy="support_point",
                                                  return_transformed=True)
        n_dim, _, logp_pt, expand_pt, initial_flat, shape_info, reparameterized = \
            _make_functions(model, mode="NUMBA", compute_grad=True, join_expanded=False,
                            pymc_initial_point_fn=initial_point)
    logp_jit, expand_jit = logp_pt.vm.jit_fn, expand_pt.vm.jit_fn
    logp_shared = [v.name for v in logp_pt.get_shared()]
    expand_shared = [v.name for v in expand_pt.get_shared()]
    shared = {v.name: np.asarray(v.get_value())
              for v in [*logp_pt.get_shared(), *expand_pt.get_shared()]}
    names, _, shapes = shape_info

    def make_logp_fn():
        def logp(x, **data):
            value, grad = logp_jit(x, *[data[name] for name in logp_shared])
            return float(value), np.asarray(grad, dtype="float64")
        return logp

    def make_expand_fn(seed1, seed2, chain):
        def expand(x, **data):
            values = expand_jit(x, *[data[name] for name in expand_shared])
            return {name: np.asarray(value, dtype="float64").reshape(shape)
                    for name, value, shape in zip(names, values, shapes, strict=True)}
        return expand

    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return from_pyfunc(ndim=n_dim, make_logp_fn=make_logp_fn,
                       make_expand_fn=make_expand_fn,
                       make_initial_point_fn=initial_flat,
                       expanded_dtypes=[np.dtype("float64")] * len(names),
                       expanded_shapes=shapes, expanded_names=names, dims=dims, coords=coords,
                       shared_data=shared, reparameterized_names=reparameterized)


def gradient_seconds(compiled, repeats: int = 30) -> float:
    """Median wall time of one log density + gradient at a jittered initial point."""
    logp = compiled._make_logp_func()
    x = np.asarray(compiled._make_initial_points(0), dtype="float64")
    logp(x, **compiled._shared_data)  # first call may still load code
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        logp(x, **compiled._shared_data)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def choose_route(seconds: float, *, chains: int = 4, iterations: int = 2000,
                 cores: int | None = None) -> Route:
    """Callback (sequential chains, no wrapper compile) or cfunc (compile, parallel chains),
    whichever the expected wall time favours:

        callback: E * (t + 5 us)          cfunc: 3 s + E * t / min(chains, cores)

    with E = chains x iterations x 8 gradient evaluations and t the measured gradient time.
    """
    cores = min(chains, cores or os.cpu_count() or 1)
    evaluations = chains * iterations * LEAPFROG_STEPS_PER_DRAW
    callback = evaluations * (seconds + CALLBACK_OVERHEAD_SECONDS)
    cfunc = CFUNC_COMPILE_SECONDS + evaluations * seconds / cores
    name = "callback" if callback <= cfunc else "cfunc"
    return Route(name, seconds, f"gradient {seconds * 1e6:.0f} us: expected {callback:.1f} s "
                 f"through a Python callback, {cfunc:.1f} s compiled to a cfunc")
