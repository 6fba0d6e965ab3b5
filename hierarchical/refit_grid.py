"""Refit one model over a grid of priors, in parallel, compiling once per worker.

Each worker builds the model (whose prior parameters are data), compiles it once, and for every grid point swaps in that point's
parameter values (nutpie's ``with_data``) and samples. A point that changes a distribution,
not just its parameters, compiles one more graph, which the worker keeps for later points.
Workers are local processes (``workers=``) or the workers of a ``dask.distributed.Client``
(``client=``); either way each point is sampled with seed ``random_seed + point`` and
summarised in the worker, so the same grid gives the same table on both.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from .exceptions import SpecError
from .model import Model
from .parallel import map_jobs, model_key, plan_workers
from .priors import resolve_priors
from .spec import Prior
from .summary import ci_prob, summarize


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs for one grid point (picklable, small)."""

    key: str                       # content hash of the model: the worker's cache key
    spec: object
    data: pd.DataFrame
    options: dict
    point: int
    seed: int
    overrides: dict
    targets: object
    fit_kwargs: dict = field(default_factory=dict)
    prob: float | None = None      # resolved (ci_prob) before jobs leave this process


_MODELS: dict[str, list] = {}      # per worker process: key -> compiled models, one per structure
_LOCK = threading.Lock()


def _model_for(job: _Job):
    """A model with the point's priors whose sampler is compiled; (model, compile seconds)."""
    bases = _MODELS.setdefault(job.key, [])
    if not bases:
        bases.append(Model(job.spec, job.data, **job.options))
    for base in bases:
        start = time.perf_counter()
        fresh = not base.is_compiled
        base.compiled_nutpie()
        model = base.with_priors(job.overrides)
        if model.is_compiled:
            return model, time.perf_counter() - start if fresh else 0.0
    start = time.perf_counter()
    model.compiled_nutpie()
    bases.append(model)
    return model, time.perf_counter() - start


def _fit_point(job: _Job) -> list[dict]:
    """Fit one grid point and summarise its targets (runs in a worker)."""
    from .sensitivity import quantity_draws  # sensitivity imports this module

    with _LOCK:
        model, compile_seconds = _model_for(job)
    fit = model.fit(random_seed=job.seed, progressbar=False, warn=False, **job.fit_kwargs)
    quantities = quantity_draws(fit, job.targets)
    draws = quantities.to_dataarray(dim="target").transpose("chain", "draw", "target")
    table = summarize(draws, pd.Index(list(quantities.data_vars), name="target"), job.prob)
    divergences = int(fit.tree.sample_stats["diverging"].sum())
    return [{"point": job.point, **{k: repr(p) for k, p in job.overrides.items()},
             "target": label, **row.to_dict(), "divergences": divergences,
             "worker": f"{os.uname().nodename}:{os.getpid()}",
             "compile_seconds": compile_seconds, "sample_seconds": fit.seconds}
            for label, row in table.iterrows()]


def grid_points(grid: Mapping[str, Sequence[Prior]]) -> list[dict[str, Prior]]:
    """Every combination of the grid's priors, in order (the last key varies fastest)."""
    if not isinstance(grid, Mapping) or not grid:
        raise SpecError(f"grid must be a non-empty dict from prior key to a list of Priors, "
                        f"but got {grid!r}")
    for key, priors in grid.items():
        if isinstance(priors, Prior) or not isinstance(priors, Sequence) or not priors:
            raise SpecError(f"grid[{key!r}] must be a non-empty list of Priors, but got {priors!r}")
        bad = [p for p in priors if not isinstance(p, Prior)]
        if bad:
            raise SpecError(f"grid[{key!r}] holds {bad[0]!r}; every entry must be a hier.Prior")
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def prior_grid(model, grid: Mapping[str, Sequence[Prior]], targets=None, *, draws: int = 1000,
               tune: int = 1000, chains: int = 4, random_seed: int = 1,
               workers: int | None = None, client=None, cores_per_fit: int | None = None,
               target_accept: float | None = None, prob: float | None = None,
               progressbar: bool = True) -> pd.DataFrame:
    """Refit ``model`` at every combination of the ``grid`` priors; a tidy table of targets.

    ``grid``: ``{prior key: [Prior, ...]}`` (keys as in ``Model(priors=...)``).
    ``targets``: as in ``sensitivity.quantity_draws`` (functions must be importable, module-
    level, to travel to process workers). Runs on ``workers`` local processes (default: one
    per CPU, at most one per point; 1 runs in this process) or on the workers of a
    ``dask.distributed.Client``. Each fit uses ``cores_per_fit`` threads for its chains
    (default: the CPUs divided among the workers). Process workers start fresh
    interpreters, so in a script call this under ``if __name__ == "__main__":`` (as with any
    multiprocessing; notebooks need nothing).

    One row per (point, target): the point's priors (one column per key), ``mean``, ``sd``,
    the interval, ``mcse_mean``, ``ess_bulk``, ``ess_tail``, ``r_hat``, the point's
    ``divergences``, and where and how long it ran (``worker``, ``compile_seconds`` — non-zero
    once per worker and graph structure — and ``sample_seconds``). ``.attrs["grid"]`` holds
    the points, ``.attrs["wall_seconds"]`` the wall time.
    """
    points = grid_points(grid)
    for overrides in points:                 # bad keys or parameters fail here, not in a worker
        resolve_priors(model.design, {**model.spec.prior_overrides, **overrides})
    n_workers, cores_per_fit = plan_workers(len(points), workers, client, cores_per_fit)
    spec, data, options = model.construction()
    base = dict(key=model_key(model), spec=spec, data=data,
                options=options, targets=targets,
                prob=ci_prob(prob))     # resolved here: workers have their own rcParams
    fit_kwargs = dict(draws=draws, tune=tune, chains=chains, cores=cores_per_fit,
                      target_accept=target_accept)
    jobs = [_Job(point=i, seed=random_seed + i, overrides=o, fit_kwargs=fit_kwargs, **base)
            for i, o in enumerate(points)]
    start = time.perf_counter()
    rows = [row for rows in map_jobs(_fit_point, jobs, workers=n_workers, client=client,
                                     progressbar=progressbar, desc="prior grid")
            for row in rows]
    # each point's rows arrive together, in target order; points arrive as they finish
    table = pd.DataFrame(rows).sort_values("point", kind="stable").reset_index(drop=True)
    table.attrs.update(grid=points, wall_seconds=time.perf_counter() - start, workers=n_workers)
    return table
