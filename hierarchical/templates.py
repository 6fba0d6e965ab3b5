"""Model templates: the common hierarchical models by name, each returning a `ModelSpec`."""

from __future__ import annotations

from collections.abc import Sequence

from .exceptions import SpecError
from .spec import GroupTerm, ModelSpec, Prior


def _as_list(value, argument: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise SpecError(f"{argument} must be a column name or a list of column names, but got {value!r}")


def _fixed(predictors: list[str]) -> str:
    return " + ".join(["1", *predictors])


def _group_term(group: str, slopes: list[str], correlated: bool, centered: bool) -> GroupTerm:
    if not isinstance(group, str) or not group:
        raise SpecError(f"group must be a column name, but got {group!r}")
    return GroupTerm(group=group, expr=_fixed(slopes), correlated=correlated, centered=centered)


def _build(response, group, predictors, slopes, *, correlated=True, centered="auto",
           priors=None, **roles) -> ModelSpec:
    predictors = _as_list(predictors, "predictors")
    slopes = _as_list(slopes, "slopes")
    spec = ModelSpec(response=response, fixed=_fixed(predictors),
                     groups=(_group_term(group, slopes, correlated, centered),), **roles)
    return spec.with_priors(priors)


def random_intercepts(response: str, group: str, predictors: Sequence[str] | str | None = None,
                      *, family: str = "gaussian", priors: dict[str, Prior] | None = None,
                      centered: bool | str = "auto", **roles) -> ModelSpec:
    """``response ~ predictors + (1 | group)``: one intercept per group, partially pooled."""
    return _build(response, group, predictors, None, centered=centered, priors=priors,
                  family=family, **roles)


def random_slopes(response: str, group: str, predictors: Sequence[str] | str,
                  *, slopes: Sequence[str] | str | None = None, correlated: bool = True,
                  family: str = "gaussian", priors: dict[str, Prior] | None = None,
                  centered: bool | str = "auto", **roles) -> ModelSpec:
    """``response ~ predictors + (1 + slopes | group)``; slopes default to every predictor.

    Intercept and slopes are correlated through an LKJ prior unless ``correlated=False``
    (lme4's ``||``).
    """
    predictors = _as_list(predictors, "predictors")
    if not predictors:
        raise SpecError("random_slopes needs at least one predictor; use random_intercepts otherwise")
    slopes = predictors if slopes is None else _as_list(slopes, "slopes")
    return _build(response, group, predictors, slopes, correlated=correlated, centered=centered,
                  priors=priors, family=family, **roles)


def poisson_glmm(response: str, group: str, predictors: Sequence[str] | str | None = None,
                 *, offset: str | None = None, exposure: str | None = None,
                 slopes: Sequence[str] | str | None = None, correlated: bool = True,
                 priors: dict[str, Prior] | None = None, centered: bool | str = "auto") -> ModelSpec:
    """Poisson counts with a log link: ``log E[y] = offset + X b + Z u``.

    ``offset`` is a column already on the log scale; ``exposure`` a positive column whose log
    is used. Random slopes for the columns in ``slopes`` (default: intercepts only).
    """
    return _build(response, group, predictors, slopes, correlated=correlated, centered=centered,
                  priors=priors, family="poisson", offset=offset, exposure=exposure)


def logit_glmm(response: str, group: str, predictors: Sequence[str] | str | None = None,
               *, trials: str | None = None, slopes: Sequence[str] | str | None = None,
               correlated: bool = True, priors: dict[str, Prior] | None = None,
               centered: bool | str = "auto") -> ModelSpec:
    """Logit link: Bernoulli for 0/1 responses, binomial successes out of ``trials``."""
    family = "bernoulli" if trials is None else "binomial"
    return _build(response, group, predictors, slopes, correlated=correlated, centered=centered,
                  priors=priors, family=family, trials=trials)


def meta_analysis(estimate: str, se: str, group: str,
                  predictors: Sequence[str] | str | None = None,
                  *, priors: dict[str, Prior] | None = None, centered: bool | str = "auto") -> ModelSpec:
    """Random-effects meta-analysis: estimate_j ~ N(theta_j, se_j), theta_j ~ N(mu + x_j b, tau).

    ``mu`` is the ``Intercept`` fixed effect, ``tau`` the ``<group>`` intercept SD, theta_j the
    total group effects; ``se`` holds the known standard errors.
    """
    return _build(estimate, group, predictors, None, centered=centered, priors=priors,
                  family="meta", se=se)
