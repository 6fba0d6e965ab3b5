"""Simulation-based calibration (Talts et al. 2018): does the sampler, on this graph,
recover the parameters the data were simulated from?

Draw parameters from the prior, simulate a response, fit it, and take the rank of each true
value among L posterior draws. When graph, priors and sampler agree with the simulator, the
rank is uniform on 0..L whatever the model. A mis-specified graph, a wrong transform or a
sampler that misses part of the posterior bends the histogram: a slope for bias, a smile
for posteriors too narrow, a hump for posteriors too wide.

An `SBCCase` is a model on a fixed design plus a simulator written independently of the
graph (numpy, from the same priors). `run` refits one compiled model to every simulated
response (`Model.with_data`), on local processes or a Dask cluster; `rank_table` tests
each parameter's ranks for uniformity; `plots.rank_histograms` draws them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from .parallel import map_jobs
from .summary import summarize

RANK_DRAWS = 99          # L: ranks take L + 1 = 100 values, so 20 bins of 5
BINS = 20
FAMILY_ALPHA = 0.01      # Bonferroni-corrected over every parameter tested together


@dataclass(frozen=True)
class SBCCase:
    """A model to calibrate.

    ``model()`` returns the `Model` on its base design, with explicit priors (the fit's
    priors must be the simulator's). ``simulate(rng, data)`` draws parameters from those
    priors and a response on ``data`` (the base design), returning ``(truth, data)``:
    truth maps posterior labels such as ``"beta[x]"``, ``"g_sd[Intercept]"`` or
    ``"g_effect[g00, Intercept]"`` to the simulated values. Both are module-level functions,
    so that they travel to worker processes.
    """

    name: str
    model: Callable
    simulate: Callable


@dataclass(frozen=True)
class _Replicate:
    case: SBCCase
    rep: int
    seed: int
    fit_kwargs: dict = field(default_factory=dict)
    rank_draws: int = RANK_DRAWS


_BASES: dict[SBCCase, object] = {}  # per worker process: case -> compiled base model


def _base_model(case: SBCCase, fit_kwargs: dict):
    """The case's model, compiled once per worker process; (model, compile seconds)."""
    if case in _BASES:
        return _BASES[case], 0.0
    start = time.perf_counter()
    model = case.model()
    model.compiled_nutpie(chains=fit_kwargs.get("chains", 4),
                          iterations=fit_kwargs.get("draws", 1000) + fit_kwargs.get("tune", 1000))
    _BASES[case] = model
    return model, time.perf_counter() - start


def labelled_draws(posterior: xr.Dataset, labels) -> dict[str, np.ndarray]:
    """(chain, draw) arrays of the requested labels, ``name[coord, coord]`` as in summaries."""
    out = {}
    for name in {label.split("[")[0] for label in labels}:
        array = posterior[name]
        item_dims = [d for d in array.dims if d not in ("chain", "draw")]
        if not item_dims:
            out[name] = array.transpose("chain", "draw").values
            continue
        stacked = array.stack(item=item_dims)
        for i, coords in enumerate(stacked["item"].values):
            coords = coords if isinstance(coords, tuple) else (coords,)
            label = f"{name}[{', '.join(map(str, coords))}]"
            if label in labels:
                out[label] = stacked.isel(item=i).transpose("chain", "draw").values
    missing = set(labels) - set(out)
    if missing:
        raise KeyError(f"no posterior draws for {sorted(missing)}; "
                       f"the posterior has {sorted(posterior.data_vars)}")
    return out


def rank_of(draws: np.ndarray, truth: float, rank_draws: int = RANK_DRAWS) -> int:
    """Rank of ``truth`` among ``rank_draws`` draws spread evenly over all chains (thinning
    keeps neighbouring draws, which are correlated, from making the ranks lumpy)."""
    flat = np.asarray(draws).reshape(-1)
    keep = np.linspace(0, flat.size - 1, rank_draws).round().astype(int)
    return int((flat[keep] < truth).sum())


def _replicate(job: _Replicate) -> list[dict]:
    """Simulate, refit the compiled model and rank every true value (runs in a worker)."""
    base, compile_seconds = _base_model(job.case, job.fit_kwargs)
    rng = np.random.default_rng([job.seed, job.rep])
    truth, data = job.case.simulate(rng, base.data)
    model = base.with_data(data)
    if not model.is_compiled:
        raise RuntimeError(f"SBC case {job.case.name!r}: the simulated data changed more than "
                           "the response, so the compiled model cannot be reused")
    fit = model.fit(random_seed=job.seed + job.rep, progressbar=False, warn=False,
                    **job.fit_kwargs)
    draws = labelled_draws(fit.posterior, truth)
    labels = list(truth)
    stacked = xr.DataArray(np.stack([draws[k] for k in labels], axis=-1),
                           dims=("chain", "draw", "item"))
    summary = summarize(stacked, pd.Index(labels))
    divergences = int(fit.tree.sample_stats["diverging"].sum())
    return [{"case": job.case.name, "rep": job.rep, "parameter": label,
             "truth": float(truth[label]), "rank": rank_of(draws[label], truth[label],
                                                           job.rank_draws),
             "ess_bulk": float(summary.loc[label, "ess_bulk"]),
             "r_hat": float(summary.loc[label, "r_hat"]), "divergences": divergences,
             "seconds": fit.seconds, "compile_seconds": compile_seconds,
             "worker": f"{os.uname().nodename}:{os.getpid()}"}
            for label in labels]


def run(cases: Sequence[SBCCase], reps: int, *, draws: int = 500, tune: int = 500,
        chains: int = 2, workers: int = 1, client=None, random_seed: int = 2026,
        rank_draws: int = RANK_DRAWS, progressbar: bool = True) -> pd.DataFrame:
    """Ranks of every true value in ``reps`` simulations of each case: one row per
    (case, rep, parameter) with the rank, the fit's ESS, r_hat and divergences.

    Replicate ``r`` of a case uses ``np.random.default_rng([random_seed, r])``, so the same
    call gives the same table on processes or on Dask. Each worker compiles each case once.
    """
    if draws * chains < rank_draws:
        raise ValueError(f"{chains} chains x {draws} draws is fewer than the {rank_draws} "
                         "draws each rank is taken over")
    fit_kwargs = dict(draws=draws, tune=tune, chains=chains, cores=1)
    jobs = [_Replicate(case, rep, random_seed, fit_kwargs, rank_draws)
            for case in cases for rep in range(reps)]
    start = time.perf_counter()
    rows = [row for rows in map_jobs(_replicate, jobs, workers=workers, client=client,
                                     progressbar=progressbar, desc="SBC")
            for row in rows]
    ranks = pd.DataFrame(rows).sort_values(["case", "rep"], kind="stable")
    ranks.attrs.update(rank_draws=rank_draws, wall_seconds=time.perf_counter() - start,
                       draws=draws, tune=tune, chains=chains)
    return ranks.reset_index(drop=True)


def bin_counts(ranks: np.ndarray, rank_draws: int = RANK_DRAWS, bins: int = BINS) -> np.ndarray:
    """Counts of ranks (0..L) in ``bins`` equal bins; L + 1 must be a multiple of bins."""
    if (rank_draws + 1) % bins:
        raise ValueError(f"{rank_draws + 1} rank values do not split into {bins} equal bins")
    return np.bincount(np.asarray(ranks) * bins // (rank_draws + 1), minlength=bins)


def uniformity_p(ranks: np.ndarray, rank_draws: int = RANK_DRAWS, bins: int = BINS) -> float:
    """Chi-square test of equal bin counts (Talts et al.'s histogram, as a test)."""
    return float(stats.chisquare(bin_counts(ranks, rank_draws, bins)).pvalue)


def rank_table(ranks: pd.DataFrame, bins: int = BINS, alpha: float = FAMILY_ALPHA
               ) -> pd.DataFrame:
    """One row per (case, parameter): chi-square p-value of uniform ranks, the mean and SD
    of the normalised rank (0.5 and 0.289 when calibrated; a mean off 0.5 is bias, a small
    SD a posterior too wide, a large one too narrow), median ESS and divergent share.

    ``uniform`` is p >= alpha / (number of tests): Bonferroni over the whole table.
    """
    rank_draws = ranks.attrs.get("rank_draws", RANK_DRAWS)
    rows = []
    for (case, parameter), group in ranks.groupby(["case", "parameter"], sort=False):
        u = (group["rank"].to_numpy() + 0.5) / (rank_draws + 1)
        per_rep = group.drop_duplicates("rep")
        rows.append({"case": case, "parameter": parameter, "reps": len(group),
                     "p_uniform": uniformity_p(group["rank"].to_numpy(), rank_draws, bins),
                     "mean_rank": u.mean(), "sd_rank": u.std(ddof=1),
                     "median_ess": group["ess_bulk"].median(),
                     "divergent_reps": float((per_rep["divergences"] > 0).mean())})
    table = pd.DataFrame(rows)
    table["uniform"] = table["p_uniform"] >= alpha / max(len(table), 1)
    return table
