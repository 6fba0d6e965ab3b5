"""Benchmark: this toolkit against bambi (default sampler and nutpie) on the same models.

Every contender gets the same data and the same priors (ours, translated by
``hierarchical.bambi_interop``). Each (case, contender) runs in its own subprocess, so compile caches are what we say they
are: "cold" points PyTensor's compile directory and numba's cache at empty folders, "warm"
reuses them. Figures per run: wall time from building the model to a finished fit, the
minimum bulk ESS over fixed effects and variance components, ESS per second, and the
posterior means, checked against ours within 4 combined Monte Carlo standard errors.

    python benchmarks/run.py                      # every case, warm caches
    python benchmarks/run.py --cases radon_mn_int sleepstudy --cold
    make bench

bambi has no correlated group effects, so its (1 + x | g) is compared with our (1 + x || g);
our correlated model is reported as an extra row with no contender.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    # name: (dataset, our formula, bambi formula or None, family)
    "radon_mn_int": ("radon", "log_radon ~ floor + (1 | county)", "log_radon ~ floor + (1 | county)", "gaussian"),
    "radon_mn_slopes": ("radon", "log_radon ~ floor + (1 + floor || county)", "log_radon ~ floor + (1 + floor | county)", "gaussian"),
    "radon_mn_slopes_corr": ("radon", "log_radon ~ floor + (1 + floor | county)", None, "gaussian"),
    "radon_all_slopes": ("radon_all", "log_radon ~ floor + (1 + floor || county)", "log_radon ~ floor + (1 + floor | county)", "gaussian"),
    "radon_all_slopes_corr": ("radon_all", "log_radon ~ floor + (1 + floor | county)", None, "gaussian"),
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days || Subject)", "Reaction ~ Days + (Days | Subject)", "gaussian"),
    "epilepsy": ("epil", "y ~ trt + lbase + lage + V4 + (1 | subject)", "y ~ trt + lbase + lage + V4 + (1 | subject)", "poisson"),
    "contraception_logit": ("contraception", "use01 ~ urban + livch + (1 | district)", "use01 ~ urban + livch + (1 | district)", "bernoulli"),
    "insteval_crossed": ("insteval", "y ~ service + (1 | s) + (1 | d)", "y ~ service + (1 | s) + (1 | d)", "gaussian"),
}
CONTENDERS = ("hierarchical", "bambi", "bambi_nutpie")
SAMPLING = dict(draws=1000, tune=1000, chains=2)


def load(dataset: str):
    import hierarchical as hier

    data = hier.datasets.load(dataset)
    if dataset == "contraception":
        data = data.assign(use01=(data["use"] == "Y").astype(int))
    if dataset == "radon_all":
        data = data[data["floor"].isin([0, 1])].reset_index(drop=True)  # drop survey codes 2, 3, 9
    return data


def summarise_ours(fit) -> dict:
    table = fit.fixed_effects()
    out = {f"beta[{t}]": (r["mean"], r["mcse_mean"], r["ess_bulk"]) for t, r in table.iterrows()}
    for (g, name), r in fit.variance_components().iterrows():
        key = "sigma" if g == "residual" else f"{g}_sd[{name}]"
        if not name.startswith("corr("):
            out[key] = (r["mean"], r["mcse_mean"], r["ess_bulk"])
    return out


def summarise_bambi(idata, model) -> dict:
    import arviz as az
    import numpy as np

    post = idata.posterior
    out = {}
    for name in post.data_vars:
        draws = post[name]
        extra = [d for d in draws.dims if d not in ("chain", "draw")]
        if name.endswith("_offset") or (("|" in name) and not name.endswith("_sigma")):
            continue
        if extra:
            if "__obs__" in extra:
                continue
            for level in draws[extra[0]].values:
                sub = draws.sel({extra[0]: level})
                out[f"beta[{name}[{level}]]"] = _stats(sub, az, np)
        elif name.endswith("_sigma"):
            term, group = name[:-6].split("|")
            out[f"{group}_sd[{'Intercept' if term == '1' else term}]"] = _stats(draws, az, np)
        elif name == "sigma":
            out["sigma"] = _stats(draws, az, np)
        else:
            out[f"beta[{name}]"] = _stats(draws, az, np)
    return out


def _stats(draws, az, np):
    return (float(draws.mean()), float(az.mcse(draws, method="mean")), float(az.ess(draws, method="bulk")))


def worker(case: str, contender: str, seed: int) -> dict:
    """One fit in this process; returns timings and per-parameter (mean, mcse, ess)."""
    import warnings

    dataset, ours, theirs, family = CASES[case]
    data = load(dataset)
    start = time.perf_counter()
    if contender == "hierarchical":
        import hierarchical as hier

        with warnings.catch_warnings(record=True):
            fit = hier.Model(ours, data, family=family).fit(random_seed=seed, progressbar=False,
                                                             **SAMPLING)
        seconds = time.perf_counter() - start
        params = summarise_ours(fit)
        verdict = f"{fit.diagnostics().verdict}, {fit.model.nutpie_route.name}"
    else:
        import bambi as bmb

        import hierarchical as hier
        from hierarchical.bambi_interop import bambi_priors

        same_priors = bambi_priors(hier.Model(ours, data, family=family))
        model = bmb.Model(theirs, data, family=family, center_predictors=False,
                          priors=same_priors)
        method = "pymc" if contender == "bambi" else "nutpie"
        idata = model.fit(random_seed=seed, progressbar=False, inference_method=method, **SAMPLING)
        seconds = time.perf_counter() - start
        params = summarise_bambi(idata, model)
        verdict = ""
    ess = min(v[2] for v in params.values())
    return {"case": case, "contender": contender, "seconds": seconds, "min_ess_bulk": ess,
            "ess_per_s": ess / seconds, "params": params, "verdict": verdict}


def run_one(case: str, contender: str, caches: Path, seed: int) -> dict:
    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={caches / 'pytensor'}",
               NUMBA_CACHE_DIR=str(caches / "numba"))
    out = subprocess.run([sys.executable, __file__, "--worker", case, contender, str(seed)],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"case": case, "contender": contender, "error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def agreement(ours: dict, theirs: dict) -> str:
    shared = [k for k in ours if k in theirs]
    bad = [k for k in shared
           if abs(ours[k][0] - theirs[k][0]) > 4 * (ours[k][1] ** 2 + theirs[k][1] ** 2) ** 0.5]
    return f"{len(shared) - len(bad)}/{len(shared)} agree" + (f" (differ: {bad})" if bad else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--contenders", nargs="*", default=list(CONTENDERS))
    parser.add_argument("--cold", action="store_true", help="also time each fit with empty caches")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results.json")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        case, contender, seed = args.worker
        print(json.dumps(worker(case, contender, int(seed))))
        return
    results = []
    header = f"{'case':24} {'contender':14} {'cold s':>8} {'warm s':>8} {'min ESS':>8} {'ESS/s':>8} {'ratio':>7}  check"
    print(header, flush=True)
    for case in args.cases:
        rows = {}
        for contender in args.contenders:
            if contender != "hierarchical" and CASES[case][2] is None:
                continue
            with tempfile.TemporaryDirectory() as caches:
                cold = run_one(case, contender, Path(caches), args.seed) if args.cold else None
                warm = run_one(case, contender, Path(caches), args.seed)
                if not args.cold:  # first run filled the caches: time a second one
                    warm = run_one(case, contender, Path(caches), args.seed)
            if "error" in warm:
                print(f"{case:24} {contender:14} ERROR {warm['error'][-300:]}", flush=True)
                continue
            warm["cold_seconds"] = cold["seconds"] if cold and "seconds" in cold else None
            rows[contender] = warm
            results.append(warm)
        ours = rows.get("hierarchical")
        for contender, row in rows.items():
            ratio = (ours["ess_per_s"] / row["ess_per_s"]) if ours and contender != "hierarchical" else None
            check = agreement(ours["params"], row["params"]) if ours and contender != "hierarchical" else row.get("verdict", "")
            cold_s = f"{row['cold_seconds']:8.1f}" if row.get("cold_seconds") else f"{'-':>8}"
            ratio_s = f"{ratio:7.2f}" if ratio else f"{'':>7}"
            print(f"{case:24} {contender:14} {cold_s} {row['seconds']:8.1f} {row['min_ess_bulk']:8.0f} "
                  f"{row['ess_per_s']:8.1f} {ratio_s}  {check}", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"\nratio = our ESS/s divided by the contender's; wrote {args.out}")


if __name__ == "__main__":
    main()
