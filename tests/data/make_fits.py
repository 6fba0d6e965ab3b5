"""Regenerate the stored posteriors the unit tier reads: ``python tests/data/make_fits.py``.

Real NUTS fits of packaged data, written with ``Fit.save`` (compressed; the log likelihood is
recomputed on load). Unit tests of shrinkage, ICC, power-scaling, plots and reports read them
instead of sampling, so they run in seconds and cannot depend on a trajectory. Rerun this when
a model's graph or a saved fit's format changes; the tests say which file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import hierarchical as hier
from hierarchical import pooling

HERE = Path(__file__).resolve().parent / "fits"
DYESTUFF = "Yield ~ 1 + (1 | Batch)"


def _divergence_free(model, seeds, **kwargs):
    """The first seed whose fit has no divergence (the centred Dyestuff funnel diverges for
    some seeds even at target_accept 0.99; the tests need a valid centred fit)."""
    for seed in seeds:
        fit = model.fit(random_seed=seed, progressbar=False, warn=False, **kwargs)
        if int(fit.idata.sample_stats["diverging"].sum()) == 0:
            return fit
    raise RuntimeError(f"every seed of {list(seeds)} diverged")


def thousand_groups() -> pd.DataFrame:
    rng = np.random.default_rng(12)
    sizes = rng.integers(1, 6, 1000)
    g = np.repeat(np.arange(1000), sizes)
    y = 2.0 + 0.6 * rng.normal(size=1000)[g] + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": rng.normal(size=g.size), "g": [f"site{i}" for i in g]})


def fits() -> dict:
    dyestuff = hier.datasets.load("dyestuff")
    full = dict(progressbar=False, warn=False)
    return {
        "dyestuff_marginalised": lambda: hier.Model(DYESTUFF, dyestuff).fit(random_seed=3, **full),
        "dyestuff_centred": lambda: _divergence_free(
            hier.Model(DYESTUFF, dyestuff, marginalize=False, centered=True), range(4, 20),
            target_accept=0.99),
        "dyestuff_noncentred": lambda: hier.Model(DYESTUFF, dyestuff, marginalize=False,
                                                  centered=False).fit(random_seed=3, **full),
        "radon_intercepts": lambda: hier.Model("log_radon ~ floor + (1 | county)",
                                               hier.datasets.load("radon")).fit(random_seed=3, **full),
        "sleepstudy_slopes": lambda: hier.Model("Reaction ~ Days + (Days | Subject)",
                                                hier.datasets.load("sleepstudy")).fit(random_seed=11, **full),
    }


def comparisons() -> dict:
    few = dict(draws=300, tune=500, chains=2, progressbar=False, warn=False)
    return {
        "sleepstudy_pooling": lambda: hier.compare_pooling(
            hier.Model("Reaction ~ Days + (Days | Subject)", hier.datasets.load("sleepstudy")),
            random_seed=3, **few),
        "thousand_groups_pooling": lambda: hier.compare_pooling(
            hier.Model("y ~ x + (1 | g)", thousand_groups()), random_seed=4,
            **{**few, "draws": 25}),
    }


def main(names: list[str]) -> None:
    HERE.mkdir(exist_ok=True)
    for name, make in fits().items():
        if not names or name in names:
            make().save(HERE / f"{name}.nc")
            print("wrote", name, flush=True)
    for name, make in comparisons().items():
        if not names or name in names:
            comparison = make()
            manifest = {}
            for i, (label, fit) in enumerate(comparison.fits.items()):
                fit.save(HERE / f"{name}.{i}.nc")
                manifest[label] = f"{name}.{i}.nc"
            (HERE / f"{name}.json").write_text(json.dumps(manifest, indent=1))
            print("wrote", name, flush=True)


def load_fit(name: str):
    return hier.load(HERE / f"{name}.nc")


def load_comparison(name: str) -> pooling.PoolingComparison:
    manifest = json.loads((HERE / f"{name}.json").read_text())
    return pooling.from_fits({label: hier.load(HERE / file) for label, file in manifest.items()})


if __name__ == "__main__":
    main(sys.argv[1:])
