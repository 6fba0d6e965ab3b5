"""How much each group was pulled toward the population: shrinkage, pooling factors, ICC.

All three are computed from one fit's draws (no refitting), on numpy arrays.

**Model-based shrinkage** of level j of factor g. Given the hyperparameters and the rest of
the linear predictor, the effects u_j have prior precision Sigma^-1 and gain precision
A_j = sum_{i in j} w_i z_i z_i^T from the data, w_i being the Fisher information of row i
about its linear predictor (``Family.working_weight``: 1 / sigma^2 for Gaussian rows,
mu_i for Poisson, n_i p_i (1 - p_i) for logit, 1 / se_i^2 for a meta-analysis). The
conditional posterior mean is the prior mean plus (A_j + Sigma^-1)^-1 A_j times the data's
own estimate, so the fraction pulled back to the population is

    S_j = (A_j + Sigma^-1)^-1 Sigma^-1 = (A_j Sigma + I)^-1          (k x k)

and ``shrinkage_model`` of term t is the posterior mean of S_j[t, t]; ``lambda`` is
1 - shrinkage_model, the weight on the group's own data. For a Gaussian random intercept
this is exactly lambda_j = n_j tau^2 / (sigma^2 + n_j tau^2) averaged over the posterior;
for GLMMs w_i is evaluated at each draw's linear predictor (a Laplace-style local
quadratic), for slopes it is the diagonal of the matrix shrinkage.

**Pooling factor** (Gelman & Pardoe 2006) of a factor and term, with eps_j = u_j,t:
lambda = 1 - V_j(E[eps_j]) / E[V_j(eps_j)], V_j the variance across levels. The interval
replaces the denominator by each draw's V_j(eps_j^s), so it shows how much the estimate
depends on the posterior spread of the group SD.

**ICC** per factor g: v_g / (sum_h v_h + residual variance), with v_g the mean over rows of
z_i^T Sigma_g z_i (the intercept variance tau^2 for random intercepts; with slopes, the
average variance the factor contributes at the observed covariates, Johnson 2014). The
residual variance is sigma^2 (Gaussian), pi^2 / 3 on the latent scale (logit), the
log-normal approximation ln(1 + 1 / lambda) with lambda the mean expected count at the
observed rows including the group variances (Poisson; Nakagawa, Johnson & Schielzeth 2017),
and the typical within-study variance of Higgins & Thompson (2002) for a meta-analysis, so
that the meta-analytic ICC is I^2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from . import names
from .exceptions import SpecError
from .linpred import family_draws, group_cholesky, in_sample_eta
from .summary import ci_prob, interval_columns, summarize

MAX_DRAWS = 500  # model-based shrinkage averages over at most this many (thinned) draws


def _thinned(posterior: xr.Dataset) -> xr.Dataset:
    """At most MAX_DRAWS draws in total, evenly spaced: averages, not tails, are needed."""
    step = int(np.ceil(posterior.sizes["chain"] * posterior.sizes["draw"] / MAX_DRAWS))
    return posterior.isel(draw=slice(None, None, step)) if step > 1 else posterior


def _row_weights(posterior: xr.Dataset, design) -> np.ndarray:
    """w_i per draw and row: (chain, draw, rows)."""
    eta = in_sample_eta(posterior, design)
    w = design.spec.family_object.working_weight(eta, family_draws(posterior, design), design)
    return w if design.weights is None else w * design.weights


def shrinkage_draws(posterior: xr.Dataset, design, g, chunk: int = 250) -> np.ndarray:
    """diag(S_j) per draw, level and term of one pooled factor: (chain, draw, J, k).

    Computed ``chunk`` draws at a time: GLMM row weights are (draws x rows).
    """
    k, J = len(g.term_names), len(g.levels)
    membership = sp.csr_matrix((np.ones(design.n), (np.arange(design.n), g.codes)),
                               shape=(design.n, J))
    parts = []
    for start in range(0, posterior.sizes["draw"], chunk):
        part = posterior.isel(draw=slice(start, start + chunk))
        weights = _row_weights(part, design)
        chains, draws = weights.shape[:2]
        weights = weights.reshape(chains * draws, -1)
        A = np.empty((chains * draws, J, k, k))
        for a in range(k):
            for b in range(a, k):
                A[:, :, a, b] = A[:, :, b, a] = (membership.T @ (weights * (g.Z[:, a] * g.Z[:, b])).T).T
        L = group_cholesky(part, g.name, k).reshape(chains * draws, k, k)
        Sigma = L @ np.swapaxes(L, -1, -2)
        S = np.linalg.inv(A @ Sigma[:, None] + np.eye(k))
        parts.append(np.diagonal(S, axis1=-2, axis2=-1).reshape(chains, draws, J, k))
    return np.concatenate(parts, axis=1)


def model_shrinkage(fit) -> pd.DataFrame:
    """E[S_j[t, t]] per (group, level, term) of every partially pooled factor.

    Columns ``shrinkage_model`` and ``lambda`` (= 1 - shrinkage_model); see the module
    docstring for the definition.
    """
    design = fit.model.design
    posterior = _thinned(fit.posterior)
    parts = []
    for g in design.groups:
        if not g.term.pooled:
            continue
        shrink = shrinkage_draws(posterior, design, g).mean(axis=(0, 1))          # (J, k)
        index = pd.MultiIndex.from_product([[g.name], g.levels, g.term_names],
                                           names=["group", "level", "term"])
        parts.append(pd.DataFrame({"shrinkage_model": shrink.ravel(),
                                   "lambda": 1 - shrink.ravel()}, index=index))
    return pd.concat(parts) if parts else pd.DataFrame(
        columns=["shrinkage_model", "lambda"],
        index=pd.MultiIndex.from_tuples([], names=["group", "level", "term"]))


def pooling_factors(fit, prob: float | None = None) -> pd.DataFrame:
    """Gelman & Pardoe's pooling factor per (group, term) of each partially pooled factor.

    ``pooling_factor`` is their point value, 1 - V_j(E[eps_j]) / E[V_j(eps_j)]. The interval
    is that of the model-based factor per draw, mean_j S_j[t, t] (``model_based`` is its
    posterior mean): for one term it lies in [0, 1] (with correlated slopes a diagonal entry of
    S_j can pass 1 slightly) and it equals Gelman & Pardoe's factor for a normal model with
    known variances. The per-draw ratio 1 - V_j(E[eps]) / V_j(eps^s) is no interval: it
    runs to large negative values in draws where the SD is near zero.
    """
    prob = ci_prob(prob)
    lo, hi = interval_columns(prob)
    posterior = _thinned(fit.posterior)
    rows, index = [], []
    for g in fit.model.design.groups:
        if not g.term.pooled:
            continue
        eps = fit.group_draws(g.name, "deviation").transpose(
            "chain", "draw", g.name, names.term_dim(g.name)).values
        eps = eps.reshape(-1, *eps.shape[2:])                                 # (S, J, k)
        between_means = eps.mean(axis=0).var(axis=0, ddof=1)                  # V_j(E[eps])
        mean_between = eps.var(axis=1, ddof=1).mean(axis=0)                   # E[V_j(eps)]
        model_based = shrinkage_draws(posterior, fit.model.design, g).mean(axis=2)
        model_based = model_based.reshape(-1, model_based.shape[-1])          # (S', k)
        for t, term in enumerate(g.term_names):
            index.append((g.name, term))
            rows.append({"pooling_factor": 1 - between_means[t] / mean_between[t],
                         "model_based": model_based[:, t].mean(),
                         lo: np.quantile(model_based[:, t], (1 - prob) / 2),
                         hi: np.quantile(model_based[:, t], (1 + prob) / 2),
                         "n_levels": len(g.levels)})
    columns = ["pooling_factor", "model_based", lo, hi, "n_levels"]
    return pd.DataFrame(rows, columns=columns,
                        index=pd.MultiIndex.from_tuples(index, names=["group", "term"]))


@dataclass
class ICC:
    """Posterior draws of the intraclass correlation per grouping factor.

    ``draws``: DataArray (chain, draw, group); ``residual``: how the residual (level-1)
    variance was defined for this family; ``summary``: mean, sd and interval per factor.
    """

    draws: xr.DataArray
    residual: str
    prob: float | None = None

    @property
    def summary(self) -> pd.DataFrame:
        index = pd.Index(self.draws["group"].values, name="group")
        table = summarize(self.draws, index, self.prob)
        return table.assign(residual_variance=self.residual)

    def __repr__(self) -> str:
        with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
            return f"ICC (residual variance: {self.residual})\n{self.summary.to_string()}"

    def _repr_html_(self) -> str:
        return (f"<p><b>ICC</b> (residual variance: {self.residual})</p>"
                + self.summary.to_html(float_format="{:.3f}".format))


def _factor_variances(posterior: xr.Dataset, design) -> dict[str, np.ndarray]:
    """v_g per draw: mean over rows of z_i^T Sigma_g z_i, (chain, draw) each."""
    out = {}
    for g in design.groups:
        if not g.term.pooled:
            continue
        L = group_cholesky(posterior, g.name, len(g.term_names))
        ZL = np.einsum("nk,cdkl->cdnl", g.Z, L)
        out[g.name] = (ZL ** 2).sum(axis=-1).mean(axis=-1)
    return out


def _residual_variance(posterior: xr.Dataset, design, total_group_var: np.ndarray
                       ) -> tuple[np.ndarray, str]:
    """The family's latent-scale residual variance (``Family.latent_variance``), given the
    population part of eta plus half the group variance at every row (for the families
    whose variance depends on the mean: the log-normal mean of each row)."""
    fixed = np.zeros((*total_group_var.shape, design.n))
    if design.X.shape[1]:
        fixed = np.einsum("cdp,np->cdn", posterior[names.FIXED].values, design.X)
    if design.offset is not None:
        fixed = fixed + design.offset
    eta_rows = fixed + 0.5 * total_group_var[..., None]
    return design.spec.family_object.latent_variance(eta_rows, family_draws(posterior, design), design)


def icc(fit, prob: float | None = None) -> ICC:
    """Posterior of the ICC per partially pooled grouping factor (see the module docstring)."""
    return icc_of_draws(fit.posterior, fit.model.design, prob)


def icc_of_draws(posterior: xr.Dataset, design, prob: float | None = None) -> ICC:
    """The ICC of any draws of the hyperparameters: posterior or prior."""
    variances = _factor_variances(posterior, design)
    if not variances:
        raise SpecError("the ICC needs at least one partially pooled grouping factor; this "
                        f"model has {[g.term.formula for g in design.groups] or 'none'}")
    total = sum(variances.values())
    residual, label = _residual_variance(posterior, design, total)
    values = np.stack([v / (total + residual) for v in variances.values()], axis=-1)
    draws = xr.DataArray(values, dims=("chain", "draw", "group"),
                         coords={"chain": posterior["chain"], "draw": posterior["draw"],
                                 "group": list(variances)}, name="icc")
    return ICC(draws=draws, residual=label, prob=ci_prob(prob))
