"""Cross-validation by refitting: K-fold, leave-group-out, and exact LOO where PSIS fails.

**How a fold is refitted.** A fold is the model with its held-out rows weighted 0 (frequency
weights; see ``design.Design.weights``), not a smaller data set. So every fold has the full
data's structure: the same levels, design matrices, sufficient-statistic layout and priors
(the model's own, data-scaled defaults included), and folds differ only in the values of
the weights, which the graph holds as data. One compiled sampler therefore serves every
fold (``Model.with_data``): one compile per worker. A level all of whose rows are held out
has no data in its fold, so its effects are drawn from the group distribution.

**How held-out rows are predicted.** Row i of a fold scores
``elpd_i = log( 1/(S M) sum_s sum_m p(y_i | theta_s, u_s^(m)) )`` over the fold's S posterior
draws. Effects of levels seen in training are the fold posterior's (M = 1). Effects of
levels with no training rows (every held-out level under ``by=``) are ``new_groups=
"population"`` integrated by Monte Carlo: M = ``draws_per_level`` fresh draws from
N(0, Sigma_s) per posterior draw and level. The score is pointwise, as brms' ``kfold`` and
the loo package compute it: each row integrates its level's effect on its own, so the sum
over a held-out group is not the group's joint predictive density.

Jobs run in this process, on local processes or on a ``dask.distributed.Client``
(``parallel.map_jobs``); each is seeded from ``random_seed`` and its fold number alone, so
every back-end gives the same numbers. Finished folds are kept in a cache keyed by model,
data, folds, seed and sampler settings, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import time
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import ELPDDataLOO, ELPDDataLOOKFold
from scipy.special import logsumexp

from . import __version__, names
from .design import levels_of
from .exceptions import ConvergenceWarning, SpecError
from .linpred import eta_draws, family_draws, new_level_effects
from .model import Model
from .parallel import map_jobs, model_key, plan_workers

DRAWS_PER_LEVEL = 20     # Monte Carlo draws of an unseen level's effect per posterior draw
FIT_SETTINGS = ("draws", "tune", "chains", "sampler", "target_accept")


# --- folds --------------------------------------------------------------------------------

def _balanced(sizes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold of each unit (a row or a level), largest units first, each to the fold with the
    fewest rows so far: folds of nearly equal rows. Ties are broken at random."""
    order = rng.permutation(len(sizes))
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_rows, fold = np.zeros(k), np.empty(len(sizes), dtype=int)
    for unit in order:
        fold[unit] = int(np.argmin(fold_rows))
        fold_rows[fold[unit]] += sizes[unit]
    return fold


def assign_folds(n: int, k: int | None, rng: np.random.Generator, *,
                 groups: np.ndarray | None = None, strata: np.ndarray | None = None) -> np.ndarray:
    """Fold number (0 .. k-1) of every row: random folds of equal size; with ``groups``
    (a label per row) whole levels per fold, k=None giving one level per fold; with
    ``strata`` every stratum spread evenly over the folds."""
    if groups is not None:
        levels, codes = np.unique(groups, return_inverse=True)
        k = len(levels) if k is None else k
        if k > len(levels):
            raise SpecError(f"k={k} folds need at least {k} levels, but there are {len(levels)}")
        return _balanced(np.bincount(codes).astype(float), k, rng)[codes]
    if strata is not None:
        fold = np.empty(n, dtype=int)
        start = 0
        for stratum in np.unique(strata):
            rows = rng.permutation(np.flatnonzero(strata == stratum))
            fold[rows] = (start + np.arange(len(rows))) % k
            start = (start + len(rows)) % k
        return fold
    return rng.permutation(np.arange(n) % k)


def _check_k(k, n: int, by) -> None:
    if k is None and by is not None:
        return
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or not 2 <= k <= n:
        raise SpecError(f"k must be an integer from 2 to the number of rows ({n}), but got {k!r}"
                        + ("" if by is None else "; k=None gives one fold per level of by"))


def _labels(model: Model, column: str, role: str) -> np.ndarray:
    """Row labels of a grouping factor of the model (``a:b`` included) or of a data column."""
    codes, levels = levels_of(model.design, column, role)
    return np.asarray(levels, dtype=object)[codes]


# --- one fold, in a worker ----------------------------------------------------------------

