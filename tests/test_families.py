"""Each family, checked piece by piece without sampling: the numpy log likelihood against
scipy.stats, the PyMC likelihood of the graph against the numpy one, draws against the
family's mean, working weights against the variance of the score, and bad responses."""

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import hierarchical as hier
from hierarchical import families
from hierarchical.exceptions import DataError, PriorError, SpecError

from .conftest import frame_hash, prior_fit, python_evaluation

RNG = np.random.default_rng(2026)
ETA = RNG.normal(0.3, 0.8, 40)


def _case(name, link=None):
    """(family, y on its support, extras, data-like object with trials) for ETA."""
    family = families.get(name, link)
    n = RNG.integers(1, 12, ETA.size).astype(float)
    data = type("Rows", (), {"trials": n if family.needs_trials else None, "se": None,
                             "offset": None})()
    extra = {"sigma": 1.7, "nu": 4.5, "alpha": 2.3, "psi": 0.7, "kappa": 9.0}
    extra = {e.name: np.float64(extra[e.name]) for e in family.extras}
    mean = family.link.inverse(ETA)
    y = {"gaussian": lambda: RNG.normal(ETA, 1.7), "t": lambda: RNG.normal(ETA, 2.0),
         "poisson": lambda: RNG.poisson(np.exp(ETA)),
         "negativebinomial": lambda: RNG.poisson(np.exp(ETA) * 1.5),
         "zero_inflated_poisson": lambda: RNG.poisson(np.exp(ETA)) * (RNG.random(ETA.size) < 0.7),
         "zero_inflated_negativebinomial":
             lambda: RNG.poisson(np.exp(ETA)) * (RNG.random(ETA.size) < 0.7),
         "gamma": lambda: RNG.gamma(2.0, np.exp(ETA) / 2.0), "beta": lambda: RNG.beta(3, 4, ETA.size),
         "bernoulli": lambda: RNG.binomial(1, mean),
         "binomial": lambda: RNG.binomial(n.astype(int), mean)}[name]().astype(float)
    return family, y, extra, data


def _scipy_logpdf(name, y, eta, extra, family, data):
    mu = family.link.inverse(eta)
    if name == "gaussian":
        return stats.norm(mu, extra["sigma"]).logpdf(y)
    if name == "t":
        return stats.t(extra["nu"], mu, extra["sigma"]).logpdf(y)
    if name == "poisson":
        return stats.poisson(mu).logpmf(y)
    a = extra.get("alpha")
    nb = None if a is None else stats.nbinom(a, a / (a + mu))
    if name == "negativebinomial":
        return nb.logpmf(y)
    if name.startswith("zero_inflated"):
        count = stats.poisson(mu) if name.endswith("poisson") else nb
        psi = extra["psi"]
        return np.log(np.where(y == 0, 1 - psi, 0) + psi * count.pmf(y))
    if name == "gamma":
        return stats.gamma(a, scale=mu / a).logpdf(y)
    if name == "beta":
        k = extra["kappa"]
        return stats.beta(mu * k, (1 - mu) * k).logpdf(y)
    if name == "bernoulli":
        return stats.bernoulli(mu).logpmf(y)
    return stats.binom(data.trials.astype(int), mu).logpmf(y)


CASES = [(name, None) for name in families.FAMILIES if name != "meta"] + [
    ("bernoulli", "probit"), ("bernoulli", "cloglog"), ("binomial", "probit"),
    ("binomial", "cloglog"), ("beta", "probit")]
IDS = [f"{n}-{link or 'default'}" for n, link in CASES]


@pytest.mark.parametrize("name, link", CASES, ids=IDS)
def test_numpy_log_likelihood_is_scipy_s(name, link):
    family, y, extra, data = _case(name, link)
    ours = family.log_likelihood(y, ETA, extra, data)
    np.testing.assert_allclose(ours, _scipy_logpdf(name, y, ETA, extra, family, data),
                               rtol=1e-9, atol=1e-9)


