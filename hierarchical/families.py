"""Response families: one object per family, holding everything family-specific.

A `Family` knows its links, its extra parameters (with data-scaled default priors), which
values its response may take, its PyMC likelihood (as a distribution name and its arguments,
so this module needs no PyMC), the numpy log likelihood and random draws used after
sampling, the expected response, the working weight that measures shrinkage, the latent-scale
residual variance of the ICC, the pilot that chooses the parameterisation, and whether rows
can be summed. Adding a family means adding one class here (and its tests).

Extra parameters are named as bambi and brms name them, and are the prior keys: ``sigma``
(Gaussian and Student-t scale), ``nu`` (t degrees of freedom), ``alpha`` (negative-binomial
and Gamma shape), ``psi`` (zero-inflated: the probability that a row comes from the count
process, PyMC's convention; 1 - psi is the structural-zero probability), ``kappa`` (Beta
precision: Beta(mu kappa, (1 - mu) kappa)).

Latent-scale residual variances for the ICC follow Nakagawa, Johnson & Schielzeth (2017, J.
R. Soc. Interface 14: 20170213), Table 1: sigma^2 (Gaussian), sigma^2 nu / (nu - 2) (t, the
variance of the t distribution; nu <= 2 has none and gives NaN), pi^2 / 3 (logit), 1 (probit),
pi^2 / 6 (cloglog), ln(1 + 1 / lambda) (Poisson, log-normal approximation),
ln(1 + 1 / lambda + 1 / alpha) (NB2), trigamma(alpha) (Gamma, log link); for the Beta on the
logit scale the exact variance of logit(y), trigamma(mu kappa) + trigamma((1 - mu) kappa);
zero-inflated families use their count part (the ICC of the counts that are not structural
zeros).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
from scipy import special

from .exceptions import SpecError
from .prior import Prior

NUMPY = SimpleNamespace(exp=np.exp, expit=special.expit, erfc=special.erfc)


# ---- links -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    """g(mu) = eta. ``inverse`` takes a math namespace (numpy here, PyTensor in the graph
    builder) so that each link is written once."""

    name: str

    def inverse(self, eta, xp=NUMPY):
        if self.name == "identity":
            return eta
        if self.name == "log":
            return xp.exp(eta)
        if self.name == "logit":
            return xp.expit(eta)
        if self.name == "probit":
            return 0.5 * xp.erfc(-eta / math.sqrt(2.0))
        if self.name == "cloglog":
            return 1.0 - xp.exp(-xp.exp(eta))
        raise SpecError(f"unknown link {self.name!r}")

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        """g(mu) on numpy values (pilots and default priors)."""
        return {"identity": lambda m: m, "log": np.log, "logit": special.logit,
                "probit": special.ndtri, "cloglog": lambda m: np.log(-np.log1p(-m))}[self.name](mu)

    def log_p_q(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log mu, log(1 - mu)) for a probability, computed stably on the eta scale."""
        if self.name == "logit":
            return -np.logaddexp(0, -eta), -np.logaddexp(0, eta)
        if self.name == "probit":
            return special.log_ndtr(eta), special.log_ndtr(-eta)
        if self.name == "cloglog":
            e = np.exp(eta)
            return np.log(-np.expm1(-e)), -e
        raise SpecError(f"link {self.name!r} is not a link for probabilities")

    def bernoulli_information(self, eta: np.ndarray) -> np.ndarray:
        """(dmu/deta)^2 / (mu (1 - mu)): one trial's Fisher information about eta, stable
        where mu rounds to 0 or 1."""
        if self.name == "logit":
            p = special.expit(eta)
            return p * (1 - p)
        if self.name == "probit":
            log_phi = -0.5 * eta ** 2 - 0.5 * math.log(2 * math.pi)
            return np.exp(2 * log_phi - special.log_ndtr(eta) - special.log_ndtr(-eta))
        with np.errstate(over="ignore"):                  # cloglog: e^(2 eta) / (e^(e^eta) - 1)
            return np.exp(2 * eta) / np.expm1(np.exp(eta))

    def dmu_deta(self, eta: np.ndarray) -> np.ndarray:
        if self.name == "identity":
            return np.ones_like(eta)
        if self.name == "log":
            return np.exp(eta)
        if self.name == "logit":
            p = special.expit(eta)
            return p * (1 - p)
        if self.name == "probit":
            return np.exp(-0.5 * eta ** 2) / math.sqrt(2 * math.pi)
        e = np.exp(eta)                                   # cloglog
        return e * np.exp(-e)


