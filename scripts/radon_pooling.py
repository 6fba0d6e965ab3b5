"""Radon (Minnesota), random intercepts: complete / no / partial pooling, as in Gelman & Hill.

Prints the LOO comparison beside Gelman & Hill's leave-one-out RMS errors, the Spearman
correlation between county size and shrinkage, the closed-form check of the model-based
shrinkage, pooling factor and ICC, and writes the four pooling figures to ``--out``.

    .venv/bin/python scripts/radon_pooling.py [--out docs] [--draws 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

import hierarchical as hier

GELMAN_HILL = {"complete pooling": 0.84, "no pooling": 0.86, "partial pooling": 0.79}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    model = hier.Model("log_radon ~ floor + (1 | county)", hier.datasets.load("radon"))
    pc = hier.compare_pooling(model, draws=args.draws, random_seed=args.seed, progressbar=False)
    table = pc.table
    compare = pc.compare.assign(gelman_hill_rmse=pd.Series(GELMAN_HILL))
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 140):
        print(compare[["rank", "elpd", "se", "elpd_diff", "dse", "n_high_pareto_k",
                       "rmse_loo", "gelman_hill_rmse"]].to_string())
        rho, p = stats.spearmanr(table["n_obs"], table["shrinkage"])
        print(f"\nSpearman(county size, empirical shrinkage) = {rho:.3f} (p = {p:.2g})")
        post = pc.partial.posterior
        tau2 = post["county_sd"].values[..., 0, None] ** 2
        sigma2 = post["sigma"].values[..., None] ** 2
        n = table["n_obs"].to_numpy()
        closed = (n * tau2 / (sigma2 + n * tau2)).reshape(-1, len(n))
        mcse = closed.std(axis=0) / np.sqrt(closed.shape[0] / 4)
        gap = np.abs(table["lambda"].to_numpy() - closed.mean(axis=0))
        print(f"model-based lambda_j vs closed form over all draws: max |diff| {gap.max():.4f}, "
              f"max |diff| / MCSE {np.max(gap / mcse):.2f}")
        print("\nPooling factors:\n" + pc.pooling_factors.to_string())
        print("\n" + repr(pc.icc))
        print("\nSmallest and largest counties:")
        print(table.sort_values("n_obs").iloc[[0, 1, 2, -3, -2, -1]].to_string())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hier.plots.save(hier.plots.shrinkage(pc), out / "shrinkage_radon.png")
    hier.plots.save(hier.plots.caterpillar(pc.partial), out / "caterpillar_radon.png")
    hier.plots.save(hier.plots.pooling_vs_size(pc), out / "pooling_radon.png")
    hier.plots.save(hier.plots.variance_components(pc.partial), out / "variance_radon.png")
    print(f"\nfigures in {out}/; wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
