"""Simulation-based calibration of every template and of the marginalised Gaussian path.

    python benchmarks/sbc.py                       # 200 replications per case, local processes
    python benchmarks/sbc.py --reps 20 --cases meta_analysis
    python benchmarks/sbc.py --dask tcp://scheduler:8786

Each case is a template on a small fixed design with explicit priors, and a simulator written
in numpy from the template's definition, not from its PyMC graph: a graph that disagrees with
the model it claims to be shows up as non-uniform ranks. Each worker compiles each model once
and refits it to every simulated response (``Model.with_data``). Writes ``ranks.csv.gz``,
``table.csv`` and one rank histogram PNG per case to ``--out``, and prints the table.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

import hierarchical as hier
from hierarchical import calibration

P = hier.Prior
OUT = Path(__file__).resolve().parent / "sbc"


def _levels(sizes) -> np.ndarray:
    return np.repeat([f"g{j:02d}" for j in range(len(sizes))], sizes)


def _level_index(data: pd.DataFrame) -> tuple[np.ndarray, int]:
    """Rows' group index with g00 first: the simulators' effects are in level order."""
    codes = data["g"].str.slice(1).astype(int).to_numpy()
    return codes, int(codes.max()) + 1


def _half_normal(rng, scale=1.0, size=None):
    return np.abs(rng.normal(0.0, scale, size))


# --- Gaussian: random intercepts, correlated slopes; explicit and marginalised -------------

GAUSSIAN_PRIORS = {"Intercept": P("Normal", mu=0, sigma=2), "x": P("Normal", mu=0, sigma=1),
                   "g_sd": P("HalfNormal", sigma=1), "g_corr": P("LKJ", eta=2.0),
                   "sigma": P("HalfNormal", sigma=1)}


def gaussian_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    g = _levels(rng.integers(2, 11, size=12))          # 12 groups of 2-10 rows
    return pd.DataFrame({"y": rng.normal(size=g.size), "x": rng.normal(size=g.size), "g": g})


def slopes_frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    g = _levels(np.full(15, 6))                          # 15 groups of 6 rows
    return pd.DataFrame({"y": rng.normal(size=g.size), "x": rng.uniform(-1, 1, g.size), "g": g})


def _gaussian_intercepts(marginalize: bool):
    priors = {k: v for k, v in GAUSSIAN_PRIORS.items() if k != "g_corr"}
    spec = hier.random_intercepts("y", "g", ["x"], priors=priors, centered=False)
    return hier.Model(spec, gaussian_frame(), marginalize=marginalize)


def gaussian_intercepts():
    return _gaussian_intercepts(False)


def gaussian_intercepts_marginal():
    return _gaussian_intercepts(True)


def simulate_gaussian_intercepts(rng, data):
    g, n_groups = _level_index(data)
    b0, b1 = rng.normal(0, 2), rng.normal(0, 1)
    tau, sigma = _half_normal(rng), _half_normal(rng)
    u = rng.normal(0, tau, n_groups)
    y = b0 + b1 * data["x"].to_numpy() + u[g] + rng.normal(0, sigma, len(data))
    truth = {"beta[Intercept]": b0, "beta[x]": b1, "g_sd[Intercept]": tau, "sigma": sigma,
             "g_effect[g00, Intercept]": u[0]}
    return truth, data.assign(y=y)


def _correlated_slopes(marginalize: bool):
    spec = hier.random_slopes("y", "g", ["x"], priors=GAUSSIAN_PRIORS, centered=False)
    return hier.Model(spec, slopes_frame(), marginalize=marginalize)


def correlated_slopes():
    return _correlated_slopes(False)


def correlated_slopes_marginal():
    return _correlated_slopes(True)


def simulate_correlated_slopes(rng, data):
    g, n_groups = _level_index(data)
    b = rng.normal(0, [2, 1])
    sd = _half_normal(rng, 1.0, 2)
    rho = 2 * rng.beta(2.0, 2.0) - 1                      # LKJ(eta) for 2 x 2: (rho+1)/2 ~ Beta(eta, eta)
    cov = np.outer(sd, sd) * np.array([[1, rho], [rho, 1]])
    u = rng.multivariate_normal(np.zeros(2), cov, n_groups)
    sigma = _half_normal(rng)
    x = data["x"].to_numpy()
    y = b[0] + b[1] * x + u[g, 0] + u[g, 1] * x + rng.normal(0, sigma, len(data))
    truth = {"beta[Intercept]": b[0], "beta[x]": b[1], "g_sd[Intercept]": sd[0],
             "g_sd[x]": sd[1], "g_corr[corr(Intercept, x)]": rho, "sigma": sigma,
             "g_effect[g00, Intercept]": u[0, 0], "g_effect[g00, x]": u[0, 1]}
    return truth, data.assign(y=y)


# --- Gaussian with several factors, marginalised: nested (a / b) and crossed (a x c) -----

SEVERAL_PRIORS = {"Intercept": P("Normal", mu=0, sigma=2), "x": P("Normal", mu=0, sigma=1),
                  "a_sd": P("HalfNormal", sigma=1), "a:b_sd": P("HalfNormal", sigma=1),
                  "c_sd": P("HalfNormal", sigma=1), "a_corr": P("LKJ", eta=2.0),
                  "sigma": P("HalfNormal", sigma=1)}


def several_factors_frame() -> pd.DataFrame:
    """8 levels of a, each with 3 levels of b (2-4 rows each), crossed with 5 levels of c."""
    rng = np.random.default_rng(3)
    a, b = [], []
    for i in range(8):
        for j in range(3):
            rows = int(rng.integers(2, 5))
            a += [f"a{i}"] * rows
            b += [f"b{j}"] * rows
    c = [f"c{k}" for k in rng.integers(0, 5, len(a))]
    return pd.DataFrame({"y": rng.normal(size=len(a)), "x": rng.uniform(-1, 1, len(a)),
                         "a": a, "b": b, "c": c})


def nested_marginal():
    priors = {k: v for k, v in SEVERAL_PRIORS.items() if k not in ("c_sd",)}
    return hier.Model("y ~ x + (x | a) + (1 | a:b)", several_factors_frame(), priors=priors)


def crossed_marginal():
    priors = {k: v for k, v in SEVERAL_PRIORS.items() if k not in ("a:b_sd", "a_corr")}
    return hier.Model("y ~ x + (1 | a) + (1 | c)", several_factors_frame(), priors=priors)


def _codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    levels = sorted(column.unique())
    return pd.Index(levels).get_indexer(column), levels


def simulate_nested(rng, data):
    a, a_levels = _codes(data["a"])
    ab, ab_levels = _codes(data["a"] + ":" + data["b"])
    b = rng.normal(0, [2, 1])
    sd = _half_normal(rng, 1.0, 2)
    rho = 2 * rng.beta(2.0, 2.0) - 1
    cov = np.outer(sd, sd) * np.array([[1, rho], [rho, 1]])
    u = rng.multivariate_normal(np.zeros(2), cov, len(a_levels))
    tau, sigma = _half_normal(rng), _half_normal(rng)
    v = rng.normal(0, tau, len(ab_levels))
    x = data["x"].to_numpy()
    y = b[0] + b[1] * x + u[a, 0] + u[a, 1] * x + v[ab] + rng.normal(0, sigma, len(data))
    truth = {"beta[Intercept]": b[0], "beta[x]": b[1], "a_sd[Intercept]": sd[0],
             "a_sd[x]": sd[1], "a_corr[corr(Intercept, x)]": rho, "a:b_sd[Intercept]": tau,
             "sigma": sigma, f"a_effect[{a_levels[0]}, x]": u[0, 1],
             f"a:b_effect[{ab_levels[0]}, Intercept]": v[0]}
    return truth, data.assign(y=y)


def simulate_crossed(rng, data):
    a, a_levels = _codes(data["a"])
    c, c_levels = _codes(data["c"])
    b = rng.normal(0, [2, 1])
    tau_a, tau_c, sigma = _half_normal(rng), _half_normal(rng), _half_normal(rng)
    u, w = rng.normal(0, tau_a, len(a_levels)), rng.normal(0, tau_c, len(c_levels))
    y = b[0] + b[1] * data["x"].to_numpy() + u[a] + w[c] + rng.normal(0, sigma, len(data))
    truth = {"beta[Intercept]": b[0], "beta[x]": b[1], "a_sd[Intercept]": tau_a,
             "c_sd[Intercept]": tau_c, "sigma": sigma,
             f"a_effect[{a_levels[0]}, Intercept]": u[0],
             f"c_effect[{c_levels[0]}, Intercept]": w[0]}
    return truth, data.assign(y=y)


# --- Poisson with exposure (centred: the intercept-absorbing graph) ------------------------

POISSON_PRIORS = {"Intercept": P("Normal", mu=0, sigma=1), "x": P("Normal", mu=0, sigma=0.5),
                  "g_sd": P("Gamma", alpha=4, beta=8)}


def poisson_exposure():
    rng = np.random.default_rng(2)
    g = _levels(np.full(10, 8))
    frame = pd.DataFrame({"y": rng.poisson(5, g.size), "x": rng.normal(size=g.size),
                          "t": rng.uniform(1, 10, g.size), "g": g})
    spec = hier.poisson_glmm("y", "g", ["x"], exposure="t", priors=POISSON_PRIORS, centered=True)
    return hier.Model(spec, frame)


def simulate_poisson_exposure(rng, data):
    g, n_groups = _level_index(data)
    b0, b1 = rng.normal(0, 1), rng.normal(0, 0.5)
    tau = rng.gamma(4.0, 1 / 8)
    u = rng.normal(0, tau, n_groups)
    eta = b0 + b1 * data["x"].to_numpy() + u[g] + np.log(data["t"].to_numpy())
    truth = {"beta[Intercept]": b0, "beta[x]": b1, "g_sd[Intercept]": tau,
             "g_effect[g00, Intercept]": u[0]}
    return truth, data.assign(y=rng.poisson(np.exp(eta)))


# --- logit: binomial with trials, Bernoulli (binary predictor: rows aggregate) -------------

LOGIT_PRIORS = {"Intercept": P("Normal", mu=0, sigma=1.5), "x": P("Normal", mu=0, sigma=1),
                "g_sd": P("HalfNormal", sigma=1)}


def binomial_logit():
    rng = np.random.default_rng(3)
    g = _levels(np.full(12, 6))
    n = rng.integers(5, 21, g.size)
    frame = pd.DataFrame({"k": rng.binomial(n, 0.4), "n": n, "x": rng.normal(size=g.size),
                          "g": g})
    spec = hier.logit_glmm("k", "g", ["x"], trials="n", priors=LOGIT_PRIORS, centered=False)
    return hier.Model(spec, frame)


def bernoulli_logit():
    rng = np.random.default_rng(4)
    g = _levels(np.full(20, 10))
    frame = pd.DataFrame({"k": np.tile([0, 1], g.size // 2), "x": rng.integers(0, 2, g.size),
                          "g": g})
    spec = hier.logit_glmm("k", "g", ["x"], priors=LOGIT_PRIORS, centered=False)
    return hier.Model(spec, frame)


def _simulate_logit(rng, data, trials):
    g, n_groups = _level_index(data)
    b0, b1 = rng.normal(0, 1.5), rng.normal(0, 1)
    tau = _half_normal(rng)
    u = rng.normal(0, tau, n_groups)
    p = 1 / (1 + np.exp(-(b0 + b1 * data["x"].to_numpy() + u[g])))
    truth = {"beta[Intercept]": b0, "beta[x]": b1, "g_sd[Intercept]": tau,
             "g_effect[g00, Intercept]": u[0]}
    return truth, data.assign(k=rng.binomial(trials, p))


def simulate_binomial_logit(rng, data):
    return _simulate_logit(rng, data, data["n"].to_numpy())


def simulate_bernoulli_logit(rng, data):
    return _simulate_logit(rng, data, 1)


# --- random-effects meta-analysis ----------------------------------------------------------

META_PRIORS = {"Intercept": P("Normal", mu=0, sigma=2), "g_sd": P("HalfNormal", sigma=1)}


def meta_analysis():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"y": rng.normal(size=10), "se": rng.uniform(0.3, 1.5, 10),
                          "g": _levels(np.ones(10, dtype=int))})
    spec = hier.meta_analysis("y", se="se", group="g", priors=META_PRIORS, centered=False)
    return hier.Model(spec, frame)


def simulate_meta_analysis(rng, data):
    mu, tau = rng.normal(0, 2), _half_normal(rng)
    u = rng.normal(0, tau, len(data))
    y = mu + u + rng.normal(0, data["se"].to_numpy())
    truth = {"beta[Intercept]": mu, "g_sd[Intercept]": tau, "g_effect[g00, Intercept]": u[0]}
    return truth, data.assign(y=y)


# --- the families of issue 18: overdispersed and zero-inflated counts, t, Gamma, Beta, links --
# Each on 12 groups of 8 rows with x ~ N(0, 1), non-centred, every prior explicit (the
# family's own parameter included) and simulated in numpy from the family's definition.

FAMILY_PRIORS = {"Intercept": P("Normal", mu=0.5, sigma=0.5), "x": P("Normal", mu=0, sigma=0.5),
                 "g_sd": P("HalfNormal", sigma=0.5), "alpha": P("Gamma", alpha=4, beta=1),
                 "psi": P("Beta", alpha=4, beta=2), "sigma": P("HalfNormal", sigma=1),
                 "nu": P("Gamma", alpha=4, beta=0.5), "kappa": P("Gamma", alpha=4, beta=0.2)}
EXTRAS = {"negativebinomial": ("alpha",), "zero_inflated_poisson": ("psi",),
          "zero_inflated_negativebinomial": ("alpha", "psi"), "t": ("sigma", "nu"),
          "gamma": ("alpha",), "beta": ("kappa",), "bernoulli": (), "binomial": ()}
BASE_RESPONSE = {"negativebinomial": lambda rng, n: rng.poisson(2, n),
                 "zero_inflated_poisson": lambda rng, n: rng.poisson(2, n),
                 "zero_inflated_negativebinomial": lambda rng, n: rng.poisson(2, n),
                 "t": lambda rng, n: rng.normal(size=n), "gamma": lambda rng, n: rng.gamma(2, 1, n),
                 "beta": lambda rng, n: rng.beta(2, 2, n),
                 "bernoulli": lambda rng, n: np.tile([0, 1], n // 2),
                 "binomial": lambda rng, n: rng.binomial(10, 0.4, n)}


# case name: (family, link); partials of the two module-level functions travel to workers
FAMILY_SBC = {"negativebinomial": ("negativebinomial", None),
              "zero_inflated_poisson": ("zero_inflated_poisson", None),
              "zero_inflated_negativebinomial": ("zero_inflated_negativebinomial", None),
              "student_t": ("t", None), "gamma_log": ("gamma", None), "beta_logit": ("beta", None),
              "binomial_probit": ("binomial", "probit"), "bernoulli_cloglog": ("bernoulli", "cloglog")}


def _family_model(family: str, link: str | None = None):
    rng = np.random.default_rng(6)
    g = _levels(np.full(12, 8))
    frame = pd.DataFrame({"y": BASE_RESPONSE[family](rng, g.size).astype(float),
                          "x": rng.normal(size=g.size), "g": g})
    extra = {}
    if family == "binomial":
        frame["n"] = 10
        extra["trials"] = "n"
    keys = ("Intercept", "x", "g_sd", *EXTRAS[family])
    return hier.Model("y ~ x + (1 | g)", frame, family=family, link=link, centered=False,
                      aggregate_rows=False, priors={k: FAMILY_PRIORS[k] for k in keys}, **extra)


def _simulate_family(rng, data, family: str, link: str | None = None):
    g, n_groups = _level_index(data)
    b0, b1, tau = rng.normal(0.5, 0.5), rng.normal(0, 0.5), _half_normal(rng, 0.5)
    u = rng.normal(0, tau, n_groups)
    eta = b0 + b1 * data["x"].to_numpy() + u[g]
    truth = {"beta[Intercept]": b0, "beta[x]": b1, "g_sd[Intercept]": tau,
             "g_effect[g00, Intercept]": u[0]}
    draws = {"alpha": lambda: rng.gamma(4, 1), "psi": lambda: rng.beta(4, 2),
             "sigma": lambda: _half_normal(rng), "nu": lambda: rng.gamma(4, 2),
             "kappa": lambda: rng.gamma(4, 5)}
    extra = {name: draws[name]() for name in EXTRAS[family]}
    truth.update(extra)
    n = len(data)
    if family in ("negativebinomial", "zero_inflated_negativebinomial"):
        mu, a = np.exp(eta), extra["alpha"]
        y = rng.negative_binomial(a, a / (a + mu)).astype(float)
    elif family == "zero_inflated_poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    elif family == "t":
        y = eta + extra["sigma"] * rng.standard_t(extra["nu"], n)
    elif family == "gamma":
        y = rng.gamma(extra["alpha"], np.exp(eta) / extra["alpha"])
    elif family == "beta":
        mu, k = 1 / (1 + np.exp(-eta)), extra["kappa"]
        y = np.clip(rng.beta(mu * k, (1 - mu) * k), 1e-12, 1 - 1e-12)   # keep (0, 1) open
    else:                                                   # probit / cloglog probabilities
        p = ndtr(eta) if link == "probit" else -np.expm1(-np.exp(eta))
        y = rng.binomial(data["n"].to_numpy() if family == "binomial" else 1, p).astype(float)
    if "psi" in extra:
        y = np.where(rng.random(n) < extra["psi"], y, 0.0)
    return truth, data.assign(y=y)


CASES = {case.name: case for case in [
    calibration.SBCCase("gaussian_intercepts", gaussian_intercepts, simulate_gaussian_intercepts),
    calibration.SBCCase("gaussian_intercepts_marginal", gaussian_intercepts_marginal,
                        simulate_gaussian_intercepts),
    calibration.SBCCase("correlated_slopes", correlated_slopes, simulate_correlated_slopes),
    calibration.SBCCase("correlated_slopes_marginal", correlated_slopes_marginal,
                        simulate_correlated_slopes),
    calibration.SBCCase("nested_marginal", nested_marginal, simulate_nested),
    calibration.SBCCase("crossed_marginal", crossed_marginal, simulate_crossed),
    calibration.SBCCase("poisson_exposure", poisson_exposure, simulate_poisson_exposure),
    calibration.SBCCase("binomial_logit", binomial_logit, simulate_binomial_logit),
    calibration.SBCCase("bernoulli_logit", bernoulli_logit, simulate_bernoulli_logit),
    calibration.SBCCase("meta_analysis", meta_analysis, simulate_meta_analysis),
    *[calibration.SBCCase(name, partial(_family_model, family, link),
                          partial(_simulate_family, family=family, link=link))
      for name, (family, link) in FAMILY_SBC.items()],
]}


def print_table(table: pd.DataFrame, ranks: pd.DataFrame) -> None:
    shown = table.assign(uniform=table["uniform"].map({True: "yes", False: "NO"}))
    with pd.option_context("display.width", 200, "display.max_rows", 500,
                           "display.float_format", "{:.3f}".format):
        print(shown.to_string(index=False))
    n_fail = int((~table["uniform"]).sum())
    print(f"\n{len(table)} parameters, {ranks['rep'].nunique()} replications per case; "
          f"{n_fail} not uniform at family-wise 1% (Bonferroni, p < {0.01 / len(table):.1e}). "
          f"Wall time {ranks.attrs['wall_seconds']:.0f} s; "
          f"{ranks.drop_duplicates(['case', 'rep'])['seconds'].median():.2f} s median per fit.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--dask", metavar="ADDRESS", help="run on this Dask scheduler")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    client = None
    if args.dask:
        from distributed import Client

        client = Client(args.dask)
    try:
        ranks = calibration.run([CASES[c] for c in args.cases], args.reps, draws=args.draws,
                                tune=args.tune, workers=args.workers, client=client,
                                random_seed=args.seed)
    finally:
        if client is not None:
            client.close()
    table = calibration.rank_table(ranks)
    args.out.mkdir(parents=True, exist_ok=True)
    ranks.to_csv(args.out / "ranks.csv.gz", index=False, float_format="%.6g")
    table.to_csv(args.out / "table.csv", index=False)
    for case in args.cases:
        hier.plots.save(hier.plots.rank_histograms(ranks, case), args.out / f"{case}.png")
    print_table(table, ranks)
    print(f"ranks, table and histograms in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