@dataclass(frozen=True)
class Extra:
    """An extra parameter of a family: its name (also its prior key) and support."""

    name: str
    support: str      # "positive" | "unit"
    meaning: str


def _lognormal_around(estimate: float, what: str) -> tuple[Prior, str]:
    """LogNormal centred on a moment estimate, two units wide on the log scale (a factor
    of about 7 either way at one SD): scaled to the data, dominated by them."""
    estimate = float(min(max(estimate, 0.1), 100.0))
    mu = float(f"{math.log(estimate):.4g}")
    return Prior("LogNormal", mu=mu, sigma=2.0), f"default: log of the moment estimate {what} = {estimate:.3g}, sd 2"


# ---- the families ------------------------------------------------------------------------

class Family:
    """Base class: a family with one link; subclasses fill in the family-specific parts."""

    name: str = ""
    links: tuple[str, ...] = ()
    extras: tuple[Extra, ...] = ()
    pymc_dist: str = ""
    aggregates: str | None = None   # "counts" (sum y and exposure) | "trials" | None
    log_link_offsets = False        # offset= / exposure= apply (a log link)
    needs_trials = False
    needs_se = False
    discrete = False                # counts or successes: zeros and maxima are worth checking
    statement = ""                  # the likelihood as a paper writes it; {m}: the mean of row i

    def __init__(self, link: str | None = None):
        link = self.links[0] if link is None else link
        if link not in self.links:
            raise SpecError(f"family {self.name!r} takes link in {list(self.links)}, but got {link!r}")
        self.link = Link(link)

    def __repr__(self) -> str:
        return f"<family {self.name}, link {self.link.name}>"

    # -- data --
    def check_response(self, y: np.ndarray) -> list[tuple[np.ndarray, str]]:
        """(mask of bad rows, what is wrong) for each violated constraint; the design checks
        the trials and names column, values and rows."""
        return []

    def outcome_scale(self, design) -> tuple[float, float, str, str]:
        """(location m, scale s, how m was found, how s was found) on the link scale, for
        the default priors of coefficients and SDs."""
        y, name = design.y, design.spec.response
        rate = self._per_unit(y, design)
        m = float(self.link(np.clip(np.mean(rate), *self._clip)))
        return m, 1.0, f"{self.link.name}(mean {name})", f"unit ({self.link.name} link)"

    _clip = (1e-2, np.inf)

    def _per_unit(self, y, design):
        return y if design.offset is None else y / np.exp(design.offset)

    def extra_priors(self, design) -> dict[str, tuple[Prior, str]]:
        return {}

    def pilot(self, design) -> tuple[np.ndarray, np.ndarray | None]:
        """The response on the link scale and each row's sampling variance there (None:
        estimate a common one from the within-group residuals)."""
        raise NotImplementedError

    # -- graph (arguments of the PyMC distribution ``pymc_dist``) --
    def pymc_kwargs(self, eta, mean, extra: dict, rows) -> dict:
        """The PyMC distribution's arguments; ``rows`` holds the per-row arrays it may read
        (``trials``, ``se``) as graph data."""
        raise NotImplementedError

    # -- after sampling (numpy; eta and extras broadcast, draws first) --
    def mean(self, eta: np.ndarray, extra: dict, design=None) -> np.ndarray:
        """The expected response (per trial for binomial rows)."""
        return self.link.inverse(eta)

    def log_likelihood(self, y, eta, extra: dict, design) -> np.ndarray:
        raise NotImplementedError

    def draw(self, eta, extra: dict, design, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def working_weight(self, eta, extra: dict, design) -> np.ndarray:
        """Fisher information of each row about its linear predictor, -E d2 log p / d eta2:
        the precision a row adds to the group effects it loads on."""
        raise NotImplementedError

    def latent_variance(self, eta_rows, extra: dict, design) -> tuple[np.ndarray, str]:
        """The ICC's residual variance on the latent (link) scale per draw, and its label.
        ``eta_rows``: the linear predictor's population part plus half the group variance,
        (chain, draw, rows), for the families whose variance depends on the mean."""
        raise NotImplementedError


def _normal_logpdf(y, mean, scale):
    z = (y - mean) / scale
    return -0.5 * z * z - np.log(scale) - 0.5 * np.log(2 * np.pi)


class Gaussian(Family):
    statement = "Normal({m}, sigma)"
    name, links, pymc_dist = "gaussian", ("identity",), "Normal"
    extras = (Extra("sigma", "positive", "residual SD"),)

    def check_response(self, y):
        return [(np.ones_like(y, bool), "is constant; nothing to model")] if np.ptp(y) == 0 else []

    def outcome_scale(self, design):
        y, name = design.y, design.spec.response
        return float(y.mean()), float(y.std(ddof=1)), f"mean({name})", f"sd({name})"

    def extra_priors(self, design):
        s = float(design.y.std(ddof=1))
        return {"sigma": (Prior("HalfNormal", sigma=float(f"{s:.4g}")),
                          f"default: sd({design.spec.response}) = {s:.4g}")}

    def pilot(self, design):
        return design.y, None

    def pymc_kwargs(self, eta, mean, extra, rows):
        return {"mu": mean, "sigma": extra["sigma"]}

    def log_likelihood(self, y, eta, extra, design):
        return _normal_logpdf(y, self.mean(eta, extra), extra["sigma"])

    def draw(self, eta, extra, design, rng):
        return rng.normal(self.mean(eta, extra), extra["sigma"])

    def working_weight(self, eta, extra, design):
        return np.broadcast_to(self.link.dmu_deta(eta) ** 2 / extra["sigma"] ** 2, eta.shape)

    def latent_variance(self, eta_rows, extra, design):
        return extra["sigma"][..., 0] ** 2, "sigma^2"


class StudentT(Gaussian):
    statement = "StudentT(nu, {m}, sigma)"
    name, links, pymc_dist = "t", ("identity",), "StudentT"
    extras = (Extra("sigma", "positive", "scale"), Extra("nu", "positive", "degrees of freedom"))

    def extra_priors(self, design):
        return {**super().extra_priors(design),
                "nu": (Prior("Gamma", alpha=2.0, beta=0.1),
                       "default: Gamma(2, 0.1) (Juarez & Steel 2010; brms' default)")}

    def pymc_kwargs(self, eta, mean, extra, rows):
        return {"mu": mean, "sigma": extra["sigma"], "nu": extra["nu"]}

    def log_likelihood(self, y, eta, extra, design):
        nu, sigma = extra["nu"], extra["sigma"]
        z = (y - eta) / sigma
        return (special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2)
                - 0.5 * np.log(nu * np.pi) - np.log(sigma) - (nu + 1) / 2 * np.log1p(z * z / nu))

    def draw(self, eta, extra, design, rng):
        nu = np.broadcast_to(extra["nu"], eta.shape)
        return eta + extra["sigma"] * rng.standard_t(nu)

    def working_weight(self, eta, extra, design):
        nu, sigma = extra["nu"], extra["sigma"]
        return np.broadcast_to((nu + 1) / ((nu + 3) * sigma ** 2), eta.shape)

    def latent_variance(self, eta_rows, extra, design):
        nu, sigma = extra["nu"][..., 0], extra["sigma"][..., 0]
        variance = np.where(nu > 2, sigma ** 2 * nu / np.where(nu > 2, nu - 2, 1.0), np.nan)
        return variance, "sigma^2 nu / (nu - 2) (t variance)"


