"""Convergence checks with a pass/fail verdict, and the warning issued after sampling."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import arviz_stats
import numpy as np
import pandas as pd

from .exceptions import ConvergenceWarning

# arviz warns with this once per unreliable PSIS point; callers that count or refit those
# points (pooling.compare_fits, Fit.loo(reloo=True)) hold it back
PARETO_WARNING = "Estimated shape parameter of Pareto"
R_HAT_MAX = 1.01
ESS_BULK_MIN = 400
BFMI_MIN = 0.3
MAX_NAMED = 6


@dataclass
class Diagnostics:
    """Per-parameter r_hat / ESS, divergences and BFMI, judged against fixed thresholds.

    Thresholds (Vehtari et al. 2021; Betancourt 2016): r_hat <= 1.01, bulk ESS >= 400,
    no divergent transitions, E-BFMI >= 0.3 in every chain.
    """

    table: pd.DataFrame
    divergences: int
    n_draws: int
    bfmi: np.ndarray
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def __repr__(self) -> str:
        lines = [f"Convergence: {self.verdict}",
                 f"  max r_hat {self.table['r_hat'].max():.3f} (<= {R_HAT_MAX}), "
                 f"min bulk ESS {self.table['ess_bulk'].min():.0f} (>= {ESS_BULK_MIN}), "
                 f"divergences {self.divergences}/{self.n_draws}, "
                 f"min E-BFMI {np.min(self.bfmi):.2f} (>= {BFMI_MIN})"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.passed else "#cf222e"
        items = "".join(f"<li>{p}</li>" for p in self.problems)
        head = repr(self).splitlines()[1].strip()
        return (f"<p><b style='color:{colour}'>Convergence: {self.verdict}</b> &mdash; {head}</p>"
                + (f"<ul>{items}</ul>" if items else ""))


def _named(labels) -> str:
    labels = list(labels)
    more = len(labels) - MAX_NAMED
    return ", ".join(labels[:MAX_NAMED]) + (f" and {more} more" if more > 0 else "")


def check(table: pd.DataFrame, sample_stats, groups: list[str],
          target_accept: float | None = None) -> Diagnostics:
    """Judge a fit from its parameter summary table and its sample_stats group."""
    diverging = sample_stats["diverging"].values
    divergences, n_draws = int(diverging.sum()), int(diverging.size)
    bfmi = np.atleast_1d(np.asarray(arviz_stats.bfmi(sample_stats["energy"])))
    problems = []
    bad_rhat = table.index[table["r_hat"] > R_HAT_MAX]
    if len(bad_rhat):
        problems.append(f"r_hat > {R_HAT_MAX} for {_named(bad_rhat)}: chains disagree; run "
                        "longer (more tune and draws) and check the model")
    low_ess = table.index[table["ess_bulk"] < ESS_BULK_MIN]
    if len(low_ess):
        problems.append(f"bulk ESS < {ESS_BULK_MIN} for {_named(low_ess)}: draw more "
                        "(draws=, chains=) before trusting intervals")
    if divergences:
        where = f" of {groups}" if groups else ""
        higher = 0.95 if target_accept is None or target_accept < 0.95 else 0.99
        problems.append(f"{divergences} divergent transitions: the posterior geometry is hard; "
                        f"raise target_accept (e.g. fit(target_accept={higher})) or switch the "
                        f"parameterisation (centered=True/False) of the group effects{where}")
    low_bfmi = np.flatnonzero(bfmi < BFMI_MIN)
    if len(low_bfmi):
        problems.append(f"E-BFMI < {BFMI_MIN} in chain(s) {low_bfmi.tolist()}: the sampler "
                        "explores the energy poorly; reparameterise (centred vs non-centred)")
    return Diagnostics(table=table, divergences=divergences, n_draws=n_draws, bfmi=bfmi,
                       problems=problems)


def warn_if_failed(diagnostics: Diagnostics) -> None:
    """One ConvergenceWarning naming the parameters and the remedies."""
    if not diagnostics.passed:
        warnings.warn("Sampling finished but the draws are not yet trustworthy:\n"
                      + "\n".join(f"  - {p}" for p in diagnostics.problems),
                      ConvergenceWarning, stacklevel=3)
