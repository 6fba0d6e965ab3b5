"""Sum binomial and Poisson rows that share a covariate pattern and group levels.

Rows with identical fixed-effect row, group levels and group-effect rows share one linear
predictor eta. For logit models their successes and trials add up (Bernoulli rows become
binomial); for Poisson models their counts add up and the offset becomes
log(sum_i exp(offset_i)). The likelihood changes only by a constant, so the posterior is the
same with fewer rows. The pointwise log likelihood (for LOO) and predictions still use the
original rows.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from .design import Design

def _pattern_ids(design: Design) -> np.ndarray:
    parts = [design.X] + [np.column_stack([g.codes, g.Z]) for g in design.groups]
    keys = pd.DataFrame(np.column_stack(parts))
    return keys.groupby(list(keys.columns), sort=False).ngroup().to_numpy()


def aggregate(design: Design) -> Design:
    """The design with duplicate covariate patterns summed; unchanged when nothing repeats."""
    how = design.spec.family_object.aggregates
    if how is None or design.weights is not None:
        return design
    ids = _pattern_ids(design)
    n_patterns = ids.max() + 1
    if n_patterns == design.n:
        return design
    first = np.unique(ids, return_index=True)[1]
    y = np.bincount(ids, weights=design.y, minlength=n_patterns)
    groups = [replace(g, codes=g.codes[first], Z=g.Z[first]) for g in design.groups]
    out = replace(design, X=design.X[first], y=y, groups=groups,
                  data=design.data.iloc[first])
    if how == "counts":
        offset = np.zeros(design.n) if design.offset is None else design.offset
        exposure = np.bincount(ids, weights=np.exp(offset), minlength=n_patterns)
        return replace(out, offset=np.log(exposure))
    trials = np.ones(design.n) if design.trials is None else design.trials
    spec = replace(design.spec, family="binomial", trials=design.spec.trials or "__trials__")
    return replace(out, spec=spec, trials=np.bincount(ids, weights=trials, minlength=n_patterns))
