"""Prior sensitivity on real data: the figures of issue 5, printed, and docs/ figures.

    .venv/bin/python scripts/prior_sensitivity.py [--seeds 6] [--workers 2]

1. Power-scaling on lme4's Dyestuff (6 batches) and Minnesota radon (85 counties).
2. The same model marginalised, centred and non-centred, over several seeds: sensitivities
   agree within Monte Carlo error when only the top-level priors are scaled; scaling every
   prior (arviz.psense's default) makes them disagree.
3. An 8-prior grid on radon's county SD: wall time against compile + 8 runs / workers, on
   local processes and on a Dask LocalCluster (same table).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import hierarchical as hier
from hierarchical import plots, sensitivity
from hierarchical.spec import Prior

DOCS = Path(__file__).resolve().parent.parent / "docs"
DYESTUFF = "Yield ~ 1 + (1 | Batch)"
RADON = "log_radon ~ floor + (1 | county)"
RADON_GRID = {"county_sd": [Prior("HalfNormal", sigma=s)
                            for s in (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4)]}
PARAMETERISATIONS = {
    "marginalised": dict(),
    "centred": dict(marginalize=False, centered=True),
    "non-centred": dict(marginalize=False, centered=False),
}


def power_scaling(dyestuff, radon):
    print("== 1. power-scaling sensitivity (default priors, 4 x 1000 draws) ==")
    for name, model in [("Dyestuff", hier.Model(DYESTUFF, dyestuff)),
                        ("radon", hier.Model(RADON, radon))]:
        fit = model.fit(random_seed=1, progressbar=False)
        table = sensitivity.power_scale(fit)
        print(f"\n{name}: {model.spec.formula}\n{table.round(3).to_string()}")
        if name == "Dyestuff":
            plots.save(plots.power_scale(fit, table=table), DOCS / "sensitivity_power_scale.png")
            check = model.prior_predictive(random_seed=1)
            print(f"\n{check}")
            plots.save(plots.prior_predictive(check, fit), DOCS / "sensitivity_prior_predictive.png")
            grid = {"Batch_sd": [Prior("HalfNormal", sigma=s) for s in (5, 10, 20, 50, 100, 200)]}
            table = sensitivity.prior_grid(model, grid, targets=[
                "Batch_sd[Intercept]", "icc[Batch]", "Intercept", "sigma"], progressbar=False)
            print(table[["point", "Batch_sd", "target", "mean", "sd", "eti94_lb", "eti94_ub",
                         "r_hat", "divergences"]].round(3).to_string(index=False))
            plots.save(plots.prior_grid(table), DOCS / "sensitivity_dyestuff_grid.png")


def parameterisations(dyestuff, seeds: int):
    print(f"\n== 2. parameterisations, Dyestuff, {seeds} seeds: mean (sd) of the CJS distance ==")
    rows = []
    for label, options in PARAMETERISATIONS.items():
        model = hier.Model(DYESTUFF, dyestuff, **options)
        for seed in range(seeds):
            # centred Dyestuff has a funnel: smaller steps keep it free of divergences
            fit = model.fit(random_seed=100 + seed, progressbar=False, warn=False,
                            target_accept=0.99 if label == "centred" else 0.95)
            divergences = int(fit.idata.sample_stats["diverging"].sum())
            for scale in ("top-level", "all"):
                if scale == "all" and label == "marginalised":
                    continue
                table = sensitivity.power_scale(fit, scale_priors=scale)
                for quantity, row in table.iterrows():
                    rows.append({"fit": label, "scaled": scale, "seed": seed,
                                 "quantity": quantity, "prior": row["prior"],
                                 "likelihood": row["likelihood"], "divergences": divergences})
    frame = pd.DataFrame(rows)
    summary = frame.groupby(["scaled", "quantity", "fit"], sort=False)["prior"].agg(["mean", "std"])
    wide = summary.apply(lambda r: f"{r['mean']:.3f} ({r['std']:.3f})", axis=1).unstack("fit")
    print(wide.to_string())
    per_form = frame.drop_duplicates(["fit", "seed"]).groupby("fit", sort=False)["divergences"].sum()
    print(f"divergent transitions per form, summed over seeds: {per_form.to_dict()}")


def grid_timing(radon, workers: int, options: dict):
    print(f"\n== 3. 8-prior grid on radon county_sd, {workers} workers, 4 x 1000 draws, "
          f"Model options {options} ==")
    cores = max(1, (os.cpu_count() or 1) // workers)
    base = hier.Model(RADON, radon, **options)
    start = time.perf_counter()
    base.compiled_nutpie()
    compile_s = time.perf_counter() - start
    point = base.with_priors({"county_sd": RADON_GRID["county_sd"][0]})
    point.fit(random_seed=1, progressbar=False, warn=False, cores=cores)        # warm-up
    runs = []
    for seed in range(3):
        start = time.perf_counter()
        point.fit(random_seed=seed, progressbar=False, warn=False, cores=cores)
        runs.append(time.perf_counter() - start)
    run_s = float(np.median(runs))
    model = hier.Model(RADON, radon, **options)
    targets = ["county_sd[Intercept]", "icc[county]", "pooling_factor[county, Intercept]", "floor"]
    start = time.perf_counter()
    local = sensitivity.prior_grid(model, RADON_GRID, targets=targets, workers=workers)
    wall = time.perf_counter() - start
    n = len(RADON_GRID["county_sd"])
    print(f"one compile (this process): {compile_s:.1f} s; one sampling run with {cores} "
          f"core(s): {run_s:.2f} s")
    worker_compile = local["compile_seconds"].max()
    print(f"grid wall time: {wall:.1f} s; minus one compile: {wall - compile_s:.1f} s "
          f"(minus the workers' own compile, {worker_compile:.1f} s: {wall - worker_compile:.1f} s, "
          f"which includes starting the processes); {n} x one run / {workers} workers: "
          f"{n * run_s / workers:.1f} s")
    per_worker = local.drop_duplicates("point").groupby("worker")[
        ["compile_seconds", "sample_seconds"]].agg(["sum", "count"])
    print(f"per worker (compiles are non-zero once per worker):\n{per_worker.round(2).to_string()}")
    print(local[local["target"] == "county_sd[Intercept]"][
        ["point", "county_sd", "mean", "sd", "eti94_lb", "eti94_ub", "ess_bulk", "r_hat",
         "divergences"]].round(3).to_string(index=False))
    if not options:
        plots.save(plots.prior_grid(local), DOCS / "sensitivity_radon_grid.png")

    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        start = time.perf_counter()
        remote = sensitivity.prior_grid(model, RADON_GRID, targets=targets, client=client)
        dask_wall = time.perf_counter() - start
    columns = [c for c in local.columns if c not in ("worker", "compile_seconds", "sample_seconds")]
    same = local[columns].equals(remote[columns])
    print(f"Dask LocalCluster ({workers} workers): {dask_wall:.1f} s; identical table: {same}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--part", choices=["all", "1", "2", "3"], default="all")
    args = parser.parse_args()
    DOCS.mkdir(exist_ok=True)
    dyestuff, radon = hier.datasets.load("dyestuff"), hier.datasets.load("radon")
    if args.part in ("all", "1"):
        power_scaling(dyestuff, radon)
    if args.part in ("all", "2"):
        parameterisations(dyestuff, args.seeds)
    if args.part in ("all", "3"):
        grid_timing(radon, args.workers, {})
        grid_timing(radon, args.workers, {"marginalize": False})


if __name__ == "__main__":
    main()
