"""Translate a `Model`'s priors into bambi's, so bambi can fit the very same model.

Used by the cross-check tests and the benchmark ("same data and priors"). bambi names a group
SD ``"<term>|<group>"`` (a hyperprior of Normal(0, sd) effects) and a categorical fixed effect
by its variable, with one prior for all its levels.
"""

from __future__ import annotations

import re

from .exceptions import PriorError
from .priors import PriorEntry

LEVEL = re.compile(r"(?P<term>[^\[\]]+)\[(?P<level>[^\[\]]+)\]")


def group_and_term(label: str) -> tuple[str, str]:
    """'county_sd[floor]' -> ('county', 'floor')."""
    name, term = label.rstrip("]").split("[")
    return name.removesuffix("_sd"), term


def bambi_name(entry: PriorEntry) -> tuple[str, str, str | None]:
    """(bambi prior key, posterior variable, factor level or None) for one of our parameters.

    'county_sd[floor]' -> ('floor|county', 'floor|county_sigma', None);
    'trt[progabide]' -> ('trt', 'trt', 'progabide'); 'Intercept' -> ('Intercept', 'Intercept', None).
    """
    if entry.kind == "sd":
        group, term = group_and_term(entry.label)
        key = f"{'1' if term == 'Intercept' else term}|{group}"
        return key, f"{key}_sigma", None
    match = LEVEL.fullmatch(entry.label)
    if entry.kind == "fixed" and match:
        return match["term"], match["term"], match["level"]
    return entry.label, entry.label, None


def bambi_priors(model) -> dict:
    """bambi's ``priors=`` argument for the same model as ``model`` (a `hierarchical.Model`).

    The levels of one categorical term become one bambi prior with array parameters, in
    level order."""
    import bambi as bmb
    import numpy as np

    by_key: dict[str, list[PriorEntry]] = {}
    for entry in model.prior_entries:
        if entry.kind == "corr":
            raise PriorError("bambi has no correlated group effects; compare a '||' model")
        by_key.setdefault(bambi_name(entry)[0], []).append(entry)
    priors = {}
    for key, entries in by_key.items():
        if len({(e.prior.dist, tuple(e.prior.params)) for e in entries}) > 1:
            raise PriorError(f"the levels of {key!r} have priors of different families: "
                             f"{[e.prior for e in entries]}; bambi needs one family per term")
        first = entries[0]
        params = {name: (first.prior.params[name] if len(entries) == 1 else
                         np.array([e.prior.params[name] for e in entries]))
                  for name in first.prior.params}
        prior = bmb.Prior(first.prior.dist, **params)
        priors[key] = bmb.Prior("Normal", mu=0, sigma=prior) if first.kind == "sd" else prior
    return priors