class Meta(Family):
    """Random-effects meta-analysis: estimates with known standard errors."""
    statement = "Normal({m}, {se}_i)"

    name, links, pymc_dist, needs_se = "meta", ("identity",), "Normal", True

    def outcome_scale(self, design):
        y, name = design.y, design.spec.response
        s = float(y.std(ddof=1)) if len(y) > 1 else float(design.se.mean())
        return float(y.mean()), s, f"mean({name})", f"sd({name})"

    def pilot(self, design):
        return design.y, design.se ** 2

    def pymc_kwargs(self, eta, mean, extra, rows):
        return {"mu": mean, "sigma": rows.se}

    def log_likelihood(self, y, eta, extra, design):
        return _normal_logpdf(y, eta, design.se)

    def draw(self, eta, extra, design, rng):
        return rng.normal(eta, design.se)

    def working_weight(self, eta, extra, design):
        return np.broadcast_to(1.0 / design.se ** 2, eta.shape)

    def latent_variance(self, eta_rows, extra, design):
        w = 1.0 / design.se ** 2
        typical = (len(w) - 1) * w.sum() / (w.sum() ** 2 - (w ** 2).sum())
        return np.full(eta_rows.shape[:2], typical), "typical within-study variance (I^2)"


def _nonnegative_counts(y):
    bad = (y < 0) | (y != np.round(y))
    return [(bad, "must be non-negative integer counts")] if bad.any() else []


