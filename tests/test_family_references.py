"""The new families on public data against glmmTMB / lme4 maximum-likelihood fits
(``tests/data/reference/families.json``, made by ``families.R`` there; R is not needed here).

Each fit uses the defaults (4 chains x 1000 draws). A fixed effect agrees when our posterior
mean lies within 2.5 posterior SDs of the ML estimate; a group SD or family parameter when
the ML value lies inside our 94 % interval or within 2.5 posterior SDs (on the log scale for
positive parameters). Posterior means and ML estimates differ by the prior and by the
posterior's skew, both small next to a posterior SD on these data; Monte Carlo error (MCSE
about 2-3 % of an SD at these ESS) is negligible against 2.5 SD.

Term names differ where R and formulae code factors differently: glmmTMB's Salamanders
``mined`` has levels (yes, no), so its ``(Intercept)`` is a mined site and ``minedno`` the
difference; ours treatment-codes alphabetically (reference "no").
"""

import json
from pathlib import Path

import numpy as np
import pytest

import hierarchical as hier

REFERENCE = json.loads((Path(__file__).parent / "data" / "reference" / "families.json").read_text())
FITS = REFERENCE["fits"]


def _salamander_fixed(ref):
    b = {k: v[0] for k, v in ref["fixed"].items()}
    return {"Intercept": b["(Intercept)"] + b["minedno"], "mined[yes]": -b["minedno"]}


def _cbpp_fixed(ref):
    b = {k: v[0] for k, v in ref["fixed"].items()}
    return {"Intercept": b["(Intercept)"], **{f"C(period)[{j}]": b[f"period{j}"] for j in (2, 3, 4)}}


def _same_names(ref, rename):
    return {rename.get(k, k): v[0] for k, v in ref["fixed"].items()}


# name: (reference key, formula, data, model kwargs, fixed-effect mapping,
#        {our variance-component (group, name): R value}, tier)
CASES = {
    "negativebinomial": ("a_nb2_salamanders", "count ~ mined + (1 | site)", "salamanders",
                         dict(family="negativebinomial"), _salamander_fixed,
                         lambda r: {("site", "Intercept"): r["sd"]["site"],
                                    ("family", "alpha"): r["extra"]["theta"]}, "integration"),
    "zero_inflated_poisson": ("b_zip_salamanders", "count ~ mined + (1 | site)", "salamanders",
                              dict(family="zero_inflated_poisson"), _salamander_fixed,
                              lambda r: {("site", "Intercept"): r["sd"]["site"],
                                         ("family", "psi"): 1 - r["extra"]["zi_prob"]}, "slow"),
    "zero_inflated_negativebinomial": (
        "c_zinb2_salamanders", "count ~ mined + (1 | site)", "salamanders",
        dict(family="zero_inflated_negativebinomial"), _salamander_fixed,
        lambda r: {("site", "Intercept"): r["sd"]["site"], ("family", "alpha"): r["extra"]["theta"],
                   ("family", "psi"): 1 - r["extra"]["zi_prob"]}, "slow"),
    "t": ("d2_t_sleepstudy_rs", "Reaction ~ Days + (Days | Subject)", "sleepstudy",
          dict(family="t"), lambda r: _same_names(r, {"(Intercept)": "Intercept"}),
          lambda r: {("Subject", "Intercept"): r["sd"]["Subject"]["(Intercept)"],
                     ("Subject", "Days"): r["sd"]["Subject"]["Days"],
                     ("residual", "sigma"): r["extra"]["sigma"], ("family", "nu"): r["extra"]["df"]},
          "slow"),
    "gamma": ("e2_gamma_earthquake", "accel ~ log(distance) + Richter + (1 | Quake)", "earthquake",
              dict(family="gamma"), lambda r: _same_names(r, {"(Intercept)": "Intercept"}),
              lambda r: {("Quake", "Intercept"): r["sd"]["Quake"],
                         ("family", "alpha"): r["extra"]["shape"]}, "slow"),
    "beta": ("f_beta_gasolineyield", "yield ~ temp + (1 | batch)", "gasolineyield",
             dict(family="beta"), lambda r: _same_names(r, {"(Intercept)": "Intercept"}),
             lambda r: {("batch", "Intercept"): r["sd"]["batch"],
                        ("family", "kappa"): r["extra"]["phi"]}, "integration"),
    "binomial_probit": ("g1_binomial_probit_cbpp", "incidence ~ C(period) + (1 | herd)", "cbpp",
                        dict(family="binomial", link="probit", trials="size"), _cbpp_fixed,
                        lambda r: {("herd", "Intercept"): r["sd"]["herd"]}, "integration"),
    "binomial_cloglog": ("g2_binomial_cloglog_cbpp", "incidence ~ C(period) + (1 | herd)", "cbpp",
                         dict(family="binomial", link="cloglog", trials="size"), _cbpp_fixed,
                         lambda r: {("herd", "Intercept"): r["sd"]["herd"]}, "slow"),
}


def _params(name):
    return [pytest.param(n, marks=getattr(pytest.mark, CASES[n][-1])) for n in name]


@pytest.fixture(scope="module")
def fits():
    cache = {}

    def get(name):
        if name not in cache:
            key, formula, data, kwargs, *_ = CASES[name]
            model = hier.Model(formula, hier.datasets.load(data), **kwargs)
            cache[name] = model.fit(random_seed=1, progressbar=False)
        return cache[name]
    return get


def _agrees(mean, sd, lo, hi, value, positive):
    if lo <= value <= hi:
        return True
    if positive:
        return abs(np.log(value) - np.log(mean)) < 2.5 * sd / mean
    return abs(value - mean) < 2.5 * sd


@pytest.mark.parametrize("name", _params(CASES))
def test_family_agrees_with_glmmtmb(fits, name):
    key, _, _, _, fixed_of, components_of, _ = CASES[name]
    ref, fit = FITS[key], fits(name)
    d = fit.diagnostics()
    assert d.divergences == 0 and d.table["r_hat"].max() <= 1.02, d
    fixed = fit.fixed_effects()
    for term, value in fixed_of(ref).items():
        row = fixed.loc[term]
        assert abs(row["mean"] - value) < 2.5 * row["sd"], (term, row["mean"], row["sd"], value)
    vc = fit.variance_components(prob=0.94)
    lo, hi = [c for c in vc.columns if c.startswith("eti")]
    for index, value in components_of(ref).items():
        row = vc.loc[index]
        assert _agrees(row["mean"], row["sd"], row[lo], row[hi], value,
                       positive=index[1] != "psi"), (index, row.to_dict(), value)
