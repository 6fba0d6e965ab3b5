"""Extreme data that must still fit: time, peak memory and what the fit says, per case.

    python benchmarks/extremes.py                  # every case, each in a fresh process
    python benchmarks/extremes.py --cases units_1e6 units_1e-6

Each case runs in its own process so that its peak resident memory (``ru_maxrss``) is its
own; times are wall seconds for model building plus the default fit (4 chains x 1000 draws),
with warm compile caches. ``tests/test_extremes.py`` asserts the same cases' numbers.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd

import hierarchical as hier
from hierarchical.exceptions import ConvergenceWarning


def _levels(n_groups: int, rows: int) -> np.ndarray:
    return np.repeat([f"g{j:05d}" for j in range(n_groups)], rows)


def one_row_per_group(n_groups: int = 100) -> pd.DataFrame:
    """Every group seen once: sigma and the group SD are told apart only by the priors."""
    rng = np.random.default_rng(10)
    g = _levels(n_groups, 1)
    return pd.DataFrame({"y": 1.0 + rng.normal(0, 0.7, n_groups) + rng.normal(0, 0.5, n_groups),
                         "g": g})


def poisson_zero_groups() -> pd.DataFrame:
    """30 groups of 10 counts at a low rate; the first 5 groups have only zeros."""
    rng = np.random.default_rng(11)
    g = _levels(30, 10)
    rate = np.exp(0.3 + rng.normal(0, 0.6, 30))[np.arange(300) // 10]
    y = rng.poisson(rate)
    y[:50] = 0
    return pd.DataFrame({"y": y, "x": rng.normal(size=300), "g": g})


def logit_separation() -> pd.DataFrame:
    """30 groups of 15 Bernoulli outcomes; 3 groups all 1 and 3 groups all 0."""
    rng = np.random.default_rng(12)
    g = _levels(30, 15)
    p = 1 / (1 + np.exp(-(rng.normal(0, 0.8, 30)[np.arange(450) // 15])))
    y = rng.binomial(1, p)
    y[:45], y[45:90] = 1, 0
    return pd.DataFrame({"y": y, "x": rng.normal(size=450), "g": g})


def many_groups(n_groups: int = 10_000, rows: int = 5, family: str = "gaussian") -> pd.DataFrame:
    rng = np.random.default_rng(13)
    g = _levels(n_groups, rows)
    x = rng.normal(size=g.size)
    eta = 0.5 + 0.3 * x + rng.normal(0, 0.5, n_groups)[np.arange(g.size) // rows]
    y = rng.poisson(np.exp(eta)) if family == "poisson" else eta + rng.normal(0, 1, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def radon_scaled(factor: float) -> pd.DataFrame:
    radon = hier.datasets.load("radon")
    return radon.assign(log_radon=radon["log_radon"] * factor)


CASES = {
    "one_row_per_group": lambda: hier.Model("y ~ 1 + (1 | g)", one_row_per_group()),
    "poisson_zero_groups": lambda: hier.Model("y ~ x + (1 | g)", poisson_zero_groups(),
                                              family="poisson"),
    "logit_separation": lambda: hier.Model("y ~ x + (1 | g)", logit_separation(),
                                           family="bernoulli"),
    "gaussian_10000_groups": lambda: hier.Model("y ~ x + (1 | g)", many_groups()),
    "poisson_10000_groups": lambda: hier.Model("y ~ x + (1 | g)", many_groups(family="poisson"),
                                               family="poisson"),
    "units_1": lambda: hier.Model("log_radon ~ floor + (1 | county)", radon_scaled(1.0)),
    "units_1e6": lambda: hier.Model("log_radon ~ floor + (1 | county)", radon_scaled(1e6)),
    "units_1e-6": lambda: hier.Model("log_radon ~ floor + (1 | county)", radon_scaled(1e-6)),
}


def run_case(name: str, **fit_kwargs) -> dict:
    """Build and fit one case; the numbers the table shows and the tests assert."""
    start = time.perf_counter()
    model = CASES[name]()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        fit = model.fit(random_seed=1, progressbar=False, **fit_kwargs)
    seconds = time.perf_counter() - start
    fixed, variance = fit.fixed_effects(), fit.variance_components()
    diagnostics = fit.diagnostics()
    return {"case": name, "rows": model.design.n,
            "groups": len(model.design.groups[0].levels),
            "values_per_draw": _values_per_draw(fit),
            "seconds": round(seconds, 1), "divergences": diagnostics.divergences,
            "verdict": diagnostics.verdict,
            "warned": any(issubclass(w.category, ConvergenceWarning) for w in caught),
            "min_ess_bulk": float(min(fixed["ess_bulk"].min(), variance["ess_bulk"].min())),
            "fixed": fixed["mean"].to_dict(), "sd": {_label(k): v for k, v in
                                                     variance["mean"].items()}}


def _label(key) -> str:
    return " ".join(map(str, key)) if isinstance(key, tuple) else str(key)


def _values_per_draw(fit) -> int:
    """Posterior values stored per draw: free parameters, raw z and deterministics alike."""
    return int(sum(np.prod([fit.posterior.sizes[d] for d in v.dims if d not in ("chain", "draw")])
                   for v in fit.posterior.data_vars.values()))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--one", choices=list(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:                                 # child process: one case, JSON on stdout
        result = run_case(args.one)
        print(json.dumps({**result, "peak_mb": round(_peak_mb())}, default=float))
        return 0
    print("| case | rows | groups | posterior values per draw | time s | peak MB | divergences | min ESS | "
          "verdict | estimates |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.cases:
        child = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True,
                               text=True, check=True)
        r = json.loads(child.stdout.strip().splitlines()[-1])
        estimates = ", ".join(f"{k} {v:.4g}" for k, v in {**r["fixed"], **r["sd"]}.items())
        print(f"| {name} | {r['rows']} | {r['groups']} | {r['values_per_draw']} | {r['seconds']} | "
              f"{r['peak_mb']} | {r['divergences']} | {r['min_ess_bulk']:.0f} | {r['verdict']} | "
              f"{estimates} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