class Poisson(Family):
    statement = "Poisson({m})"
    discrete = True
    name, links, pymc_dist = "poisson", ("log",), "Poisson"
    aggregates, log_link_offsets = "counts", True

    def check_response(self, y):
        return _nonnegative_counts(y)

    def pilot(self, design):
        offset = 0.0 if design.offset is None else design.offset
        return np.log(design.y + 0.5) - offset, self._pilot_variance(design.y)

    def _pilot_variance(self, y):
        return 1.0 / (y + 0.5)

    def pymc_kwargs(self, eta, mean, extra, rows):
        return {"mu": mean}

    def log_likelihood(self, y, eta, extra, design):
        return y * eta - np.exp(eta) - special.gammaln(y + 1)

    def draw(self, eta, extra, design, rng):
        return rng.poisson(np.exp(eta)).astype(float)

    def working_weight(self, eta, extra, design):
        return np.exp(eta)

    def latent_variance(self, eta_rows, extra, design):
        rate = np.exp(eta_rows).mean(axis=-1)
        return np.log1p(1.0 / rate), "ln(1 + 1/lambda) (Poisson, log-normal approximation)"


def _nb_logpmf(y, mu, alpha):
    return (special.gammaln(y + alpha) - special.gammaln(alpha) - special.gammaln(y + 1)
            + alpha * (np.log(alpha) - np.log(alpha + mu)) + y * (np.log(mu) - np.log(alpha + mu)))


class NegativeBinomial(Poisson):
    """NB2: var = mu + mu^2 / alpha."""
    statement = "NegativeBinomial({m}, alpha)"

    name, pymc_dist, aggregates = "negativebinomial", "NegativeBinomial", None
    extras = (Extra("alpha", "positive", "shape: var = mu + mu^2 / alpha"),)

    def extra_priors(self, design):
        rate = self._per_unit(design.y, design)
        mean, var = float(rate.mean()), float(rate.var(ddof=1))
        estimate = mean ** 2 / (var - mean) if var > mean else 100.0
        return {"alpha": _lognormal_around(estimate, f"mean^2 / (var - mean) of {design.spec.response}")}

    def _pilot_variance(self, y):
        """var(log y) ~ 1 / mu + 1 / alpha, alpha from the moments (capped at 100)."""
        mean, var = float(np.mean(y)), float(np.var(y))
        alpha = min(mean ** 2 / (var - mean), 100.0) if var > mean else 100.0
        return 1.0 / (y + 0.5) + 1.0 / alpha

    def pymc_kwargs(self, eta, mean, extra, rows):
        return {"mu": mean, "alpha": extra["alpha"]}

    def log_likelihood(self, y, eta, extra, design):
        return _nb_logpmf(y, np.exp(eta), extra["alpha"])

    def draw(self, eta, extra, design, rng):
        alpha = np.broadcast_to(extra["alpha"], eta.shape)
        mu = np.exp(eta)
        return rng.negative_binomial(alpha, alpha / (alpha + mu)).astype(float)

    def working_weight(self, eta, extra, design):
        mu = np.exp(eta)
        return mu / (1.0 + mu / extra["alpha"])

    def latent_variance(self, eta_rows, extra, design):
        rate = np.exp(eta_rows).mean(axis=-1)
        return (np.log1p(1.0 / rate + 1.0 / extra["alpha"][..., 0]),
                "ln(1 + 1/lambda + 1/alpha) (NB2, log-normal approximation)")


