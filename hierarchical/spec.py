"""Frozen, PyMC-free description of a hierarchical model.

A `ModelSpec` is what templates and formulas produce and what `Model` consumes. It holds
names only (columns, terms, families); data are bound later by `design.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .exceptions import PriorError, SpecError

POOLING = ("partial", "none")
FAMILIES = ("gaussian", "poisson", "bernoulli", "binomial", "meta")
LINKS = {"gaussian": "identity", "meta": "identity", "poisson": "log", "bernoulli": "logit",
         "binomial": "logit"}


class Prior:
    """A named PyMC distribution with fixed parameters, e.g. ``Prior("Normal", mu=0, sigma=5)``."""

    __slots__ = ("dist", "_params")

    def __init__(self, dist: str, **params: Any):
        if not isinstance(dist, str) or not dist:
            raise PriorError(f"Prior distribution must be a PyMC distribution name, but got {dist!r}")
        object.__setattr__(self, "dist", dist)
        object.__setattr__(self, "_params", tuple(sorted(params.items())))

    def __setattr__(self, name, value):
        raise AttributeError("Prior is immutable")

    def __reduce__(self):  # pickling (process and Dask workers) goes through __init__
        return (_make_prior, (self.dist, self._params))

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def __eq__(self, other):
        return isinstance(other, Prior) and (self.dist, self._params) == (other.dist, other._params)

    def __hash__(self):
        return hash((self.dist, tuple((k, float(v)) for k, v in self._params)))

    def __repr__(self):
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self._params)
        return f"{self.dist}({args})"

    def to_dict(self) -> dict:
        return {"dist": self.dist, **{k: float(v) for k, v in self._params}}

    @classmethod
    def from_dict(cls, d: dict) -> "Prior":
        d = dict(d)
        return cls(d.pop("dist"), **d)


def _make_prior(dist: str, params: tuple) -> Prior:
    return Prior(dist, **dict(params))


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else repr(v)


@dataclass(frozen=True)
class GroupTerm:
    """Group-specific effects ``(expr | group)``.

    ``group`` is a column name or an interaction of columns (``"school:class"`` for nested
    effects). ``expr`` is the lme4 left-hand side (``"1"``, ``"1 + Days"``, ``"0 + x"``).
    ``correlated=False`` is lme4's ``||``. ``centered`` picks the parameterisation: True,
    False, or ``"auto"`` (decided from the data, see ``parameterisation.py``).
    ``pooling="none"`` gives every level its own coefficients with independent weakly
    informative priors and no group SD (the no-pooling model of ``pooling.py``).
    """

    group: str
    expr: str = "1"
    correlated: bool = True
    centered: bool | str = "auto"
    pooling: str = "partial"

    def __post_init__(self):
        if self.centered not in (True, False, "auto"):
            raise SpecError(f"centered for {self.group!r} must be True, False or 'auto', "
                            f"but got {self.centered!r}")
        if self.pooling not in POOLING:
            raise SpecError(f"pooling for {self.group!r} must be one of {POOLING}, "
                            f"but got {self.pooling!r}")

    @property
    def pooled(self) -> bool:
        """True for partially pooled effects (a group distribution with SDs to estimate)."""
        return self.pooling == "partial"

    @property
    def factors(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.group.split(":"))

    @property
    def formula(self) -> str:
        bar = "|" if self.correlated else "||"
        term = f"({self.expr} {bar} {self.group})"
        return term if self.pooled else f"unpooled{term}"


@dataclass(frozen=True)
class ModelSpec:
    """What to fit: response, fixed part, group terms, family and column roles.

    ``fixed`` is the right-hand side of the population-level part in formulae syntax
    (``"1 + floor"``, ``"0 + x"``, ``"trt * period"``).
    """

    response: str
    fixed: str = "1"
    groups: tuple[GroupTerm, ...] = ()
    family: str = "gaussian"
    trials: str | None = None
    offset: str | None = None
    exposure: str | None = None
    se: str | None = None
    priors: tuple[tuple[str, Prior], ...] = field(default=())

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise SpecError(f"family must be one of {FAMILIES}, but got {self.family!r}")
        if not isinstance(self.response, str) or not self.response:
            raise SpecError(f"response must be a column name, but got {self.response!r}")
        if self.family == "binomial" and self.trials is None:
            raise SpecError("family='binomial' needs trials=<column with the number of trials>")
        if self.trials is not None and self.family != "binomial":
            raise SpecError(f"trials={self.trials!r} only applies to family='binomial', not {self.family!r}")
        if (self.offset or self.exposure) and self.family != "poisson":
            raise SpecError(f"offset/exposure only apply to family='poisson', not {self.family!r}")
        if self.offset and self.exposure:
            raise SpecError("give either offset= (log scale) or exposure= (positive), not both")
        if (self.se is None) != (self.family != "meta"):
            raise SpecError("se= (known standard errors) is required for, and only for, meta-analysis")
        names = [g.group for g in self.groups]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(f"grouping factor(s) {dupes} appear in more than one group term; "
                            "combine them into one term such as (1 + x | g) or (1 + x || g)")
        for key, prior in self.priors:
            if not isinstance(prior, Prior):
                raise PriorError(f"prior for {key!r} must be a hier.Prior, but got {prior!r}")

    @property
    def link(self) -> str:
        return LINKS[self.family]

    @property
    def prior_overrides(self) -> dict[str, Prior]:
        return dict(self.priors)

    @property
    def formula(self) -> str:
        rhs = " + ".join([self.fixed] + [g.formula for g in self.groups])
        return f"{self.response} ~ {rhs}"

    def with_priors(self, priors: dict[str, Prior] | None) -> "ModelSpec":
        """A copy with these prior overrides added (later keys win)."""
        merged = {**self.prior_overrides, **(priors or {})}
        return replace(self, priors=tuple(merged.items()))

    def with_centered(self, centered: bool | str | list[str] | dict[str, bool | str] = True
                      ) -> "ModelSpec":
        """A copy with the parameterisation set: True / False / "auto" for every factor, a
        factor name or list of names to centre (others non-centred), or a dict per factor."""
        names = [g.group for g in self.groups]
        if isinstance(centered, bool) or centered == "auto":
            choice = dict.fromkeys(names, centered)
        elif isinstance(centered, dict):
            choice = {n: centered.get(n, g.centered) for n, g in zip(names, self.groups)}
            given = set(centered)
        else:
            given = {centered} if isinstance(centered, str) else set(centered)
            choice = {n: n in given for n in names}
        unknown = [] if isinstance(centered, bool) or centered == "auto" else sorted(given - set(names))
        if unknown:
            raise SpecError(f"centered names unknown grouping factor(s) {unknown}; valid: {names}")
        return replace(self, groups=tuple(replace(g, centered=choice[g.group]) for g in self.groups))

    def to_dict(self) -> dict:
        return {"response": self.response, "fixed": self.fixed, "family": self.family,
                "groups": [vars(g).copy() for g in self.groups],
                "trials": self.trials, "offset": self.offset, "exposure": self.exposure,
                "se": self.se, "priors": {k: p.to_dict() for k, p in self.priors}}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        d = dict(d)
        d["groups"] = tuple(GroupTerm(**g) for g in d["groups"])
        d["priors"] = tuple((k, Prior.from_dict(p)) for k, p in d["priors"].items())
        return cls(**d)
