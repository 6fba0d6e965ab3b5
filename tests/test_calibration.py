"""Simulation-based calibration machinery, and a small real SBC run (the full one with 200
replications per template is ``benchmarks/sbc.py``, in the slow tier)."""

import numpy as np
import pandas as pd
import pytest

import hierarchical as hier
from benchmarks import sbc
from hierarchical import calibration


def test_rank_counts_draws_below_the_truth_over_thinned_draws():
    draws = np.arange(1000.0).reshape(2, 500)          # chain 0: 0..499, chain 1: 500..999
    assert calibration.rank_of(draws, -1.0) == 0
    assert calibration.rank_of(draws, 1e9) == calibration.RANK_DRAWS
    # the 99 kept draws are spread evenly over both chains: 49 lie below the midpoint
    assert calibration.rank_of(draws, 499.5) == 49


def test_uniformity_test_tells_uniform_from_piled_ranks():
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, 100, 400)
    too_narrow = np.where(rng.random(400) < 0.5, rng.integers(0, 10, 400), rng.integers(90, 100, 400))
    biased = np.minimum(99, rng.integers(0, 100, 400) + 20)
    assert calibration.uniformity_p(uniform) > 0.01
    assert calibration.uniformity_p(too_narrow) < 1e-10
    assert calibration.uniformity_p(biased) < 1e-10
    with pytest.raises(ValueError, match="equal bins"):
        calibration.bin_counts(uniform, rank_draws=98)


def test_rank_table_reports_bias_and_spread():
    ranks = pd.DataFrame({"case": "c", "rep": np.arange(200), "parameter": "p",
                          "rank": np.full(200, 95), "ess_bulk": 500.0, "divergences": 0})
    row = calibration.rank_table(ranks).iloc[0]
    assert row["mean_rank"] > 0.9 and row["sd_rank"] < 0.01 and not row["uniform"]


@pytest.mark.integration
def test_with_data_reuses_the_sampler_and_gives_the_fresh_model_s_draws():
    base = sbc.gaussian_intercepts()
    base.compiled_nutpie(chains=2, iterations=400)
    truth, data = sbc.simulate_gaussian_intercepts(np.random.default_rng(5), base.data)
    reused = base.with_data(data)
    assert reused.is_compiled
    fresh = sbc.gaussian_intercepts().with_data(data)       # compiles on first fit
    assert not fresh.is_compiled
    kwargs = dict(draws=200, tune=200, chains=2, random_seed=3, progressbar=False, warn=False)
    a, b = reused.fit(**kwargs), fresh.fit(**kwargs)
    assert np.array_equal(a.posterior["beta"].values, b.posterior["beta"].values)
    assert not np.allclose(a.posterior["beta"].values.mean(),
                           base.fit(**kwargs).posterior["beta"].values.mean())
    # the design is data as well: a new design reuses the sampler, with its own density
    shifted = data.assign(x=data["x"] + 1.0)
    moved, own = base.with_data(shifted), sbc.gaussian_intercepts().with_data(shifted)
    assert moved.is_compiled
    own.compiled_nutpie(chains=2, iterations=400)
    x = own.nutpie.initial_point(1)
    assert moved.nutpie.logp_and_gradient(x)[0] == pytest.approx(
        own.nutpie.logp_and_gradient(x)[0], rel=1e-12)
    assert moved.nutpie.logp_and_gradient(x)[0] != base.nutpie.logp_and_gradient(x)[0]


@pytest.fixture(scope="module")
def meta_ranks():
    return calibration.run([sbc.CASES["meta_analysis"]], reps=20, draws=250, tune=250,
                           progressbar=False)


@pytest.mark.integration
def test_sbc_smoke_run_is_uniform(meta_ranks):
    assert len(meta_ranks) == 20 * 3
    assert meta_ranks["rank"].between(0, calibration.RANK_DRAWS).all()
    per_fit = meta_ranks.drop_duplicates("rep")
    assert per_fit["compile_seconds"].gt(0).sum() == 1               # compiled once
    # 20 replicates check the machinery, not calibration (the slow tier's 200 per template
    # do): a sound model fails the table's Bonferroni rule (p < 0.01 / 3) in 1 % of seeds
    # and of builds (rounding changes the draws), so the smoke run asks only p > 1e-3
    table = calibration.rank_table(meta_ranks)
    assert (table["p_uniform"] > 1e-3).all(), table


def wrong_prior_meta():
    """The meta-analysis fitted with a prior 20x narrower than the simulator's."""
    model = sbc.meta_analysis()
    return model.with_priors({"Intercept": hier.Prior("Normal", mu=0, sigma=0.1)})


@pytest.mark.integration
def test_sbc_flags_a_model_that_disagrees_with_its_simulator():
    case = calibration.SBCCase("wrong_prior", wrong_prior_meta, sbc.simulate_meta_analysis)
    ranks = calibration.run([case], reps=20, draws=250, tune=250, progressbar=False)
    table = calibration.rank_table(ranks).set_index("parameter")
    assert table.loc["beta[Intercept]", "p_uniform"] < 1e-4
    assert not table.loc["beta[Intercept]", "uniform"]
