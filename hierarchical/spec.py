"""Frozen, PyMC-free description of a hierarchical model.

A `ModelSpec` is what templates and formulas produce and what `Model` consumes. It holds
names only (columns, terms, families); data are bound later by `design.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from . import families
from .exceptions import PriorError, SpecError
from .prior import Prior

POOLING = ("partial", "none")
# how complete / no / partial pooling are compared: PSIS-LOO, K-fold or leave-group-out CV
CV_METHODS = ("loo", "kfold", "group")
FAMILIES = tuple(families.FAMILIES)


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
    link: str | None = None          # None: the family's default link
    trials: str | None = None
    offset: str | None = None
    exposure: str | None = None
    se: str | None = None
    weights: str | None = None       # frequency weights: row i counts as weights_i observations
    priors: tuple[tuple[str, Prior], ...] = field(default=())

    def __post_init__(self):
        family = self.family_object    # validates the family and its link
        if not isinstance(self.response, str) or not self.response:
            raise SpecError(f"response must be a column name, but got {self.response!r}")
        if family.needs_trials and self.trials is None:
            raise SpecError(f"family={self.family!r} needs trials=<column with the number of trials>")
        if self.trials is not None and not family.needs_trials:
            raise SpecError(f"trials={self.trials!r} only applies to family='binomial', not {self.family!r}")
        if (self.offset or self.exposure) and not family.log_link_offsets:
            log_families = sorted(n for n, f in families.FAMILIES.items() if f.log_link_offsets)
            raise SpecError(f"offset/exposure apply to the log-link families {log_families}, "
                            f"not {self.family!r}")
        if self.offset and self.exposure:
            raise SpecError("give either offset= (log scale) or exposure= (positive), not both")
        if (self.se is None) == family.needs_se:
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
    def family_object(self) -> families.Family:
        """The `families.Family` with its link (the family's default when ``link`` is None)."""
        return families.get(self.family, self.link)

    @property
    def prior_overrides(self) -> dict[str, Prior]:
        return dict(self.priors)

    @property
    def formula(self) -> str:
        offset = ([f"offset(log({self.exposure}))"] if self.exposure else
                  [f"offset({self.offset})"] if self.offset else [])
        rhs = " + ".join([self.fixed] + [g.formula for g in self.groups] + offset)
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
                "link": self.link,
                "groups": [vars(g).copy() for g in self.groups],
                "trials": self.trials, "offset": self.offset, "exposure": self.exposure,
                "se": self.se, "weights": self.weights, "priors": {k: p.to_dict() for k, p in self.priors}}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        d = dict(d)
        d["groups"] = tuple(GroupTerm(**g) for g in d["groups"])
        d["priors"] = tuple((k, Prior.from_dict(p)) for k, p in d["priors"].items())
        return cls(**d)