class _ZeroInflated:
    """Mixin: with probability 1 - psi a structural zero, else the count family."""

    zero_extra = Extra("psi", "unit", "probability that a row comes from the count process")

    def extra_priors(self, design):
        return {**super().extra_priors(design),
                "psi": (Prior("Beta", alpha=1.0, beta=1.0), "default: Beta(1, 1) (uniform)")}

    def pymc_kwargs(self, eta, mean, extra, rows):
        return {**super().pymc_kwargs(eta, mean, extra, rows), "psi": extra["psi"]}

    def mean(self, eta, extra, design=None):
        return extra["psi"] * np.exp(eta)

    def log_likelihood(self, y, eta, extra, design):
        psi = extra["psi"]
        count = super().log_likelihood(y, eta, extra, design)
        zero_count = super().log_likelihood(np.zeros_like(y), eta, extra, design)
        at_zero = np.logaddexp(np.log1p(-psi), np.log(psi) + zero_count)
        return np.where(y == 0, at_zero, np.log(psi) + count)

    def draw(self, eta, extra, design, rng):
        counts = super().draw(eta, extra, design, rng)
        keep = rng.random(counts.shape) < np.broadcast_to(extra["psi"], counts.shape)
        return np.where(keep, counts, 0.0)

    def working_weight(self, eta, extra, design):
        return extra["psi"] * super().working_weight(eta, extra, design)


class ZeroInflatedPoisson(_ZeroInflated, Poisson):
    statement = "ZeroInflatedPoisson(psi, {m})"
    name, pymc_dist, aggregates = "zero_inflated_poisson", "ZeroInflatedPoisson", None
    extras = (_ZeroInflated.zero_extra,)


class ZeroInflatedNegativeBinomial(_ZeroInflated, NegativeBinomial):
    statement = "ZeroInflatedNegativeBinomial(psi, {m}, alpha)"
    name, pymc_dist = "zero_inflated_negativebinomial", "ZeroInflatedNegativeBinomial"
    extras = (*NegativeBinomial.extras, _ZeroInflated.zero_extra)


class Gamma(Family):
    statement = "Gamma(alpha, alpha / {m})"
    name, links, pymc_dist, log_link_offsets = "gamma", ("log",), "Gamma", True
    extras = (Extra("alpha", "positive", "shape: var = mu^2 / alpha"),)

    def check_response(self, y):
        bad = y <= 0
        return [(bad, "must be > 0 for family='gamma'")] if bad.any() else []

    def extra_priors(self, design):
        y = design.y
        return {"alpha": _lognormal_around(float(y.mean() ** 2 / max(y.var(ddof=1), 1e-12)),
                                           f"mean^2 / var of {design.spec.response}")}

    def pilot(self, design):
        offset = 0.0 if design.offset is None else design.offset
        return np.log(design.y) - offset, None

    def pymc_kwargs(self, eta, mean, extra, rows):
        return {"alpha": extra["alpha"], "beta": extra["alpha"] / mean}

    def log_likelihood(self, y, eta, extra, design):
        alpha, mu = extra["alpha"], np.exp(eta)
        return (alpha * (np.log(alpha) - eta) - special.gammaln(alpha) + (alpha - 1) * np.log(y)
                - alpha * y / mu)

    def draw(self, eta, extra, design, rng):
        alpha = np.broadcast_to(extra["alpha"], eta.shape)
        return rng.gamma(alpha, np.exp(eta) / alpha)

    def working_weight(self, eta, extra, design):
        return np.broadcast_to(extra["alpha"], eta.shape)

    def latent_variance(self, eta_rows, extra, design):
        return special.polygamma(1, extra["alpha"][..., 0]), "trigamma(alpha) (Gamma, log link)"


