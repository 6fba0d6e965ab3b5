"""Default priors scaled to the data, user overrides, and the table of priors in use.

The rule (rstanarm-style autoscaling, on the link scale):

* ``s`` is the outcome scale: sd(y) for Gaussian and t models, sd of the estimates for a
  meta-analysis (mean se when there is one site), and 1 for log / logit / probit / cloglog
  links (``Family.outcome_scale``).
* ``m`` is the outcome location on the link scale: mean(y); g(mean(y / exposure)) for the
  count and Gamma families; g(mean(y / trials)) for binomial models (clipped to
  [0.01, 0.99]); g(mean(y)) for the Beta.
* slope of column x: ``Normal(0, 2.5 s / sd(x))``.
* ``Intercept``: ``Normal(m, sqrt((2.5 s)^2 + sum_k (2.5 s / sd(x_k))^2 mean(x_k)^2))``, i.e.
  the prior implied for the intercept at x = 0 when the intercept at the predictor means
  is ``Normal(m, 2.5 s)``: predictors need not be centred.
* group SD of term z: ``HalfNormal(s / sd(z))`` (``sd(z) = 1`` for the intercept).
* correlations: ``LKJ(eta=2)``, mildly favouring small correlations.
* each family's own parameters (``Family.extra_priors``): Gaussian and t ``sigma``
  ``HalfNormal(sd(y))``; t ``nu`` ``Gamma(2, 0.1)``; negative-binomial and Gamma shape
  ``alpha`` and Beta precision ``kappa``: ``LogNormal`` centred on their moment estimate with
  SD 2; zero-inflation ``psi`` ``Beta(1, 1)``.

Override keys (DESIGN.md): ``"Intercept"``, a fixed term name, ``"fixed"`` (all
non-intercept fixed effects), ``"<group>_sd"``, ``"<group>_sd[<term>]"``, ``"<group>_corr"``,
``"sigma"`` and the other family parameters by name (``"alpha"``, ``"nu"``, ``"psi"``,
``"kappa"``); for a factor with ``pooling="none"``, ``"<group>_coef"`` and
``"<group>_coef[<term>]"`` (each level's own coefficients, by default the fixed-effect prior
of the same term). The most specific key wins.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm

from . import names
from .design import Design
from .exceptions import PriorError
from .spec import Prior

LOCATION_SCALE = {"Normal", "StudentT", "Cauchy", "Laplace", "Logistic", "SkewNormal",
                  "Uniform", "Flat", "TruncatedNormal"}
POSITIVE = {"HalfNormal", "HalfCauchy", "HalfStudentT", "Exponential", "Gamma",
            "InverseGamma", "LogNormal", "Weibull", "HalfFlat", "Uniform", "TruncatedNormal"}
CORRELATION = {"LKJ", "LKJCorr"}
UNIT = {"Beta", "Uniform", "Kumaraswamy"}
POSITIVE_PARAMS = {"sigma", "beta", "lam", "nu", "eta", "alpha", "tau"}


@dataclass(frozen=True)
class PriorEntry:
    """One prior in use: the parameter it sits on, the key that overrides it, and why."""

    label: str        # e.g. "Days", "Subject_sd[Days]", "Subject_corr", "sigma"
    key: str          # the most specific override key for it
    kind: str         # "fixed" | "coef" | "sd" | "corr" | a family parameter's support:
                      # "positive" (sigma, alpha, nu, kappa) | "unit" (psi)
    prior: Prior
    source: str


def _r(x: float) -> float:
    return float(f"{x:.4g}")


def _column_sd(values: np.ndarray) -> float:
    sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return sd if sd > 0 else 1.0


def _slope_scale(x: np.ndarray, s: float) -> float:
    return 2.5 * s / _column_sd(x)


def _intercept_scale(design: Design, s: float) -> float:
    """2.5 s widened by the slopes' uncertainty at x = 0 (fixed and unpooled slopes alike)."""
    columns = [design.X[:, j] for j, t in enumerate(design.fixed_names) if t != "Intercept"]
    columns += [g.Z[:, j] for g in design.groups if not g.term.pooled
                for j, t in enumerate(g.term_names) if t != "Intercept"]
    return math.sqrt((2.5 * s) ** 2 + sum((_slope_scale(x, s) * x.mean()) ** 2 for x in columns))


def _coefficient_prior(term: str, x: np.ndarray, outcome: tuple, intercept_scale: float
                       ) -> tuple[Prior, str]:
    """The default prior of one coefficient (a fixed effect, or an unpooled level's own)
    and how it was found."""
    m, s, m_src, s_src = outcome
    if term == "Intercept":
        return (Prior("Normal", mu=_r(m), sigma=_r(intercept_scale)),
                f"mu = {m_src}; sigma = 2.5 * {s_src}, widened for uncentred predictors")
    scale = _slope_scale(x, s)
    return Prior("Normal", mu=0.0, sigma=_r(scale)), f"2.5 * {s_src} / sd({term}) = {_r(scale)}"


def _unpooled_priors(g, outcome: tuple, intercept_scale: float) -> list[PriorEntry]:
    """Each level's own coefficients: the fixed-effect default for the same term."""
    entries = []
    for j, term in enumerate(g.term_names):
        prior, how = _coefficient_prior(term, g.Z[:, j], outcome, intercept_scale)
        entries.append(PriorEntry(names.coef_entry(g.name, term), names.coef_entry(g.name, term), "coef",
                                  prior, f"default (no pooling): {how}"))
    return entries