@dataclass(frozen=True)
class _Job:
    """One refit (picklable): the model with ``weights`` as its held-out mask."""

    key: str
    spec: object
    data: pd.DataFrame             # the model's data, the same object for every job
    weights: np.ndarray            # per row: 0 held out, else the row's own weight
    options: dict
    fold: int
    test: np.ndarray
    seed: int
    fit_kwargs: dict
    draws_per_level: int

    def frame(self) -> pd.DataFrame:
        return self.data.assign(**{names.CV_WEIGHT: self.weights})


@dataclass
class FoldResult:
    fold: int
    test: np.ndarray
    elpd_i: np.ndarray | None
    mean_i: np.ndarray | None = None
    seconds: float = 0.0
    compiled: bool = False
    divergences: int = 0
    max_r_hat: float = float("nan")
    min_ess_bulk: float = float("nan")
    converged: bool = False
    levels_held_out: int = 0
    levels_from_prior: int = 0
    worker: str = ""
    error: str | None = None


_BASES: dict[str, Model] = {}     # per worker process: model key -> the compiled fold model
_MAX_BASES = 8                     # the most recently used ones are kept
_LOCK = threading.Lock()


def _fold_model(job: _Job) -> Model:
    with _LOCK:
        base = _BASES.pop(job.key, None)
        if base is None:
            model = base = Model(job.spec, job.frame(), **job.options)
        else:
            model = base.with_data(job.frame())
        _BASES[job.key] = base
        while len(_BASES) > _MAX_BASES:
            _BASES.pop(next(iter(_BASES)))
        return model


