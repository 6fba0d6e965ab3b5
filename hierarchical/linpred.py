"""The linear predictor eta = offset + X beta + sum_g Z_g u_g[code], evaluated on draws."""

from __future__ import annotations

import numpy as np
import xarray as xr
from xarray import DataTree

from . import names
from .design import Design
from .names import observed_name


def eta_draws(posterior: xr.Dataset, X: np.ndarray, groups: list[tuple[str, np.ndarray, np.ndarray]],
              offset: np.ndarray | None = None, effects: dict[str, np.ndarray] | None = None
              ) -> np.ndarray:
    """eta with shape (chain, draw, rows).

    ``groups`` holds (name, level codes, Z) per grouping factor; ``effects`` may replace a
    factor's posterior effects (chain, draw, level, term), e.g. with new levels appended.
    """
    effects = effects or {}
    if X.shape[1]:
        eta = posterior[names.FIXED].values @ X.T           # BLAS; einsum was 10x slower here
    else:
        eta = np.zeros((posterior.sizes["chain"], posterior.sizes["draw"], X.shape[0]))
    for name, codes, Z in groups:
        u = effects.get(name)
        if u is None:
            u = posterior[names.effect(name)].transpose("chain", "draw", name, names.term_dim(name)).values
        for term in range(Z.shape[1]):  # one gathered (chain, draw, rows) slice at a time
            # a contiguous (chain, draw, level) slice gathers 3x faster than a strided one
            gathered = np.take(np.ascontiguousarray(u[..., term]), codes, axis=-1)
            if not np.all(Z[:, term] == 1.0):   # intercepts need no product
                gathered *= Z[:, term]
            eta += gathered
    if offset is not None:
        eta += offset
    return eta


def in_sample_eta(posterior: xr.Dataset, design: Design) -> np.ndarray:
    groups = [(g.name, g.codes, g.Z) for g in design.groups]
    return eta_draws(posterior, design.X, groups, design.offset)


def family_draws(posterior: xr.Dataset, design: Design) -> dict[str, np.ndarray]:
    """The family's own parameters (sigma, alpha, nu, psi, kappa) per draw, shaped
    (chain, draw, 1) to broadcast over rows."""
    return {extra.name: posterior[extra.name].values[..., None]
            for extra in design.spec.family_object.extras}


LOGLIK_BLOCK = 1 << 18  # values per block of draws (2 MB of float64)
LOGLIK_MIN_DRAWS = 20   # per block: below this, selecting the block costs more than it saves


def log_likelihood_group(posterior: xr.Dataset, design: Design) -> DataTree:
    """Pointwise log likelihood of the observed rows, as the ``log_likelihood`` group.

    Computed a block of draws at a time: the temporaries stay in cache instead of being
    fresh (draws x rows) arrays (radon, all states: 1.9 s -> see benchmarks). Blocks hold at
    least LOGLIK_MIN_DRAWS draws: with 2 draws per block (31,022 rows, Chem97) selecting
    500 blocks from the posterior took longer than the arithmetic.
    """
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    ll = np.empty((chains, draws, design.n))
    step = max(LOGLIK_MIN_DRAWS, LOGLIK_BLOCK // max(chains * design.n, 1))
    for start in range(0, draws, step):
        block = posterior.isel(draw=slice(start, start + step))
        ll[:, start:start + step] = design.spec.family_object.log_likelihood(
            design.y, in_sample_eta(block, design), family_draws(block, design), design)
    if design.weights is not None:
        ll *= design.weights            # row i stands for weights_i observations
    name = observed_name(design)
    data = xr.Dataset({name: (("chain", "draw", names.OBS_DIM), ll)},
                      coords={"chain": posterior["chain"], "draw": posterior["draw"],
                              names.OBS_DIM: np.arange(design.n)})
    return DataTree(data)


def group_cholesky(posterior: xr.Dataset, name: str, k: int) -> np.ndarray:
    """Cholesky factor of each draw's group covariance, diag(sd) L: (chain, draw, k, k)."""
    sd = posterior[names.sd(name)].transpose("chain", "draw", names.term_dim(name)).values
    if names.corr_chol(name) in posterior:
        return sd[..., :, None] * posterior[names.corr_chol(name)].values
    return sd[..., :, None] * np.eye(k)


def new_level_effects(posterior: xr.Dataset, name: str, k: int, n: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Effects of ``n`` levels never seen in fitting, drawn from the fitted group
    distribution independently per level and per draw: (chain, draw, n, k)."""
    z = rng.standard_normal((posterior.sizes["chain"], posterior.sizes["draw"], n, k))
    return np.einsum("cdij,cdnj->cdni", group_cholesky(posterior, name, k), z)