def _pooled_priors(g, s: float, s_src: str) -> list[PriorEntry]:
    entries = []
    for j, term in enumerate(g.term_names):
        sd_z = 1.0 if term == "Intercept" else _column_sd(g.Z[:, j])
        scale = s / sd_z
        how = f"{s_src}" if term == "Intercept" else f"{s_src} / sd({term})"
        entries.append(PriorEntry(names.sd_entry(g.name, term), names.sd_entry(g.name, term), "sd",
                                  Prior("HalfNormal", sigma=_r(scale)),
                                  f"default: {how} = {_r(scale)}"))
    if g.term.correlated and len(g.term_names) > 1:
        entries.append(PriorEntry(names.corr(g.name), names.corr(g.name), "corr",
                                  Prior("LKJ", eta=2.0), "default: LKJ(eta=2)"))
    return entries


def default_priors(design: Design) -> list[PriorEntry]:
    """The data-scaled default prior for every parameter of the model."""
    family = design.spec.family_object
    outcome = family.outcome_scale(design)
    m, s, m_src, s_src = outcome
    intercept_scale = _intercept_scale(design, s)
    entries: list[PriorEntry] = []
    for j, term in enumerate(design.fixed_names):
        prior, how = _coefficient_prior(term, design.X[:, j], outcome, intercept_scale)
        entries.append(PriorEntry(term, term, "fixed", prior, f"default: {how}"))
    for g in design.groups:
        entries += (_pooled_priors(g, s, s_src) if g.term.pooled else
                    _unpooled_priors(g, outcome, intercept_scale))
    supports = {extra.name: extra.support for extra in family.extras}
    for name, (prior, source) in family.extra_priors(design).items():
        entries.append(PriorEntry(name, name, supports[name], prior, source))
    return entries


def _keys_for(entry: PriorEntry) -> list[str]:
    """Override keys that reach this entry, most specific first."""
    if entry.kind == "fixed":
        return [entry.label] if entry.label == "Intercept" else [entry.label, "fixed"]
    if entry.kind in ("sd", "coef"):
        return [entry.label, entry.label.split("[")[0]]
    return [entry.label]


def _validate(key: str, prior: Prior, kind: str) -> None:
    allowed = {"fixed": LOCATION_SCALE | POSITIVE, "coef": LOCATION_SCALE | POSITIVE,
               "sd": POSITIVE, "positive": POSITIVE, "unit": UNIT, "corr": CORRELATION}[kind]
    if prior.dist not in allowed:
        why = {"sd": " (an SD needs a positive distribution)",
               "positive": " (this parameter is positive)",
               "unit": " (this parameter is a probability)"}.get(kind, "")
        raise PriorError(f"prior for {key!r} must be one of {sorted(allowed)}, but got "
                         f"{prior.dist!r}{why}")
    for name, value in prior.params.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise PriorError(f"prior {prior!r} for {key!r}: parameter {name} must be a finite "
                             f"number, but got {value!r}")
        if name in POSITIVE_PARAMS and value <= 0:
            raise PriorError(f"prior {prior!r} for {key!r}: parameter {name} must be > 0, "
                             f"but got {value!r}")
    if prior.dist in CORRELATION and set(prior.params) != {"eta"}:
        raise PriorError(f"prior for {key!r} takes only eta, as in Prior('LKJ', eta=2), "
                         f"but got {prior!r}")
    if prior.dist not in CORRELATION:
        _check_pymc_signature(key, prior)


def _check_pymc_signature(key: str, prior: Prior) -> None:
    """Only the signature is inspected; no graph is built here."""
    dist = getattr(pm, prior.dist).dist
    accepted = [name for name, p in inspect.signature(dist).parameters.items()
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and name != "cls"]
    unknown = sorted(set(prior.params) - set(accepted))
    if unknown:
        raise PriorError(f"prior {prior!r} for {key!r}: pymc.{prior.dist} has no parameter(s) "
                         f"{unknown}; it takes {accepted}")
    try:
        getattr(pm, prior.dist).dist(**prior.params)
    except Exception as exc:
        raise PriorError(f"prior {prior!r} for {key!r} is not a valid pymc.{prior.dist}: "
                         f"{exc}") from None


def resolve_priors(design: Design, overrides: dict[str, Prior]) -> list[PriorEntry]:
    """Defaults with the user's overrides applied; unknown keys are an error."""
    entries = default_priors(design)
    valid = {k for e in entries for k in _keys_for(e)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise PriorError(f"unknown prior key(s) {unknown}; valid keys for this model: "
                         f"{sorted(valid)}")
    resolved = []
    for entry in entries:
        key = next((k for k in _keys_for(entry) if k in overrides), None)
        if key is None:
            resolved.append(entry)
            continue
        _validate(key, overrides[key], entry.kind)
        resolved.append(PriorEntry(entry.label, entry.key, entry.kind, overrides[key],
                                   f"user: {key!r}"))
    return resolved


def priors_table(entries: list[PriorEntry]) -> pd.DataFrame:
    """The priors in use as a DataFrame indexed by parameter label."""
    return pd.DataFrame(
        {"key": [e.key for e in entries], "prior": [repr(e.prior) for e in entries],
         "source": [e.source for e in entries]},
        index=pd.Index([e.label for e in entries], name="parameter"))