def heldout_scores(fit, test: np.ndarray, draws_per_level: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """For the rows ``test`` of a fold fit: log p(y_i | training rows) (module docstring),
    the predictive mean E(y_i | training rows), and the number of levels that had no
    training rows (pooled factors: drawn as new groups; unpooled: from their prior)."""
    design, post = fit.model.design, fit.posterior
    rows = design.rows(test)
    train = np.ones(design.n) if design.weights is None else design.weights
    groups = [(g.name, g.codes[test], g.Z[test]) for g in design.groups]
    unseen, from_prior = {}, 0
    for g in design.groups:
        seen = np.bincount(g.codes, weights=train, minlength=len(g.levels)) > 0
        held = np.unique(g.codes[test])
        held = held[~seen[held]]
        if not g.term.pooled:   # no group distribution: their draws are the coefficients' prior
            from_prior += len(held)
        elif len(held):
            unseen[g.name] = held
    family, extra = design.spec.family_object, family_draws(post, design)
    passes = draws_per_level if unseen else 1
    total, mean = None, 0.0
    for _ in range(passes):
        effects = {}
        for name, held in unseen.items():
            u = post[names.effect(name)].transpose("chain", "draw", name, names.term_dim(name)).values.copy()
            u[:, :, held] = new_level_effects(post, name, u.shape[-1], len(held), rng)
            effects[name] = u
        eta = eta_draws(post, rows.X, groups, rows.offset, effects)
        ll = family.log_likelihood(rows.y, eta, extra, rows)
        part = logsumexp(ll.reshape(-1, len(test)), axis=0)
        total = part if total is None else np.logaddexp(total, part)
        mean = mean + family.mean(eta, extra).reshape(-1, len(test)).mean(axis=0) / passes
    samples = post.sizes["chain"] * post.sizes["draw"] * passes
    return total - np.log(samples), mean, (sum(len(v) for v in unseen.values()), from_prior)


def _run(job: _Job) -> FoldResult:
    """Refit one fold and score its held-out rows; failures are returned, not raised."""
    worker = f"{os.uname().nodename}:{os.getpid()}"
    start = time.perf_counter()
    try:
        model = _fold_model(job)
        compiled = not model.is_compiled
        fit = model.fit(random_seed=job.seed, progressbar=False, warn=False, **job.fit_kwargs)
        rng = np.random.default_rng([job.seed, 7])
        elpd_i, mean_i, held = heldout_scores(fit, job.test, job.draws_per_level, rng)
        checks = fit.diagnostics()
        return FoldResult(job.fold, job.test, elpd_i, mean_i, time.perf_counter() - start, compiled,
                          checks.divergences, float(checks.table["r_hat"].max()),
                          float(checks.table["ess_bulk"].min()), checks.passed, *held, worker)
    except Exception as exc:          # reported per fold in the result, never dropped
        return FoldResult(job.fold, job.test, None, seconds=time.perf_counter() - start,
                          worker=worker, error=f"{type(exc).__name__}: {exc}")


# --- running folds: cache, back-ends, progress ------------------------------------------

def cache_root() -> Path:
    """``$HIERARCHICAL_CACHE`` or ``$XDG_CACHE_HOME/hierarchical`` (``~/.cache``), + ``/cv``."""
    root = os.environ.get("HIERARCHICAL_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hierarchical"
    return Path(root) / "cv"


def _cache_dir(cache, key: str) -> Path | None:
    if cache is False or cache is None:
        return None
    root = cache_root() if cache is True else Path(cache)
    return root / hashlib.sha1(key.encode()).hexdigest()[:20]


def _run_all(jobs: list[_Job], cache_dir: Path | None, *, workers, client, progressbar: bool,
             desc: str) -> list[FoldResult]:
    done = {}
    if cache_dir is not None:
        for job in jobs:
            path = cache_dir / f"{job.fold}.pkl"
            if path.exists():
                done[job.fold] = pickle.loads(path.read_bytes())
    todo = [job for job in jobs if job.fold not in done]
    if done and progressbar:
        print(f"{desc}: {len(done)} of {len(jobs)} refits read from the cache {cache_dir}")
    for result in map_jobs(_run, todo, workers=workers, client=client,
                           progressbar=progressbar, desc=desc):
        done[result.fold] = result
        if cache_dir is not None and result.error is None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cache_dir / f"{result.fold}.tmp"
            tmp.write_bytes(pickle.dumps(result))
            tmp.replace(cache_dir / f"{result.fold}.pkl")
    return [done[job.fold] for job in jobs]


def _base_seed(fit, random_seed: int | None) -> int:
    """The seed refits derive theirs from: the one given, else the fit's own (else 0)."""
    seed = fit.settings.get("random_seed") if random_seed is None else random_seed
    return 0 if seed is None else int(seed)


def _seed(random_seed: int, kind: int, index: int) -> int:
    return int(np.random.SeedSequence([random_seed, kind, index]).generate_state(1)[0])


def _jobs(fit, tests: list[np.ndarray], *, kind: int, random_seed: int, draws_per_level: int,
          cores_per_fit: int, labels: list[int] | None = None) -> tuple[list[_Job], str]:
    """One job per held-out set, labelled (and seeded) by ``labels`` (default 0, 1, ...):
    the model with a weight column that is 0 on the held-out rows."""
    spec, data, options = fit.model.construction()
    base = data[spec.weights].to_numpy(float) if spec.weights else np.ones(len(data))
    spec = replace(spec, weights=names.CV_WEIGHT)
    fit_kwargs = {k: fit.settings[k] for k in FIT_SETTINGS if fit.settings.get(k) is not None}
    fit_kwargs["cores"] = cores_per_fit
    key = f"{model_key(fit.model)}|{options}|{fit_kwargs | {'cores': None}}|{draws_per_level}"
    jobs = []
    for label, test in zip(range(len(tests)) if labels is None else labels, tests):
        weights = base.copy()
        weights[test] = 0.0
        jobs.append(_Job(key, spec, data, weights, options, int(label), test,
                         _seed(random_seed, kind, int(label)), fit_kwargs, draws_per_level))
    cache_key = key + f"|{kind}|{random_seed}|{__version__}|" + hashlib.sha1(
        b"".join(t.astype(np.int64).tobytes() + b"|" for t in tests)).hexdigest()
    return jobs, cache_key


def _user_weights(fit) -> np.ndarray:
    w = fit.model.design.weights
    return np.ones(fit.model.design.n) if w is None else w


FOLD_COLUMNS = ["rows", "levels_held_out", "levels_from_prior", "elpd", "seconds", "compiled",
                "divergences", "max_r_hat", "min_ess_bulk", "converged", "worker", "error"]


def _fold_table(results: list[FoldResult]) -> pd.DataFrame:
    if not results:
        return pd.DataFrame(columns=FOLD_COLUMNS, index=pd.Index([], name="fold"))
    table = pd.DataFrame([{
        "fold": r.fold, "rows": len(r.test), "levels_held_out": r.levels_held_out,
        "levels_from_prior": r.levels_from_prior,
        "elpd": float(np.sum(r.elpd_i)) if r.elpd_i is not None else np.nan,
        "seconds": r.seconds, "compiled": r.compiled, "divergences": r.divergences,
        "max_r_hat": r.max_r_hat, "min_ess_bulk": r.min_ess_bulk, "converged": r.converged,
        "worker": r.worker, "error": r.error} for r in results]).set_index("fold")
    return table


def _report(table: pd.DataFrame, what: str) -> None:
    failed = table.index[table["error"].notna()].tolist()
    if failed:
        warnings.warn(f"{len(failed)} {what}(s) failed: {failed} (first error: "
                      f"{table.loc[failed[0], 'error']}); their rows' elpd is NaN, so the total is "
                      "too. Run again to retry them: finished ones are read from the cache.",
                      RuntimeWarning, stacklevel=3)
    bad = table.index[table["error"].isna() & ~table["converged"].astype(bool)].tolist()
    if bad:
        warnings.warn(f"{len(bad)} {what}(s) did not pass the convergence checks: {bad}; see the "
                      "result's fold_table (divergences, max_r_hat, min_ess_bulk)",
                      ConvergenceWarning, stacklevel=3)


# --- results ------------------------------------------------------------------------------

@dataclass(kw_only=True, repr=False)
class KFold(ELPDDataLOOKFold):
    """K-fold or leave-group-out ELPD, accepted by ``arviz.compare``. ``folds``: the fold
    of every row; ``fold_table``: per fold its rows, held-out levels, elpd, time, whether it
    compiled, its convergence checks, worker and error (None when it ran); ``prediction``:
    each row's predictive mean from the fold that held it out (``rmse`` compares it with y)."""

    folds: xr.DataArray = None
    prediction: xr.DataArray = None
    rmse: float = float("nan")
    fold_table: pd.DataFrame = field(default=None)
    by: str | None = None

    def _header(self):
        how = f"leave-group-out by {self.by!r}" if self.by else "random folds"
        failed = int(self.fold_table["error"].notna().sum())
        return (f"Computed from {self.n_folds}-fold cross validation ({how}), refitting with "
                f"{self.n_samples} draws per fold" + (f"; {failed} fold(s) FAILED" if failed else ""))


def _lpd(fit) -> np.ndarray:
    ll = fit.idata.log_likelihood[names.observed_name(fit.model.design)].values
    return logsumexp(ll.reshape(-1, ll.shape[-1]), axis=0) - np.log(ll.shape[0] * ll.shape[1])


def kfold(fit, k: int | None = 10, *, by: str | None = None, stratify: str | None = None,
          folds=None, random_seed: int | None = None, workers: int | None = None, client=None,
          cores_per_fit: int | None = None, draws_per_level: int = DRAWS_PER_LEVEL,
          cache=True, progressbar: bool = True) -> KFold:
    """K-fold cross-validation of ``fit``'s model (see the module docstring); ``Fit.kfold``.
    ``folds`` gives the assignment itself (a label per row), for instance another fit's
    ``.folds`` so that models are compared on the same folds; ``by`` then only names it."""
    model, n = fit.model, fit.model.design.n
    seed = _base_seed(fit, random_seed)
    if folds is not None:
        folds = np.asarray(folds)
        if folds.shape != (n,):
            raise SpecError(f"folds must hold one fold label per row ({n}), but has shape "
                            f"{folds.shape}")
        folds = np.unique(folds, return_inverse=True)[1]
    else:
        if by is not None and stratify is not None:
            raise SpecError("give by= (grouped folds) or stratify=, not both")
        _check_k(k, n, by)
        groups = _labels(model, by, "by") if by is not None else None
        strata = _labels(model, stratify, "stratify") if stratify is not None else None
        folds = assign_folds(n, k, np.random.default_rng([seed, 11]), groups=groups,
                             strata=strata)
    k = int(folds.max()) + 1
    tests = [np.flatnonzero(folds == f) for f in range(k)]
    n_workers, cores = plan_workers(k, workers, client, cores_per_fit)
    jobs, key = _jobs(fit, tests, kind=1, random_seed=seed, draws_per_level=draws_per_level,
                      cores_per_fit=cores)
    results = _run_all(jobs, _cache_dir(cache, key), workers=n_workers, client=client,
                       progressbar=progressbar, desc=f"{k}-fold CV")
    table = _fold_table(results)
    _report(table, "fold")
    elpd_i, mean_i = np.full(n, np.nan), np.full(n, np.nan)
    for r in results:
        if r.elpd_i is not None:
            elpd_i[r.test], mean_i[r.test] = r.elpd_i, r.mean_i
    elpd_i *= _user_weights(fit)
    p_i = _lpd(fit) - elpd_i
    obs = {names.OBS_DIM: np.arange(n)}
    return KFold(elpd=float(elpd_i.sum()), se=float(np.sqrt(n * np.var(elpd_i, ddof=1))),
                 p=float(p_i.sum()), n_samples=fit.posterior.sizes["chain"] * fit.posterior.sizes["draw"],
                 n_data_points=n, scale="log", warning=bool(table["error"].notna().any()),
                 good_k=None, elpd_i=xr.DataArray(elpd_i, dims=names.OBS_DIM, coords=obs),
                 n_folds=k, p_kfold_i=xr.DataArray(p_i, dims=names.OBS_DIM, coords=obs),
                 folds=xr.DataArray(folds, dims=names.OBS_DIM, coords=obs), fold_table=table,
                 by=by, prediction=xr.DataArray(mean_i, dims=names.OBS_DIM, coords=obs),
                 rmse=float(np.sqrt(np.mean((model.design.y - mean_i) ** 2))))


@dataclass(kw_only=True, repr=False)
class Reloo(ELPDDataLOO):
    """PSIS-LOO with exact refits; ``refits`` has one row per refitted observation (its
    index as the label), laid out as `KFold.fold_table`."""

    refits: pd.DataFrame = None


def reloo(fit, loo: ELPDDataLOO, *, k_threshold: float = 0.7, random_seed: int | None = None,
          workers: int | None = None, client=None, cores_per_fit: int | None = None,
          cache=True, progressbar: bool = True) -> "Reloo":
    """PSIS-LOO with every observation whose Pareto k exceeds ``k_threshold`` refitted
    without it and scored exactly, as arviz's ``reloo`` does (its k is then 0)."""
    bad = np.flatnonzero(loo.pareto_k.values > k_threshold)
    copies = {f.name: getattr(loo, f.name) for f in fields(loo)}
    for name in ("elpd_i", "pareto_k", "log_weights"):
        if copies[name] is not None:
            copies[name] = copies[name].copy()
    lpd = _lpd(fit)
    copies["p_loo_i"] = xr.DataArray(lpd - loo.elpd_i.values, dims=loo.elpd_i.dims,
                                     coords=loo.elpd_i.coords)
    out = Reloo(**copies, refits=_fold_table([]))
    if len(bad) == 0:
        return out
    seed = _base_seed(fit, random_seed)
    n_workers, cores = plan_workers(len(bad), workers, client, cores_per_fit)
    jobs, key = _jobs(fit, [np.array([i]) for i in bad], kind=2, random_seed=seed,
                      draws_per_level=DRAWS_PER_LEVEL, cores_per_fit=cores, labels=list(bad))
    results = _run_all(jobs, _cache_dir(cache, key), workers=n_workers, client=client,
                       progressbar=progressbar, desc="reloo")
    table = _fold_table(results)
    _report(table, "refit")
    weights = _user_weights(fit)
    for r in results:
        i = r.fold
        value = np.nan if r.elpd_i is None else float(r.elpd_i[0]) * weights[i]
        out.elpd_i.values[i] = value
        out.pareto_k.values[i] = 0.0 if r.error is None else loo.pareto_k.values[i]
        out.p_loo_i.values[i] = lpd[i] - value
        if r.error is None and out.log_weights is not None:     # no longer importance-weighted
            out.log_weights[{names.OBS_DIM: i}] = np.nan
    n = len(out.elpd_i)
    out.elpd = float(out.elpd_i.values.sum())
    out.se = float(np.sqrt(n * np.var(out.elpd_i.values, ddof=1)))
    out.p = float(out.p_loo_i.values.sum())
    out.warning = bool(np.any(out.pareto_k.values > out.good_k))
    out.refits = table
    return out

