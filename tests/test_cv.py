"""Cross-validation: folds, held-out scores, one compiled graph for every fold, the cache,
failed folds, and (integration / slow) real refits against exact answers."""

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import logsumexp

import hierarchical as hier
from hierarchical import cv, names
from hierarchical.exceptions import ConvergenceWarning, SpecError

from .conftest import frame_hash, prior_fit


def simulated(seed: int = 0, levels: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(levels), rng.integers(2, 9, levels))
    frame = pd.DataFrame({"g": g, "x": rng.normal(size=g.size)})
    frame["y"] = 1 + 0.5 * frame["x"] + rng.normal(0, 0.8, levels)[g] + rng.normal(size=g.size)
    frame["c"] = rng.poisson(np.exp(0.3 + 0.4 * frame["x"]))
    frame["s"] = np.where(rng.uniform(size=g.size) < 0.3, "rare", "common")
    return frame


# --- folds --------------------------------------------------------------------------------

def test_random_folds_are_balanced_and_reproducible():
    a = cv.assign_folds(103, 10, np.random.default_rng(1))
    assert sorted(np.bincount(a)) == [10] * 7 + [11] * 3
    assert np.array_equal(a, cv.assign_folds(103, 10, np.random.default_rng(1)))
    assert not np.array_equal(a, cv.assign_folds(103, 10, np.random.default_rng(2)))


def test_grouped_folds_keep_levels_together_and_balance_rows():
    frame = simulated()
    folds = cv.assign_folds(len(frame), 4, np.random.default_rng(0), groups=frame["g"].to_numpy())
    assert (frame.assign(f=folds).groupby("g")["f"].nunique() == 1).all()
    rows = np.bincount(folds)
    assert rows.max() - rows.min() <= frame["g"].value_counts().max()
    one_per_level = cv.assign_folds(len(frame), None, np.random.default_rng(0),
                                    groups=frame["g"].to_numpy())
    assert one_per_level.max() + 1 == frame["g"].nunique()


def test_stratified_folds_spread_every_stratum():
    strata = np.repeat(["a", "b"], [90, 10])
    folds = cv.assign_folds(100, 10, np.random.default_rng(0), strata=strata)
    assert (np.bincount(folds[strata == "b"], minlength=10) == 1).all()
    assert (np.bincount(folds) == 10).all()


def test_bad_cv_arguments_are_named():
    model = hier.Model("y ~ x + (1 | g)", simulated())
    fit = prior_fit(model, draws=4)
    n = model.design.n
    with pytest.raises(SpecError, match=rf"k must be an integer from 2 to the number of rows \({n}\), but got 1"):
        fit.kfold(1)
    with pytest.raises(SpecError, match=r"by='county' is neither a grouping factor.*valid: \['g'"):
        fit.kfold(5, by="county")
    with pytest.raises(SpecError, match=r"k=13 folds need at least 13 levels, but there are 12"):
        fit.kfold(13, by="g")
    with pytest.raises(SpecError, match="not both"):
        fit.kfold(5, by="g", stratify="x")
    with pytest.raises(SpecError, match=r"folds must hold one fold label per row"):
        cv.kfold(fit, folds=np.zeros(3))
    with pytest.raises(SpecError, match=r"cv must be one of \('loo', 'kfold', 'group'\), but got 'lgo'"):
        hier.compare_pooling(model, cv="lgo")


# --- one compiled graph per worker --------------------------------------------------------

@pytest.mark.parametrize("formula, family", [("y ~ x + (1 | g)", "gaussian"),
                                             ("y ~ x + (x | g)", "gaussian"),
                                             ("c ~ x + (1 | g)", "poisson")])
def test_every_fold_has_the_structure_of_the_full_data(formula, family):
    """Held-out rows are weighted 0, so folds differ only in data values (the weights, or
    the marginal statistics): the graph structure a compiled sampler depends on is the
    same for every fold, whole levels held out included."""
    frame = simulated()
    fit = prior_fit(hier.Model(formula, frame, family=family), draws=4)
    folds = cv.assign_folds(len(frame), 3, np.random.default_rng(0), groups=frame["g"].to_numpy())
    jobs, _ = cv._jobs(fit, [np.flatnonzero(folds == f) for f in range(3)], kind=1,
                       random_seed=1, draws_per_level=5, cores_per_fit=1)
    models = [hier.Model(job.spec, job.frame(), **job.options) for job in jobs]
    assert models[0].marginalized == (family == "gaussian")
    assert len({m.graph_structure() for m in models}) == 1
    assert all(m.design.weights[job.test].sum() == 0 for m, job in zip(models, jobs))
    assert names.CV_WEIGHT not in frame.columns           # the caller's frame is untouched


