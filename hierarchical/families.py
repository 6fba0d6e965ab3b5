"""Per-family maths on numpy draws: inverse link, pointwise log likelihood, random draws.

Used after sampling (log likelihood for LOO, predictions), so it works the same whichever
back-end produced the draws.
"""

from __future__ import annotations

import numpy as np
from scipy import special


def inverse_link(family: str, eta: np.ndarray) -> np.ndarray:
    if family in ("gaussian", "meta"):
        return eta
    if family == "poisson":
        return np.exp(eta)
    return special.expit(eta)


def log_likelihood(family: str, y: np.ndarray, eta: np.ndarray, *, sigma=None, se=None,
                   trials=None) -> np.ndarray:
    """log p(y_i | eta_i, ...) elementwise; ``eta`` broadcasts against y (draws first).

    Written out rather than through scipy.stats, which is several times slower on the
    (draws x rows) arrays this sees (radon, all states: 25 million values per fit).
    """
    if family in ("gaussian", "meta"):
        scale = sigma if family == "gaussian" else se
        return _normal_logpdf(y, eta, scale)
    if family == "poisson":
        return y * eta - np.exp(eta) - special.gammaln(y + 1)
    if family == "bernoulli":
        return np.where(y == 1, -np.logaddexp(0, -eta), -np.logaddexp(0, eta))
    log_p, log_q = -np.logaddexp(0, -eta), -np.logaddexp(0, eta)
    return (special.gammaln(trials + 1) - special.gammaln(y + 1) - special.gammaln(trials - y + 1)
            + y * log_p + (trials - y) * log_q)


def _normal_logpdf(y, mean, scale):
    z = (y - mean) / scale
    z *= z
    z *= -0.5
    return z - np.log(scale) - 0.5 * np.log(2 * np.pi)


def draw_response(family: str, eta: np.ndarray, rng: np.random.Generator, *, sigma=None,
                  se=None, trials=None) -> np.ndarray:
    """One posterior predictive draw per element of ``eta``."""
    if family == "gaussian":
        return rng.normal(eta, sigma)
    if family == "meta":
        return rng.normal(eta, se)
    if family == "poisson":
        return rng.poisson(np.exp(eta)).astype(float)
    p = special.expit(eta)
    if family == "bernoulli":
        return rng.binomial(1, p).astype(float)
    return rng.binomial(trials.astype("int64"), p).astype(float)


def working_weight(family: str, eta: np.ndarray, *, sigma=None, se=None, trials=None
                   ) -> np.ndarray:
    """Fisher information of each row about its linear predictor, -d2 log p / d eta2.

    Gaussian 1 / sigma^2, meta-analysis 1 / se^2, Poisson mu, Bernoulli p (1 - p), binomial
    n p (1 - p); broadcast like ``eta`` (draws first). It is the precision a row adds to the
    group effects it loads on, which is what shrinkage is measured against.
    """
    if family == "gaussian":
        return np.broadcast_to(1.0 / sigma ** 2, eta.shape)
    if family == "meta":
        return np.broadcast_to(1.0 / se ** 2, eta.shape)
    if family == "poisson":
        return np.exp(eta)
    p = special.expit(eta)
    n = 1.0 if family == "bernoulli" else trials
    return n * p * (1 - p)
