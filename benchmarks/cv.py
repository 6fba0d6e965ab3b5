"""Cross-validation at scale: radon (Minnesota, 919 houses, 85 counties), varying intercepts.

``python benchmarks/cv.py`` (in ``.venv-interop`` for the Dask rows; without ``distributed``
they are skipped with a note) prints the tables and writes ``benchmarks/cv.json``:

1. **Parallel cost.** 10-fold CV in this process, one fold after another with one thread
   per fit (the sequential baseline: each fold's sampling time, and the compile), then on 2
   local worker processes. Target: wall <= 1.25 x (the 10 folds' sampling time / 2) + one
   compile per worker, where a worker's compile is what a fresh worker process pays once:
   spawning, importing PyMC and this package, building the model and loading its compiled
   code (measured by starting 2 workers that do only that).
2. **Same answer on Dask.** The same 10 folds on a ``LocalCluster`` of 2 workers: the
   pointwise elpd must be identical.
3. **Scale.** 100-fold CV on the ``LocalCluster``: seconds per fold per worker, from which
   the wall time on N workers is about folds x that / N (plus one compile per worker).
4. **Gelman & Hill.** Complete / no / partial pooling by 10-fold and by leave-county-out
   CV: elpd and root-mean-square error of the held-out predictive means, beside Gelman &
   Hill's cross-validated RMS errors (section 12.2: 0.84, 0.86, 0.79 for new houses).

Pointing it at a real cluster changes one line: ``client = distributed.Client(
"tcp://<scheduler>:8786")`` instead of the ``LocalCluster``; the workers need this package
installed (same versions), and each job carries the data (a pickled DataFrame).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hierarchical as hier  # noqa: E402
from hierarchical import cv, pooling  # noqa: E402
from hierarchical.parallel import map_jobs  # noqa: E402

OUT = Path(__file__).with_name("cv.json")
GELMAN_HILL_RMSE = {"complete pooling": 0.84, "no pooling": 0.86, "partial pooling": 0.79}


def radon_fit():
    model = hier.Model(hier.random_intercepts("log_radon", group="county", predictors=["floor"]),
                       hier.datasets.load("radon"))
    return model.fit(random_seed=1, progressbar=False)


def _start_worker(job) -> float:
    """What a fresh worker does once: import, build the fold model, compile it."""
    start = time.perf_counter()
    cv._fold_model(job).compiled_nutpie(chains=4, iterations=2000, cores=1)
    return time.perf_counter() - start


def worker_start(fit) -> float:
    """Wall time for 2 fresh local workers to start, import and compile, side by side: the
    one-time cost per worker (disk caches warm, as after the first run on a machine)."""
    jobs, _ = cv._jobs(fit, [np.arange(2), np.arange(2, 4)], kind=1, random_seed=1,
                       draws_per_level=1, cores_per_fit=1)
    start = time.perf_counter()
    list(map_jobs(_start_worker, jobs, workers=2, progressbar=False))
    return time.perf_counter() - start


def parallel_cost(fit) -> dict:
    start = time.perf_counter()
    sequential = cv.kfold(fit, 10, workers=1, cores_per_fit=1, cache=False, progressbar=False)
    sequential_wall = time.perf_counter() - start
    folds = sequential.fold_table
    compile_seconds = float(folds["seconds"].iloc[0] - folds["seconds"].iloc[1:].median())
    sampling = float(folds["seconds"].sum() - compile_seconds)
    start = time.perf_counter()
    local = cv.kfold(fit, 10, workers=2, cores_per_fit=1, cache=False, progressbar=False)
    local_wall = time.perf_counter() - start
    startup = worker_start(fit)
    bound = 1.25 * sampling / 2 + startup
    return {"sequential_wall": sequential_wall, "sampling_10_folds": sampling,
            "compile": compile_seconds, "worker_start": startup,
            "two_workers_wall": local_wall, "target": bound,
            "meets_target": local_wall <= bound,
            "same_as_sequential": bool(np.array_equal(sequential.elpd_i.values,
                                                      local.elpd_i.values)),
            "elpd": local.elpd, "elpd_i": local.elpd_i.values}


def dask_rows(fit, local_elpd_i) -> dict:
    try:
        import distributed
    except ImportError:
        return {"skipped": "distributed is not installed (use .venv-interop)"}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        start = time.perf_counter()
        ten = cv.kfold(fit, 10, client=client, cache=False, progressbar=False)
        ten_wall = time.perf_counter() - start
        start = time.perf_counter()
        hundred = cv.kfold(fit, 100, client=client, cache=False, progressbar=False)
        hundred_wall = time.perf_counter() - start
    folds = hundred.fold_table
    steady = folds.loc[~folds["compiled"], "seconds"]
    return {"ten_folds_wall": ten_wall,
            "identical_to_local": bool(np.array_equal(ten.elpd_i.values, local_elpd_i)),
            "hundred_folds_wall": hundred_wall, "hundred_compiles": int(folds["compiled"].sum()),
            "seconds_per_fold": float(steady.median()),
            "failed": int(folds["error"].notna().sum()),
            "unconverged": int((~folds["converged"].astype(bool)).sum()),
            "elpd_100_fold": hundred.elpd, "se_100_fold": hundred.se}


def gelman_hill(fit) -> list[dict]:
    rows = []
    for method in ("kfold", "group"):
        pc = pooling.from_fits(_pooling_fits(fit), cv=method, workers=2, progressbar=False)
        for name, row in pc.compare.iterrows():
            rows.append({"cv": pc.compare.attrs["method"], "model": name, "elpd": row["elpd"],
                         "se": row["se"], "elpd_diff": row["elpd_diff"], "dse": row["dse"],
                         "rmse_cv": row["rmse_cv"], "gelman_hill_rmse": GELMAN_HILL_RMSE[name],
                         "levels_from_prior": row["levels_from_prior"], "note": row["note"]})
    return rows


_FITS = {}


def _pooling_fits(fit) -> dict:
    if not _FITS:
        model = fit.model
        _FITS.update({
            "partial pooling": fit,
            "complete pooling": hier.Model(pooling.complete_pooling_spec(model.spec),
                                           model.data).fit(random_seed=1, progressbar=False),
            "no pooling": hier.Model(pooling.no_pooling_spec(model, "county"),
                                     model.data).fit(random_seed=1, progressbar=False)})
    return _FITS


def main() -> None:
    print(f"{os.cpu_count()} CPUs")
    fit = radon_fit()
    cost = parallel_cost(fit)
    print("\n10-fold CV, radon intercepts (4 chains x 1000 draws per fold, 1 thread per fit)")
    print(f"  sequential in this process: {cost['sequential_wall']:.1f} s; the folds' sampling "
          f"{cost['sampling_10_folds']:.1f} s, compile {cost['compile']:.1f} s")
    print(f"  a fresh worker's one-time start (spawn, import, build, compile from the disk "
          f"cache), 2 side by side: {cost['worker_start']:.1f} s")
    print(f"  2 local workers: {cost['two_workers_wall']:.1f} s; target 1.25 x "
          f"{cost['sampling_10_folds']:.1f} / 2 + {cost['worker_start']:.1f} = {cost['target']:.1f} s "
          f"-> {'met' if cost['meets_target'] else 'MISSED'}; identical elpd: "
          f"{cost['same_as_sequential']}")
    dask = dask_rows(fit, cost["elpd_i"])
    if "skipped" in dask:
        print(f"\nDask: skipped ({dask['skipped']})")
    else:
        print(f"\nDask LocalCluster, 2 workers: 10 folds {dask['ten_folds_wall']:.1f} s, identical "
              f"to local processes: {dask['identical_to_local']}")
        print(f"  100 folds: {dask['hundred_folds_wall']:.1f} s, {dask['hundred_compiles']} compiles, "
              f"{dask['seconds_per_fold']:.2f} s per fold per worker -> about "
              f"{dask['seconds_per_fold']:.2f} x folds / N workers on N workers; "
              f"elpd {dask['elpd_100_fold']:.1f} (SE {dask['se_100_fold']:.1f}); "
              f"{dask['failed']} failed, {dask['unconverged']} unconverged")
    rows = gelman_hill(fit)
    print("\nComplete / no / partial pooling (radon MN), with Gelman & Hill's CV RMS errors")
    print(f"  {'cv':40s} {'model':17s} {'elpd':>9s} {'se':>6s} {'diff':>7s} {'dse':>5s} "
          f"{'rmse':>6s} {'G&H':>5s}")
    for r in rows:
        if r["note"]:
            print(f"  {r['cv']:40s} {r['model']:17s} {'—':>9s}  ({r['note'].split(':')[0]})")
            continue
        print(f"  {r['cv']:40s} {r['model']:17s} {r['elpd']:9.1f} {r['se']:6.1f} "
              f"{r['elpd_diff']:7.1f} {r['dse']:5.1f} {r['rmse_cv']:6.3f} "
              f"{r['gelman_hill_rmse']:5.2f}"
              + (f"  ({r['levels_from_prior']:.0f} held-out counties had no training rows: "
                 "predicted from the prior)" if r["levels_from_prior"] else ""))
    cost.pop("elpd_i")
    OUT.write_text(json.dumps({"cpus": os.cpu_count(), "parallel": cost, "dask": dask,
                               "pooling": rows}, indent=1, default=float) + "\n")
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    main()