# --- held-out scores ----------------------------------------------------------------------

def test_heldout_scores_against_hand_computation():
    """Seen levels: log of the mean density over draws. A level with no training rows: the
    Monte Carlo integral over new effects against the exact one, N(y | x beta, sigma^2 +
    tau^2) per draw, within Monte Carlo error."""
    frame = simulated()
    test = np.flatnonzero((frame["g"] == 3) | (frame.index % 7 == 0))
    weights = np.ones(len(frame))
    weights[test] = 0.0
    model = hier.Model("y ~ x + (1 | g)", frame.assign(w=weights), weights="w", marginalize=False)
    fit = prior_fit(model, draws=200, seed=3)
    elpd, mean, (held, from_prior) = cv.heldout_scores(fit, test, 400, np.random.default_rng(0))
    assert (held, from_prior) == (1, 0)
    post = fit.posterior
    beta = post["beta"].values[0]                                  # (draws, 2)
    sigma, tau = post["sigma"].values[0], post["g_sd"].values[0, :, 0]
    u = post["g_effect"].values[0, :, :, 0]
    X, codes = model.design.X[test], model.design.groups[0].codes[test]
    for i, (x, j, y) in enumerate(zip(X, codes, model.design.y[test])):
        if j == 3:     # unseen: integrate u exactly
            logp = stats.norm.logpdf(y, beta @ x, np.sqrt(sigma ** 2 + tau ** 2))
            assert elpd[i] == pytest.approx(logsumexp(logp) - np.log(len(logp)), abs=0.03)
            assert mean[i] == pytest.approx(np.mean(beta @ x), abs=3 * np.std(tau) / 20 + 0.05)
        else:
            logp = stats.norm.logpdf(y, beta @ x + u[:, j], sigma)
            assert elpd[i] == pytest.approx(logsumexp(logp) - np.log(len(logp)), rel=1e-10)
            assert mean[i] == pytest.approx(np.mean(beta @ x + u[:, j]), rel=1e-10)


# --- running folds: results, failures, the cache ------------------------------------------

def _fake_run(job):
    """A refit that returns the held-out rows' y as elpd (no sampling)."""
    y = job.data["y"].to_numpy()[job.test]
    return cv.FoldResult(job.fold, job.test, -np.abs(y), y, seconds=0.1, compiled=job.fold == 0,
                         max_r_hat=1.0, min_ess_bulk=1000.0, converged=True)


