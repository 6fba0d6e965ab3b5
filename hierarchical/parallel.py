"""Run independent jobs on local processes or a Dask cluster, with a progress bar.

Used by prior grids and simulation-based calibration: each job is small and picklable, the
worker function is module-level, and workers keep compiled models between jobs in their own
module-level caches, so a model compiles once per worker.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

import pandas as pd

from .exceptions import SpecError


def model_key(model) -> str:
    """A content key of a model (spec, options, data): what a worker caches compiled
    models under, and what cached results are filed under."""
    rows = pd.util.hash_pandas_object(model.data, index=True).sum()
    return f"{model.spec!r}|{model.marginalized}|{model.aggregate_rows}|{rows}"


def plan_workers(n_jobs: int, workers: int | None, client,
                 cores_per_fit: int | None) -> tuple[int, int]:
    """(workers, threads per fit): by default one local worker per CPU, at most one per
    job, and the CPUs shared among the workers; with a Dask client, its workers."""
    if client is None:
        workers = min(n_jobs, os.cpu_count() or 1) if workers is None else workers
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise SpecError(f"workers must be a positive integer, but got {workers!r}")
    else:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
    if cores_per_fit is None:
        cores_per_fit = max(1, (os.cpu_count() or 1) // workers)
    return workers, cores_per_fit


def progress(total: int, enabled: bool, desc: str):
    """A tqdm bar; the notebook flavour only when shown (it warns without ipywidgets)."""
    if enabled:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="fit", disable=not enabled)


def map_jobs(function: Callable, jobs: Sequence, *, workers: int = 1, client=None,
             progressbar: bool = True, desc: str = "fits") -> Iterator:
    """Yield ``function(job)`` for every job, in the order they finish.

    ``client``: a ``dask.distributed.Client``; otherwise ``workers`` fresh local processes
    (spawned, so scripts need ``if __name__ == "__main__":``), or this process when 1.
    """
    with progress(len(jobs), progressbar, desc) as bar:
        if client is not None:
            from distributed import as_completed as dask_completed

            futures = [client.submit(function, job, pure=False) for job in jobs]
            for future in dask_completed(futures):
                yield future.result()
                bar.update()
        elif workers == 1:
            for job in jobs:
                yield function(job)
                bar.update()
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                for future in as_completed([pool.submit(function, job) for job in jobs]):
                    yield future.result()
                    bar.update()
