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
    """bambi's ``priors=`` argument for the same model as ``model`` (a `hierarchical.Model`)."""
    import bambi as bmb

    priors, seen = {}, {}
    for entry in model.prior_entries:
        if entry.kind == "corr":
            raise PriorError("bambi has no correlated group effects; compare a '||' model")
        key = bambi_name(entry)[0]
        signature = (entry.kind, entry.prior.dist, entry.prior.params)
        if seen.setdefault(key, signature) != signature:
            raise PriorError(f"bambi has one prior for all levels of {key!r}; ours differ")
        prior = bmb.Prior(entry.prior.dist, **entry.prior.params)
        priors[key] = bmb.Prior("Normal", mu=0, sigma=prior) if entry.kind == "sd" else prior
    return priors