def test_kfold_result_is_an_elpd_object_arviz_compares(monkeypatch, tmp_path):
    frame = simulated()
    fit = prior_fit(hier.Model("y ~ x + (1 | g)", frame), draws=100)
    fit.settings.update(draws=100, chains=1, tune=0, target_accept=0.95, random_seed=1)
    monkeypatch.setattr(cv, "_run", _fake_run)
    result = fit.kfold(5, by="g", workers=1, cache=tmp_path, progressbar=False)
    assert result.kind == "loo_kfold" and result.n_folds == 5 and result.by == "g"
    np.testing.assert_allclose(result.elpd_i.values, -np.abs(frame["y"].to_numpy()))
    assert result.elpd == pytest.approx(-np.abs(frame["y"]).sum())
    assert list(result.fold_table["rows"]) == [int((result.folds == f).sum()) for f in range(5)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # prior draws: PSIS warns
        table = az.compare({"a": result, "b": fit.loo(pointwise=True)})
    assert set(table.index) == {"a", "b"}
    assert "leave-group-out by 'g'" in repr(result)


def test_failed_folds_are_reported_and_a_rerun_resumes_from_the_cache(monkeypatch, tmp_path):
    frame = simulated()
    fit = prior_fit(hier.Model("y ~ x + (1 | g)", frame), draws=20)
    fit.settings.update(draws=20, chains=1, tune=0, target_accept=0.95, random_seed=1)
    calls = []

    def flaky(job):
        calls.append(job.fold)
        if job.fold == 2:
            return cv.FoldResult(job.fold, job.test, None, error="RuntimeError: boom")
        return _fake_run(job)

    monkeypatch.setattr(cv, "_run", flaky)
    with pytest.warns(RuntimeWarning, match=r"1 fold\(s\) failed: \[2\].*RuntimeError: boom"):
        first = fit.kfold(4, workers=1, cache=tmp_path, progressbar=False)
    assert np.isnan(first.elpd) and first.fold_table.loc[2, "error"] == "RuntimeError: boom"
    assert first.elpd_i.isnull().sum() == (first.folds == 2).sum()
    calls.clear()
    monkeypatch.setattr(cv, "_run", lambda job: (calls.append(job.fold), _fake_run(job))[1])
    second = fit.kfold(4, workers=1, cache=tmp_path, progressbar=False)
    assert calls == [2]                                # only the failed fold ran again
    assert np.isfinite(second.elpd)


def test_unconverged_folds_warn(monkeypatch):
    fit = prior_fit(hier.Model("y ~ x + (1 | g)", simulated()), draws=20)
    fit.settings.update(draws=20, chains=1, tune=0, target_accept=0.95, random_seed=1)
    monkeypatch.setattr(cv, "_run", lambda job: cv.FoldResult(
        job.fold, job.test, np.zeros(len(job.test)), np.zeros(len(job.test)), divergences=3,
        max_r_hat=1.2, converged=job.fold != 1))
    with pytest.warns(ConvergenceWarning, match=r"1 fold\(s\) did not pass.*\[1\]"):
        fit.kfold(3, workers=1, cache=False, progressbar=False)


def test_reloo_replaces_only_the_bad_points(monkeypatch):
    fit = prior_fit(hier.Model("y ~ x + (1 | g)", simulated()), draws=50)
    fit.settings.update(draws=50, chains=1, tune=0, target_accept=0.95, random_seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # prior draws: PSIS may warn
        psis = az.loo(fit.idata, pointwise=True)
    bad = np.array([3, 10])
    psis.pareto_k = psis.pareto_k.copy()
    psis.pareto_k.values[:] = 0.1
    psis.pareto_k.values[bad] = 0.9
    monkeypatch.setattr(cv, "_run", _fake_run)
    out = cv.reloo(fit, psis, workers=1, cache=False, progressbar=False)
    y = fit.model.design.y
    np.testing.assert_allclose(out.elpd_i.values[bad], -np.abs(y[bad]))
    keep = np.setdiff1d(np.arange(len(y)), bad)
    np.testing.assert_array_equal(out.elpd_i.values[keep], psis.elpd_i.values[keep])
    assert (out.pareto_k.values[bad] == 0).all() and out.elpd == pytest.approx(out.elpd_i.sum())
    assert list(out.refits.index) == list(bad)
    assert psis.pareto_k.values[bad].min() > 0.7      # the input is not modified


def test_model_file_cv_setting(tmp_path):
    from hierarchical import model_file

    text = ('[data]\ndataset = "radon"\n[model]\nformula = "log_radon ~ floor + (1 | county)"\n'
            '[report]\ncv = "{}"\n')
    path = tmp_path / "m.toml"
    path.write_text(text.format("group"))
    assert model_file.load(path).report.cv == "group"
    path.write_text(text.format("lgo"))
    with pytest.raises(hier.exceptions.ModelFileError, match=r"cv: unknown method 'lgo'; valid: loo, kfold, group"):
        model_file.load(path)


def test_callers_frame_is_not_modified_by_cv_jobs():
    frame = simulated()
    before = frame_hash(frame)
    fit = prior_fit(hier.Model("y ~ x + (1 | g)", frame, weights=None), draws=4)
    cv._jobs(fit, [np.arange(5)], kind=1, random_seed=1, draws_per_level=5, cores_per_fit=1)
    assert frame_hash(frame) == before


# --- real refits --------------------------------------------------------------------------

@pytest.mark.integration
def test_kfold_and_group_cv_compile_once_and_rank_the_pooling_models(radon):
    """Radon intercepts, 5 folds, one worker: the first fold compiles and the rest reuse
    it; every fold converges; leave-county-out cannot score no pooling and says so."""
    from hierarchical import pooling

    model = hier.Model("log_radon ~ floor + (1 | county)", radon)
    settings = dict(draws=500, tune=500, chains=4, random_seed=3, progressbar=False)
    fits = {"partial pooling": model.fit(**settings),
            "complete pooling": hier.Model(pooling.complete_pooling_spec(model.spec), radon).fit(**settings),
            # never refitted: it cannot predict a new county (prior draws stand in)
            "no pooling": prior_fit(hier.Model(pooling.no_pooling_spec(model, "county"), radon), 4)}
    table = pooling.compare_fits(fits, "group", k=5, by="county", workers=1, cache=False,
                                 progressbar=False)
    assert "cannot predict a new level of 'county'" in table.loc["no pooling", "note"]
    assert np.isnan(table.loc["no pooling", "elpd"])
    assert table.attrs["method"] == "leave-group-out CV by 'county', 5 folds"
    results = table.attrs["results"]
    for name in ("partial pooling", "complete pooling"):
        folds = results[name].fold_table
        assert folds["error"].isna().all() and folds["converged"].all()
        assert folds["compiled"].sum() <= 1                 # one compile per worker
    # the two models' elpd for new counties differ by less than 2 standard errors (G&H:
    # for a new county the multilevel model is little better than complete pooling)
    assert abs(table.loc["partial pooling", "elpd_diff"]) < 2 * max(table["dse"].max(), 1)
    assert 0.75 < results["partial pooling"].rmse < 0.85


EIGHT_SCHOOLS_PRIORS = {"Intercept": hier.Prior("Normal", mu=0, sigma=5),
                        "school_sd": hier.Prior("HalfCauchy", beta=5)}


@pytest.mark.slow
def test_reloo_agrees_with_brute_force_exact_loo():
    """Eight schools: every school left out by dropping its row and refitting (an
    independent path: a smaller data set, not a zero weight), scored exactly, N(y_i | mu,
    se_i^2 + tau^2) averaged over draws. ``reloo`` refitting every point, and ``reloo`` at
    k > 0.7 (PSIS elsewhere), agree with it within Monte Carlo error: the per-point MCSE of
    a log mean density is about sd(p) / (mean(p) sqrt(ESS)), under 0.01 here, so 0.05 per
    point; the totals within 0.1 (PSIS-LOO's own error on the other points included)."""
    data = hier.datasets.load("eight_schools")
    spec = hier.meta_analysis("y", se="se", group="school")
    fit = hier.Model(spec, data, priors=EIGHT_SCHOOLS_PRIORS).fit(random_seed=1, progressbar=False)
    brute = []
    for i in range(len(data)):
        held = hier.Model(spec, data.drop(index=i), priors=EIGHT_SCHOOLS_PRIORS).fit(
            random_seed=100 + i, progressbar=False)
        mu = held.posterior["beta"].values[..., 0].ravel()
        tau = held.posterior["school_sd"].values[..., 0].ravel()
        logp = stats.norm.logpdf(data["y"][i], mu, np.sqrt(data["se"][i] ** 2 + tau ** 2))
        brute.append(logsumexp(logp) - np.log(len(logp)))
    every = fit.loo(reloo=True, k_threshold=-np.inf, workers=1, cache=False, progressbar=False)
    assert len(every.refits) == len(data) and every.refits["error"].isna().all()
    np.testing.assert_allclose(every.elpd_i.values, brute, atol=0.05)
    default = fit.loo(reloo=True, workers=1, cache=False, progressbar=False)
    assert default.elpd == pytest.approx(sum(brute), abs=0.1)
    assert every.elpd == pytest.approx(sum(brute), abs=0.1)


@pytest.mark.slow
def test_local_workers_give_the_same_folds_as_this_process(radon):
    """Two spawned workers (one compile each) and this process give identical numbers for
    the same seed and threads per fit."""
    fit = hier.Model("log_radon ~ floor + (1 | county)", radon).fit(
        draws=600, tune=500, random_seed=2, progressbar=False)
    kwargs = dict(k=4, by="county", cores_per_fit=1, cache=False, progressbar=False)
    here = cv.kfold(fit, workers=1, **kwargs)
    spawned = cv.kfold(fit, workers=2, **kwargs)
    np.testing.assert_array_equal(here.elpd_i.values, spawned.elpd_i.values)
    assert spawned.fold_table["worker"].nunique() == 2
    assert spawned.fold_table["compiled"].sum() == 2          # once per worker


@pytest.mark.interop
def test_kfold_on_local_processes_and_dask_gives_the_same_result(radon):
    distributed = pytest.importorskip("distributed")
    fit = hier.Model("log_radon ~ floor + (1 | county)", radon).fit(
        draws=600, tune=500, random_seed=2, progressbar=False)
    kwargs = dict(k=4, by="county", cache=False, progressbar=False)
    local = fit.kfold(workers=2, **kwargs)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = fit.kfold(client=client, **kwargs)
    np.testing.assert_array_equal(local.elpd_i.values, remote.elpd_i.values)
    assert local.elpd == remote.elpd
    assert remote.fold_table["compiled"].sum() == 2
