"""The names of graph variables, dims and labels: the one place they are spelled.

The graph builder creates variables under these names and everything after sampling
(summaries, predictions, shrinkage, plots, saved fits) reads them back through the same
functions, so post-sampling code never needs the graph builder. ``g`` is a grouping factor
(e.g. ``county``), ``term`` one of its terms (``Intercept``, ``floor``).

* ``beta`` (dim ``fixed_term``): fixed effects.
* ``<g>_sd`` (dim ``<g>_term``): SD of each group-level term; ``<g>_sd[<term>]`` one of them
  (a prior key and a diagnostics label).
* ``<g>_corr_chol`` / ``<g>_corr`` (dim ``<g>_pair``): LKJ correlation, correlated terms only.
* ``<g>_z``: standard-normal raw effects (non-centred only).
* ``<g>_effect`` (dims ``<g>``, ``<g>_term``): the group deviations u_j.
* ``<g>_total``: beta + u_j, the free variable of a centred factor that absorbs the fixed
  terms it shares.
* ``<g>_coef[<term>]``: prior key of an unpooled factor's coefficients.
* ``sigma``: Gaussian residual SD; the likelihood is named after the response (dim ``__obs__``).
"""

from __future__ import annotations

from itertools import combinations

FIXED = "beta"
FIXED_DIM = "fixed_term"
SIGMA = "sigma"
OBS_DIM = "__obs__"    # bambi's name: a grouping factor may well be called "obs" (lme4's cbpp)
CV_WEIGHT = "_cv_weight"    # the data column that holds a cross-validation fold's rows out

_SUFFIXES = ("sd", "z", "effect", "total", "corr", "corr_chol", "term", "pair")
# the families' own parameters are named as bambi and brms name them (families.py)
FAMILY_PARAMETERS = frozenset({SIGMA, "alpha", "nu", "psi", "kappa"})
RESERVED = frozenset({FIXED, OBS_DIM, FIXED_DIM}) | FAMILY_PARAMETERS
# a grouping factor's levels are a dim named after it, so it may not take a variable's or dim's
# name (ArviZ keeps chain, draw and __sample__)
RESERVED_FACTOR_NAMES = RESERVED | {"chain", "draw", "__sample__"}


def sd(g: str) -> str:
    return f"{g}_sd"


def sd_entry(g: str, term: str) -> str:
    return f"{g}_sd[{term}]"


def corr(g: str) -> str:
    return f"{g}_corr"


def corr_chol(g: str) -> str:
    return f"{g}_corr_chol"


def corr_entry(g: str, first: str, second: str) -> str:
    return f"{g}_corr[{first}, {second}]"


def z(g: str) -> str:
    return f"{g}_z"


def effect(g: str) -> str:
    return f"{g}_effect"


def effect_entry(g: str, level, term: str) -> str:
    return f"{g}_effect[{level}, {term}]"


def total(g: str) -> str:
    return f"{g}_total"


def coef_entry(g: str, term: str) -> str:
    return f"{g}_coef[{term}]"


def term_dim(g: str) -> str:
    return f"{g}_term"


def pair_dim(g: str) -> str:
    return f"{g}_pair"


def fixed_entry(term: str) -> str:
    return f"{FIXED}[{term}]"


def observed_data(response: str) -> str:
    """The ``pm.Data`` holding the response."""
    return f"observed:{response}"


def design_data(name: str) -> str:
    """The ``pm.Data`` holding an array of the design (``X``, ``<g>:codes``, ...)."""
    return f"data:{name}"


def prior_data(variable: str, parameter: str) -> str:
    """The ``pm.Data`` holding one prior parameter."""
    return f"prior:{variable}:{parameter}"


def pairs(term_names) -> list[tuple[int, int]]:
    return list(combinations(range(len(term_names)), 2))


def pair_labels(term_names) -> list[str]:
    return [f"corr({term_names[i]}, {term_names[j]})" for i, j in pairs(term_names)]


def observed_name(design) -> str:
    """The likelihood is named after the response unless that clashes with a model name."""
    groups = [g.name for g in design.groups]
    taken = RESERVED | set(groups) | {f"{g}_{suffix}" for g in groups for suffix in _SUFFIXES}
    name = design.spec.response
    return f"{name}_obs" if name in taken else name
