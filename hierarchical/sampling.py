"""The sampler back-ends' common ground: their names, the numba compile mode, and PyMC's own
NUTS and numpyro (JAX), which go through ``pm.sample``. nutpie, the default, has its own
module (``nutpie_sampler.py``): it compiles once per graph and is reused by later fits.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from contextlib import contextmanager

import pymc as pm
import pytensor
from xarray import DataTree

from .exceptions import SamplerError

SAMPLERS = ("nutpie", "pymc", "numpyro")

# NUTS's target acceptance rate when the caller gives none (`target_accept`).
SAMPLED_EFFECTS_TARGET_ACCEPT = 0.95
INTEGRATED_EFFECTS_TARGET_ACCEPT = 0.9


def target_accept(integrated: bool) -> float:
    """The default target acceptance rate: 0.95 where group effects are sampled, 0.9 where
    they are integrated out (exactly or by the Laplace approximation).

    Sampled effects change curvature with their SDs (funnels): at 0.9 the cbpp logit model
    had 3 divergences on 1 seed in 4 and sampled radon slopes an r_hat of 1.011-1.013, none
    at 0.95 (as rstanarm's default for hierarchical models; 4 chains x 1000). Integrated out,
    the posterior of the SDs and fixed effects has no funnel, and the smaller target costs
    20-30 % fewer gradients per draw (the lme4 bank's 15 marginalised examples, 3 seeds
    each: no divergence at 0.9; at 0.8 Assay, whose 2-level Block SD reaches into its
    half-normal prior's steep tail, had 3-8 per fit and cbpp_obs 2 on one seed;
    ``benchmarks/target_accept.py``).
    """
    return INTEGRATED_EFFECTS_TARGET_ACCEPT if integrated else SAMPLED_EFFECTS_TARGET_ACCEPT


def check_sampler(sampler: str) -> None:
    if sampler not in SAMPLERS:
        raise SamplerError(f"sampler must be one of {SAMPLERS}, but got {sampler!r}")
    if importlib.util.find_spec(sampler) is None:
        hint = " (pip install 'hierarchical[jax]')" if sampler == "numpyro" else ""
        raise SamplerError(f"sampler={sampler!r} needs the {sampler} package{hint}")


@contextmanager
def numba_mode():
    """Compile every PyTensor function (log densities, initial points, prior draws) through
    numba, without fast-math.

    PyTensor's default C back-end needs gcc and a BLAS that pip installs lack; numba is what
    the samplers use anyway, so one back-end serves all and its cache is shared.

    Fast-math is off because with it the same seed gave other draws on a first run than on
    a rerun. It lets LLVM re-associate and contract (FMA) floating-point operations, and
    numba keeps two differently optimised copies of each fused elementwise kernel: the
    standalone one, which a process that compiled the graph itself binds to, and the copy
    re-optimised inside the cached outer function, which a process that loaded the graph
    from the disk cache runs. The two round differently in the last bits, and NUTS
    trajectories amplify that (radon, 2 x 300 draws: beta differed by 0.3). Without
    fast-math LLVM must keep IEEE semantics, so both copies compute the same bits; the cost
    was 0-5 % per gradient. It also makes nutpie's two compile routes compute the same bits.

    PyMC compiles its initial-point function in FAST_COMPILE mode whatever the configured
    mode, so for correlated effects (an LKJ graph with a scan) PyTensor's C back-end looks for
    a BLAS once and, on pip installs, warns that it found none. Nothing sampled or drawn runs
    on that back-end, so inside this context that one warning is not shown.
    """
    with pytensor.config.change_flags(mode="NUMBA", numba__fastmath=False), \
            warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
        yield


@contextmanager
def quiet_logger(name: str):
    """Hold back a logger's INFO lines (PyMC's "Sampling: [...]" list of variables, which a
    notebook shows as stderr output); warnings and errors still pass."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _seed(random_seed) -> int | None:
    return None if random_seed is None else int(random_seed)


def sample_pymc(model: pm.Model, *, sampler, draws, tune, chains, cores, random_seed,
                progressbar, target_accept) -> DataTree:
    kwargs = {} if target_accept is None else {"nuts": {"target_accept": target_accept}}
    with numba_mode():
        return pm.sample(draws=draws, tune=tune, chains=chains, cores=cores,
                         random_seed=_seed(random_seed), progressbar=progressbar, model=model,
                         nuts_sampler=sampler, compute_convergence_checks=False, **kwargs)
