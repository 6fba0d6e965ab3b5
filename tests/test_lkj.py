"""The LKJ prior sampled through canonical partial correlations (``lkj.py``) is PyMC's
LKJCorr prior: the same density on the correlation Cholesky factor, a correct change of
variables, and no LKJCorr random graph (a scan) in the initial-point function."""

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from pymc.distributions.multivariate import LKJCorrRV
from pymc.distributions.transforms import CholeskyCorrTransform
from pytensor.gradient import jacobian
from pytensor.graph.traversal import applys_between, graph_inputs

import hierarchical as hier
from hierarchical.lkj import CholeskyCorrCPC, LKJCorr

from .conftest import python_evaluation

MODE = pytensor.compile.mode.Mode(linker="py", optimizer="fast_compile")


def _lkj(k, eta, transform):
    with pm.Model() as model:
        kw = {} if transform is None else {"default_transform": None, "transform": transform}
        pm.LKJCorr("c", n=k, eta=eta, **kw)
    return model


@pytest.mark.parametrize("k", [2, 3, 4])
def test_transform_round_trip_and_jacobian(k):
    """backward(y) is a correlation Cholesky factor, forward inverts it, and log_jac_det
    is log|det dL/dy| over L's strictly lower entries (PyTensor's autodiff Jacobian)."""
    transform, y = CholeskyCorrCPC(k), pt.dvector("y")
    L = transform.backward(y)
    strict = np.tril_indices(k, -1)
    with python_evaluation():   # the autodiff Jacobian is a scan
        f = pytensor.function([y], [L, transform.forward(L), transform.log_jac_det(y),
                                    pt.log(pt.abs(pt.linalg.det(jacobian(L[strict], y))))],
                              mode=MODE)
    rng = np.random.default_rng(k)
    for _ in range(5):
        yv = rng.normal(0, 1.5, k * (k - 1) // 2)
        Lv, back, logdet, autodiff = f(yv)
        np.testing.assert_allclose((Lv ** 2).sum(axis=1), 1.0, rtol=1e-14)
        assert np.all(np.triu(Lv, 1) == 0) and np.all(np.diag(Lv) > 0)
        np.testing.assert_allclose(back, yv, rtol=1e-10)
        np.testing.assert_allclose(logdet, autodiff, rtol=1e-12)
    assert np.isfinite(f(np.full(k * (k - 1) // 2, 40.0))[2])   # no log(0) far out


@pytest.mark.parametrize("k, eta", [(2, 2.0), (3, 1.0), (4, 0.7)])
def test_same_density_as_pymcs_transform(k, eta):
    """At matching points (x = PyMC's coordinates of the same L): the LKJ density of L is the
    same, and the log densities differ by exactly log|dx/dy|."""
    old, new = _lkj(k, eta, None), _lkj(k, eta, CholeskyCorrCPC(k))
    y = pt.dvector("y")
    x = CholeskyCorrTransform(n=k).forward(CholeskyCorrCPC(k).backward(y))
    with python_evaluation():
        to_old = pytensor.function([y], [x, pt.log(pt.abs(pt.linalg.det(jacobian(x, y))))],
                                   mode=MODE)
        old_j, new_j = old.compile_logp(mode="FAST_COMPILE"), new.compile_logp(mode="FAST_COMPILE")
        old_c = old.compile_logp(jacobian=False, mode="FAST_COMPILE")
        new_c = new.compile_logp(jacobian=False, mode="FAST_COMPILE")
    (vo,), (vn,) = [v.name for v in old.value_vars], [v.name for v in new.value_vars]
    rng = np.random.default_rng(int(10 * eta) + k)
    for _ in range(5):
        yv = rng.normal(0, 1.0, k * (k - 1) // 2)
        xv, logdet = to_old(yv)
        np.testing.assert_allclose(new_c({vn: yv}), old_c({vo: xv}), rtol=1e-12)
        np.testing.assert_allclose(new_j({vn: yv}), old_j({vo: xv}) + logdet, rtol=1e-12)


def test_two_terms_closed_form():
    """k = 2: r = tanh(y) and the log density is (eta - 1) log(1 - r^2) + log(1 - r^2) + c."""
    eta = 3.0
    model = _lkj(2, eta, CholeskyCorrCPC(2))
    with python_evaluation():
        logp = model.compile_logp(mode="FAST_COMPILE")
    name = model.value_vars[0].name
    ys = np.array([-3.0, -0.4, 0.0, 1.1, 25.0])
    values = np.array([logp({name: np.array([v])}) for v in ys])
    log1m = 2 * (np.log(2) + ys - np.logaddexp(0, 2 * ys))      # log(1 - r^2), stably
    expected = eta * log1m
    np.testing.assert_allclose(values - values[2], expected - expected[2], rtol=1e-12)
    assert np.all(np.isfinite(values))


def test_correlated_model_samples_cpc_and_its_initial_point_draws_nothing(sleepstudy):
    """The initial point of the correlation is the identity, computed without LKJCorr's
    random graph (a scan, which nutpie's FAST_COMPILE initial-point function compiled
    with gcc), and without an initval (PyMC's model transforms refuse those)."""
    model = hier.Model("Reaction ~ Days + (Days | Subject)", sleepstudy)
    m = model.pymc_model
    assert "Subject_corr_chol_cpc__" in {v.name for v in m.value_vars}
    from pymc.initial_point import make_initial_point_expression
    expressions = make_initial_point_expression(
        free_rvs=m.free_RVs, rvs_to_transforms=m.rvs_to_transforms,
        initval_strategies=m.rvs_to_initial_values, default_strategy="support_point",
        return_transformed=True)
    nodes = applys_between(list(graph_inputs(expressions)), expressions)
    assert not any(isinstance(node.op, LKJCorrRV) for node in nodes)   # its random graph: a scan
    with python_evaluation():
        point = m.initial_point()
    np.testing.assert_array_equal(point["Subject_corr_chol_cpc__"], [0.0])   # identity
    assert all(v is None for v in m.rvs_to_initial_values.values())


@pytest.mark.slow   # NUTS on the prior alone
def test_cpc_prior_has_the_lkj_marginal():
    """For 2 terms, LKJ(eta) gives r = 2B - 1 with B ~ Beta(eta, eta): Var(r) = 1 / (2 eta + 1)."""
    with pm.Model(), python_evaluation():
        chol = LKJCorr("c", n=2, eta=2.0)
        pm.Deterministic("r", chol[1, 0])
        draws = pm.sample(draws=2000, tune=500, chains=2, random_seed=3, progressbar=False,
                          nuts_sampler="nutpie", compute_convergence_checks=False)
    r = draws.posterior["r"].values.ravel()
    assert abs(r.var() - 1 / 5) < 0.02


def test_correlations_are_the_entries_of_L_L_transposed(sleepstudy):
    """``<g>_corr`` holds (L L')_ij for each pair i < j, in ``<g>_pair`` order (k = 3)."""
    data = sleepstudy.assign(D2=(sleepstudy["Days"] - 4.5) ** 2 / 10)
    m = hier.Model("Reaction ~ Days + D2 + (Days + D2 | Subject)", data, marginalize=False).pymc_model
    value = m.rvs_to_values[m["Subject_corr_chol"]]
    with python_evaluation():
        outs = m.replace_rvs_by_values([m["Subject_corr_chol"], m["Subject_corr"]])
        read = m.compile_fn(outs=outs, inputs=[value], mode="FAST_COMPILE")
    L, corr = read({value.name: np.array([0.3, -1.2, 0.8])})
    R = L @ L.T
    np.testing.assert_allclose(corr, [R[0, 1], R[0, 2], R[1, 2]], rtol=1e-14)
    assert m.coords["Subject_pair"] == ("corr(Intercept, Days)", "corr(Intercept, D2)",
                                        "corr(Days, D2)")