def _frame(name, link=None, rows=60, seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(rows // 6), 6)
    x = rng.normal(size=rows)
    eta = 0.2 + 0.4 * x + rng.normal(0, 0.5, rows // 6)[g]
    family = families.get(name, link)
    mu = family.link.inverse(eta)
    y = {"t": lambda: eta + rng.standard_t(5, rows),
         "negativebinomial": lambda: rng.negative_binomial(2, 2 / (2 + mu)),
         "zero_inflated_poisson": lambda: rng.poisson(mu) * (rng.random(rows) < 0.7),
         "zero_inflated_negativebinomial":
             lambda: rng.negative_binomial(2, 2 / (2 + mu)) * (rng.random(rows) < 0.7),
         "gamma": lambda: rng.gamma(3.0, mu / 3.0),
         "beta": lambda: np.clip(rng.beta(mu * 8, (1 - mu) * 8), 1e-4, 1 - 1e-4),
         "bernoulli": lambda: rng.binomial(1, mu), "poisson": lambda: rng.poisson(mu)}[name]()
    return pd.DataFrame({"y": y.astype(float), "x": x, "g": g})


NEW = [("t", None), ("negativebinomial", None), ("zero_inflated_poisson", None),
       ("zero_inflated_negativebinomial", None), ("gamma", None), ("beta", None),
       ("bernoulli", "probit"), ("bernoulli", "cloglog")]


@pytest.mark.parametrize("name, link", NEW, ids=[f"{n}-{link or 'default'}" for n, link in NEW])
def test_the_graph_s_likelihood_is_the_numpy_one(name, link):
    """PyMC's density of the response (the graph) equals the numpy log likelihood used for
    LOO, at a point of the prior."""
    model = hier.Model("y ~ x + (1 | g)", _frame(name, link), family=name, link=link,
                       centered=False, aggregate_rows=False)
    pm_model = model.pymc_model
    with python_evaluation():
        point = pm_model.initial_point(random_seed=3)
        response = pm_model.observed_RVs[0]
        logp = pm_model.compile_fn(pm_model.logp(vars=[response], sum=False, jacobian=False)[0],
                                   inputs=pm_model.value_vars, on_unused_input="ignore",
                                   mode="FAST_COMPILE")
        graph_values = np.asarray(logp(point))
        wanted = ("beta", "g_effect", *[e.name for e in model.spec.family_object.extras])
        outs = pm_model.replace_rvs_by_values([pm_model[v] for v in wanted])
        values = pm_model.compile_fn(outs, inputs=pm_model.value_vars, on_unused_input="ignore",
                                     mode="FAST_COMPILE")(point)
    beta, effect, *extras = values
    design = model.design
    eta = design.X @ beta + effect[design.groups[0].codes, 0]
    extra = {e.name: np.asarray(v) for e, v in zip(model.spec.family_object.extras, extras)}
    ours = model.spec.family_object.log_likelihood(design.y, eta, extra, design)
    np.testing.assert_allclose(graph_values, ours, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name, link", CASES, ids=IDS)
def test_draws_average_to_the_family_mean(name, link):
    family, _, extra, data = _case(name, link)
    eta = np.full((4000, 3), [-0.5, 0.2, 0.9])
    if data.trials is not None:
        data.trials = np.array([1.0, 5.0, 10.0])
    rng = np.random.default_rng(7)
    draws = family.draw(eta, extra, data, rng)
    per_trial = draws / (data.trials if data.trials is not None else 1.0)
    mean = family.mean(eta[0], extra)
    se = per_trial.std(axis=0) / np.sqrt(len(draws))
    assert (np.abs(per_trial.mean(axis=0) - mean) < 5 * se + 1e-12).all(), (per_trial.mean(axis=0), mean)


@pytest.mark.parametrize("name, link", [c for c in CASES if not c[0].startswith("zero")],
                         ids=[i for c, i in zip(CASES, IDS) if not c[0].startswith("zero")])
def test_working_weight_is_the_fisher_information(name, link):
    """w = Var(d log p / d eta) at one eta, by Monte Carlo over 200,000 draws (the score's
    mean is zero, its variance the Fisher information); zero-inflated weights are an
    approximation (psi times the count part's) and are left out."""
    family, _, extra, data = _case(name, link)
    eta0, h = 0.4, 1e-5
    if data.trials is not None:
        data.trials = np.array([4.0])
    y = family.draw(np.full((200_000, 1), eta0), extra, data, np.random.default_rng(1))
    if name == "beta":
        y = np.clip(y, 1e-12, 1 - 1e-12)
    score = (family.log_likelihood(y, eta0 + h, extra, data)
             - family.log_likelihood(y, eta0 - h, extra, data)) / (2 * h)
    weight = float(np.asarray(family.working_weight(np.array([eta0]), extra, data)).ravel()[0])
    assert score.var() == pytest.approx(weight, rel=0.03)


def test_each_extra_parameter_has_a_prior_key_and_a_data_scaled_default():
    data = _frame("negativebinomial")
    model = hier.Model("y ~ x + (1 | g)", data, family="zero_inflated_negativebinomial")
    table = model.priors
    assert {"alpha", "psi"} <= set(table.index)
    assert table.loc["alpha", "prior"].startswith("LogNormal(")
    assert "moment estimate" in table.loc["alpha", "source"]
    tight = hier.Model("y ~ x + (1 | g)", data, family="negativebinomial",
                       priors={"alpha": hier.Prior("Gamma", alpha=2.0, beta=0.5)})
    assert tight.priors.loc["alpha", "prior"] == "Gamma(alpha=2, beta=0.5)"
    with pytest.raises(PriorError, match="'psi'.*probability"):
        hier.Model("y ~ x + (1 | g)", data, family="zero_inflated_poisson",
                   priors={"psi": hier.Prior("HalfNormal", sigma=1.0)})
    with pytest.raises(PriorError, match="unknown"):
        hier.Model("y ~ x + (1 | g)", data, family="poisson",
                   priors={"alpha": hier.Prior("HalfNormal", sigma=1.0)})


def test_links_are_checked_per_family():
    data = _frame("bernoulli")
    with pytest.raises(SpecError, match=r"'poisson' takes link in \['log'\], but got 'probit'"):
        hier.Model("y ~ x + (1 | g)", data, family="poisson", link="probit")
    assert hier.Model("y ~ x + (1 | g)", data, family="bernoulli", link="cloglog").spec.link == "cloglog"
    spec = hier.logit_glmm("y", group="g", predictors=["x"])
    assert spec.family_object.link.name == "logit"


@pytest.mark.parametrize("family, values, words", [
    ("negativebinomial", [-1.0, 2.5], ["non-negative integer counts", "-1", "2.5"]),
    ("zero_inflated_poisson", [0.5], ["non-negative integer counts", "0.5"]),
    ("beta", [0.0, 1.0, 1.2], ["strictly between 0 and 1", "1.2"]),
    ("gamma", [0.0, -3.0], ["must be > 0", "-3"]),
])
def test_responses_outside_the_support_are_named(family, values, words):
    frame = _frame("beta" if family == "beta" else "gamma" if family == "gamma" else "poisson")
    frame.loc[frame.index[:len(values)], "y"] = values
    before = frame_hash(frame)
    with pytest.raises(DataError) as err:
        hier.Model("y ~ x + (1 | g)", frame, family=family)
    message = str(err.value)
    assert "'y'" in message and "row(s): 0" in message
    for word in words:
        assert word in message, message
    assert frame_hash(frame) == before


def test_offsets_apply_to_log_link_families_only():
    frame = _frame("gamma").assign(t=2.0)
    assert hier.Model("y ~ x + (1 | g)", frame, family="gamma", exposure="t").design.offset is not None
    with pytest.raises(SpecError, match="log-link families"):
        hier.Model("y ~ x + (1 | g)", _frame("beta").assign(t=2.0), family="beta", exposure="t")


@pytest.mark.parametrize("name, expected", [
    ("t", lambda e: e["sigma"] ** 2 * e["nu"] / (e["nu"] - 2)),
    ("gamma", lambda e: special.polygamma(1, e["alpha"])),
    ("negativebinomial", None),
    ("bernoulli", lambda e: np.pi ** 2 / 3),
])
def test_latent_residual_variances_follow_nakagawa(name, expected):
    family, _, extra, data = _case(name)
    extra = {k: np.full((2, 3, 1), v) for k, v in extra.items()}
    eta_rows = np.full((2, 3, 5), 0.7)
    value, label = family.latent_variance(eta_rows, extra, data)
    assert value.shape == (2, 3) and label
    if expected is None:   # NB2: ln(1 + 1/lambda + 1/alpha), lambda = exp(0.7)
        expected = lambda e: np.log1p(np.exp(-0.7) + 1 / e["alpha"])
    np.testing.assert_allclose(value, expected({k: v[..., 0] for k, v in extra.items()}))


def test_offset_in_the_formula_is_an_exposure_or_a_log_scale_offset():
    epil = hier.datasets.load("epil").assign(weeks=2.0)
    in_formula = hier.Model("y ~ trt + offset(log(weeks)) + (1 | subject)", epil,
                            family="negativebinomial")
    as_argument = hier.Model("y ~ trt + (1 | subject)", epil, family="negativebinomial",
                             exposure="weeks")
    assert in_formula.spec == as_argument.spec
    np.testing.assert_allclose(in_formula.design.offset, np.log(2.0))
    assert "offset(log(weeks))" in in_formula.spec.formula
    with pytest.raises(SpecError, match="give one of them"):
        hier.Model("y ~ trt + offset(log(weeks)) + (1 | subject)", epil, family="poisson",
                   exposure="weeks")
    bad = epil.assign(weeks=np.where(np.arange(len(epil)) == 4, 0.0, 2.0))
    before = frame_hash(bad)
    with pytest.raises(DataError, match=r"exposure column 'weeks' must be > 0.*row\(s\): 4"):
        hier.Model("y ~ trt + offset(log(weeks)) + (1 | subject)", bad, family="poisson")
    assert frame_hash(bad) == before


def test_model_files_take_the_new_families_and_links(tmp_path):
    from hierarchical import model_file

    path = tmp_path / "cbpp.toml"
    path.write_text('[data]\ndataset = "cbpp"\n[model]\n'
                    'formula = "incidence ~ C(period) + (1 | herd)"\n'
                    'family = "binomial"\nlink = "probit"\ntrials = "size"\n')
    spec = model_file.load(path).spec()
    assert spec.family == "binomial" and spec.family_object.link.name == "probit"
    path.write_text('[data]\ndataset = "salamanders"\n[model]\ntemplate = "random_intercepts"\n'
                    'response = "count"\ngroup = "site"\npredictors = ["mined"]\n'
                    'family = "zero_inflated_negativebinomial"\n')
    assert model_file.load(path).spec().family == "zero_inflated_negativebinomial"


DOWNSTREAM = [("t", None), ("negativebinomial", None), ("zero_inflated_poisson", None),
              ("zero_inflated_negativebinomial", None), ("gamma", None), ("beta", None),
              ("bernoulli", "probit"), ("bernoulli", "cloglog")]


@pytest.mark.parametrize("name, link", DOWNSTREAM, ids=[f"{n}-{l or 'default'}" for n, l in DOWNSTREAM])
def test_every_reading_step_works_for_every_family(name, link, tmp_path):
    """Tables, predictions (link / mean / response, seen and new levels), LOO, shrinkage,
    ICC, pooling factors, plots and a save / load round trip, on prior draws (no sampling)."""
    from .conftest import prior_fit

    frame = _frame(name, link)
    model = hier.Model("y ~ x + (1 | g)", frame, family=name, link=link)
    fit = prior_fit(model, draws=30)
    extras = [e.name for e in model.spec.family_object.extras]
    vc = fit.variance_components()
    assert [n for _, n in vc.index][1:] == extras
    new = pd.DataFrame({"x": [0.0, 1.0], "g": [0, 999]})
    for kind in ("link", "mean", "response"):
        table = fit.predict(new, kind=kind, random_seed=1)
        assert np.isfinite(table["mean"]).all(), (kind, table)
    mean = fit.predict(kind="mean", summary=False).values
    if name in ("beta", "bernoulli"):
        assert ((mean >= 0) & (mean <= 1)).all()
    else:
        assert (mean > 0).all() or name == "t"
    assert np.isfinite(fit.idata.log_likelihood["y"].values).all()
    assert fit.shrinkage()["shrinkage_model"].between(0, 1).all()
    icc = fit.icc().summary
    assert np.isfinite(icc["mean"]).all() or name == "t"    # t: nu <= 2 has no variance
    assert fit.pooling_factors()["pooling_factor"].notna().all()
    hier.plots.caterpillar(fit)
    hier.plots.variance_components(fit)
    fit.save(tmp_path / "fit.nc")
    loaded = hier.load(tmp_path / "fit.nc")
    assert loaded.model.resolved_spec == model.resolved_spec
    np.testing.assert_array_equal(loaded.idata.log_likelihood["y"].values,
                                  fit.idata.log_likelihood["y"].values)


@pytest.mark.parametrize("name", ["gaussian", "negativebinomial", "beta", "binomial"])
def test_integer_weights_are_duplicated_rows(name):
    """Frequency weights: a row of weight 2 is that row twice. The weighted graph's log
    density equals the duplicated data's at the same point of the parameters."""
    frame = _frame("bernoulli" if name == "binomial" else "t" if name == "gaussian" else name)
    if name == "binomial":
        frame = frame.assign(n=4, y=np.minimum(frame["y"] * 3, 4))
    frame["w"] = np.where(np.arange(len(frame)) % 3 == 0, 2.0, 1.0)
    doubled = pd.concat([frame, frame[frame["w"] == 2.0]], ignore_index=True)
    extra = {"trials": "n"} if name == "binomial" else {}
    weighted = hier.Model("y ~ x + (1 | g)", frame, family=name, weights="w", centered=False,
                          marginalize=False, **extra)
    same_priors = {e.key: e.prior for e in weighted.prior_entries}   # defaults scale with the data
    copies = hier.Model("y ~ x + (1 | g)", doubled, family=name, centered=False,
                        aggregate_rows=False, marginalize=False, priors=same_priors, **extra)
    assert not weighted.marginalized and weighted.sampled_design is weighted.design
    with python_evaluation():
        point = weighted.pymc_model.initial_point(random_seed=2)
        a = weighted.pymc_model.compile_logp(mode="FAST_COMPILE")(point)
        b = copies.pymc_model.compile_logp(mode="FAST_COMPILE")(point)
    assert a == pytest.approx(b, rel=1e-10)
    # the numpy log likelihood (LOO) carries the weights too
    fit = prior_fit(weighted, draws=5)
    plain = prior_fit(hier.Model("y ~ x + (1 | g)", frame, family=name, centered=False,
                                 marginalize=False, **extra), draws=5)
    np.testing.assert_allclose(fit.idata.log_likelihood["y"].values,
                               plain.idata.log_likelihood["y"].values * frame["w"].to_numpy())
    assert fit.model.full_pymc_model.observed_RVs        # prior predictive graph: unweighted


def test_weights_must_be_non_negative_numbers():
    frame = _frame("negativebinomial").assign(w=1.0)
    frame.loc[frame.index[2], "w"] = -1.0
    before = frame_hash(frame)
    with pytest.raises(DataError, match=r"weights column 'w' must be >= 0.*-1.*row\(s\): 2"):
        hier.Model("y ~ x + (1 | g)", frame, family="negativebinomial", weights="w")
    with pytest.raises(DataError, match=r"weights column 'w' is 0 in every row"):
        hier.Model("y ~ x + (1 | g)", frame.assign(w=0.0), family="negativebinomial", weights="w")
    assert frame_hash(frame) == before


@pytest.mark.slow   # compiles a forward sampler per family
@pytest.mark.parametrize("name, link", DOWNSTREAM, ids=[f"{n}-{l or 'default'}" for n, l in DOWNSTREAM])
def test_prior_predictive_draws_responses_on_the_support(name, link):
    model = hier.Model("y ~ x + (1 | g)", _frame(name, link), family=name, link=link)
    pp = model.prior_predictive(draws=50, random_seed=1)
    y = pp.idata.prior_predictive["y"].values
    assert np.isfinite(y).all()
    if name == "beta":        # float draws of extreme prior Betas may round to 0 or 1
        assert ((y >= 0) & (y <= 1)).all()
    elif name != "t":
        assert (y >= 0).all()
    assert np.isfinite(pp.summary["observed"].drop(index=["icc[g]"], errors="ignore")).all()