class Beta(Family):
    statement = "Beta({m} kappa, (1 - {m}) kappa)"
    name, links, pymc_dist = "beta", ("logit", "probit", "cloglog"), "Beta"
    extras = (Extra("kappa", "positive", "precision: Beta(mu kappa, (1 - mu) kappa)"),)
    _clip = (1e-3, 1 - 1e-3)

    def check_response(self, y):
        bad = (y <= 0) | (y >= 1)
        return [(bad, "must lie strictly between 0 and 1 for family='beta'")] if bad.any() else []

    def extra_priors(self, design):
        y = design.y
        m, v = float(y.mean()), float(y.var(ddof=1))
        return {"kappa": _lognormal_around(m * (1 - m) / max(v, 1e-12) - 1,
                                           f"mean (1 - mean) / var - 1 of {design.spec.response}")}

    def pilot(self, design):
        return self.link(design.y), None

    def pymc_kwargs(self, eta, mean, extra, rows):
        return {"alpha": mean * extra["kappa"], "beta": (1.0 - mean) * extra["kappa"]}

    def log_likelihood(self, y, eta, extra, design):
        kappa = extra["kappa"]
        mu = self.link.inverse(eta)
        a, b = mu * kappa, (1 - mu) * kappa
        return (special.gammaln(kappa) - special.gammaln(a) - special.gammaln(b)
                + (a - 1) * np.log(y) + (b - 1) * np.log1p(-y))

    def draw(self, eta, extra, design, rng):
        mu = self.link.inverse(eta)
        kappa = extra["kappa"]
        return rng.beta(mu * kappa, (1 - mu) * kappa)

    def working_weight(self, eta, extra, design):
        kappa, mu = extra["kappa"], self.link.inverse(eta)
        info_mu = kappa ** 2 * (special.polygamma(1, mu * kappa) + special.polygamma(1, (1 - mu) * kappa))
        return info_mu * self.link.dmu_deta(eta) ** 2

    def latent_variance(self, eta_rows, extra, design):
        mu = self.link.inverse(eta_rows).mean(axis=-1)
        kappa = extra["kappa"][..., 0]
        return (special.polygamma(1, mu * kappa) + special.polygamma(1, (1 - mu) * kappa),
                "trigamma(mu kappa) + trigamma((1 - mu) kappa) (variance of logit y)")


_LATENT_BINARY = {"logit": (np.pi ** 2 / 3, "pi^2/3 (logit latent scale)"),
                  "probit": (1.0, "1 (probit latent scale)"),
                  "cloglog": (np.pi ** 2 / 6, "pi^2/6 (cloglog latent scale)")}


class Binomial(Family):
    statement = "Binomial({trials}_i, {m})"
    discrete = True
    name, links, pymc_dist = "binomial", ("logit", "probit", "cloglog"), "Binomial"
    aggregates, needs_trials = "trials", True
    _clip = (0.01, 0.99)

    def _trials(self, design):
        return 1.0 if design.trials is None else design.trials

    def check_response(self, y):
        return _nonnegative_counts(y)

    def _per_unit(self, y, design):
        return y / self._trials(design)

    def pilot(self, design):
        n = self._trials(design)
        p = (design.y + 0.5) / (n + 1.0)
        eta = self.link(p)
        return eta, 1.0 / (n * self.link.dmu_deta(eta) ** 2 / (p * (1 - p)))

    def pymc_kwargs(self, eta, mean, extra, rows):
        chance = {"logit_p": eta} if self.link.name == "logit" else {"p": mean}
        return {"n": rows.trials.astype("int64"), **chance}

    def log_likelihood(self, y, eta, extra, design):
        n = self._trials(design)
        log_p, log_q = self.link.log_p_q(eta)
        return (special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)
                + y * log_p + (n - y) * log_q)

    def draw(self, eta, extra, design, rng):
        n = np.asarray(self._trials(design)).astype("int64")
        return rng.binomial(n, self.link.inverse(eta)).astype(float)

    def working_weight(self, eta, extra, design):
        return self._trials(design) * self.link.bernoulli_information(eta)

    def latent_variance(self, eta_rows, extra, design):
        value, label = _LATENT_BINARY[self.link.name]
        return np.full(eta_rows.shape[:2], value), label


class Bernoulli(Binomial):
    statement = "Bernoulli({m})"
    name, pymc_dist, needs_trials = "bernoulli", "Bernoulli", False

    def check_response(self, y):
        bad = ~np.isin(y, (0.0, 1.0))
        return [(bad, "must be 0/1 (or boolean) for family='bernoulli'")] if bad.any() else []

    def pymc_kwargs(self, eta, mean, extra, rows):
        return {"logit_p": eta} if self.link.name == "logit" else {"p": mean}


FAMILIES: dict[str, type[Family]] = {cls.name: cls for cls in (
    Gaussian, StudentT, Poisson, NegativeBinomial, ZeroInflatedPoisson,
    ZeroInflatedNegativeBinomial, Gamma, Beta, Bernoulli, Binomial, Meta)}


def get(name: str, link: str | None = None) -> Family:
    """The family ``name`` with ``link`` (its default link when None)."""
    if name not in FAMILIES:
        raise SpecError(f"family must be one of {sorted(FAMILIES)}, but got {name!r}")
    return FAMILIES[name](link)
