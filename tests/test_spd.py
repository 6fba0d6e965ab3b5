"""The dense SPD blocks' kernel (log det S, V' S^-1 V): value against numpy, gradient against
central differences, the numba kernel against the Python one."""

import numpy as np
import pytest

from hierarchical import spd


def test_logdet_gram_value_and_gradient():
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(1)
    blocks, n, m = 3, 5, 4
    A = rng.normal(size=(blocks, n, n))
    S0 = A @ A.transpose(0, 2, 1) + n * np.eye(n)
    V0 = rng.normal(size=(blocks, n, m))
    W = rng.normal(size=(m, m))                   # not symmetric: the pullback symmetrises
    S, V = pt.tensor3("S"), pt.tensor3("V")
    logdet, G = spd.logdet_gram(S, V)
    out = 0.7 * logdet + (G * W).sum()
    expected = 0.7 * np.linalg.slogdet(S0)[1].sum() + sum(
        (V0[c].T @ np.linalg.solve(S0[c], V0[c]) * W).sum() for c in range(blocks))
    results = []
    for mode in ("FAST_COMPILE", "NUMBA"):
        f = pytensor.function([S, V], [out, *pt.grad(out, [S, V])], mode=mode)
        value, gS, gV = f(S0, V0)
        assert value == pytest.approx(expected, rel=1e-12)
        h = 1e-6
        for index in [(1, 2, 3), (0, 4, 4), (2, 0, 1)]:   # both triangles and the diagonal
            E = np.zeros_like(S0)
            E[index] = h
            central = (f(S0 + E, V0)[0] - f(S0 - E, V0)[0]) / (2 * h)
            assert gS[index] == pytest.approx(central, rel=1e-6, abs=1e-9)
        E = np.zeros_like(V0)
        E[2, 1, 3] = h
        central = (f(S0, V0 + E)[0] - f(S0, V0 - E)[0]) / (2 * h)
        assert gV[2, 1, 3] == pytest.approx(central, rel=1e-6)
        results.append((value, gS, gV))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_block_that_is_not_positive_definite_gives_nan_not_an_error():
    logdet, G, _, _ = spd.logdet_and_gram(-np.eye(2)[None], np.ones((1, 2, 1)))
    assert np.isnan(logdet)


@pytest.mark.interop   # JAX: the numpyro sampler's back-end, installed in the interop environment
def test_the_jax_implementation_matches():
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(2)
    A = rng.normal(size=(2, 4, 4))
    S0, V0, W = A @ A.transpose(0, 2, 1) + 4 * np.eye(4), rng.normal(size=(2, 4, 3)), rng.normal(size=(3, 3))
    S, V = pt.tensor3("S"), pt.tensor3("V")
    logdet, G = spd.logdet_gram(S, V)
    out = 0.3 * logdet + (G * W).sum()
    results = [pytensor.function([S, V], [out, *pt.grad(out, [S, V])], mode=mode)(S0, V0)
               for mode in ("FAST_COMPILE", "JAX")]
    for a, b in zip(*results):
        np.testing.assert_allclose(np.asarray(b), a, rtol=1e-10)
