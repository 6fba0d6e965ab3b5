"""Prior sensitivity: power-scaling diagnostics on the quantities analysts report.

**Power-scaling** (Kallioinen et al. 2024, the method of R's priorsense and ``arviz.psense``):
raise the prior (or the likelihood) to a power alpha near 1, reweight the posterior draws by
Pareto-smoothed importance sampling, and measure how far each quantity's distribution moves
(cumulative Jensen-Shannon distance per unit log2(alpha), alphas 0.99 and 1.01). A prior CJS of
0.05 or more means the prior matters; a likelihood CJS under 0.05 means the data say little.

**Only the top-level priors are scaled by default** — fixed effects, group SDs,
correlations, the residual SD, and the coefficients of unpooled factors — never the
distribution of the group effects themselves. Scaling N(0, tau) of the effects (what
``arviz.psense`` does with every free variable) changes the answer with the
parameterisation: a centred fit has that density in its prior, a non-centred one only
N(0, 1) of the raw effects, a marginalised one nothing. With the top-level priors only,
all three power-scale the same joint prior p(theta)^alpha p(u | theta) and agree.

Quantities (the index of ``power_scale``): fixed-effect term names (``Intercept``,
``floor``), ``<group>_sd[<term>]``, ``<group>_corr[<term>, <term>]``, ``sigma``,
``icc[<group>]`` and ``pooling_factor[<group>, <term>]``: per draw, the mean model-based
shrinkage of the levels, mean_j S_j[t, t] (``shrinkage.py``), which is what Gelman &
Pardoe's pooling factor estimates (the two coincide in the normal model with known
variances); power-scaling needs a value per draw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache

import numpy as np
import pandas as pd
from scipy import stats
from pymc.model.transform.conditioning import remove_value_transforms
import xarray as xr
from arviz_stats import psense
from xarray import DataTree

from . import names, sampling
from .exceptions import SpecError
from .marginal import fixed_prior
from .refit_grid import prior_grid
from .shrinkage import icc_of_draws, shrinkage_draws

__all__ = ["power_scale", "prior_grid", "quantity_draws", "scaled_priors", "scaling_weights"]

THRESHOLD = 0.05
ALPHAS = (0.99, 1.01)
SAMPLE_DIMS = ("chain", "draw")

Target = Callable[[object], np.ndarray]


def scaled_priors(model, scale_priors: str = "top-level") -> list[str]:
    """Names of the free variables whose priors are power-scaled.

    ``"top-level"`` leaves out the group-effect distributions (raw ``<g>_z``, centred
    ``<g>_effect`` / ``<g>_total`` of pooled factors); ``"all"`` scales every free variable,
    as ``arviz.psense`` does.
    """
    if scale_priors not in ("top-level", "all"):
        raise SpecError(f"scale_priors must be 'top-level' or 'all', but got {scale_priors!r}")
    free = [rv.name for rv in model.pymc_model.free_RVs]
    if model.integrated_fixed:                 # integrated out while sampling, drawn after
        free.insert(0, names.FIXED)
    if scale_priors == "all":
        return free
    effects = {name(g.name) for g in model.design.groups if g.term.pooled
               for name in (names.z, names.effect, names.total)}
    return [n for n in free if n not in effects]


def _log_prior(fit, scale_priors: str) -> xr.Dataset:
    """Log density of each scaled prior at every draw, on the constrained scale (no
    Jacobian), summed within a variable: one (chain, draw) variable per prior.

    (``pm.stats.compute_log_prior`` would do, but it fails on LKJ correlation factors.)
    """
    model = remove_value_transforms(fit.model.pymc_model)
    scaled = scaled_priors(fit.model, scale_priors)
    in_graph = [n for n in scaled if n in model.named_vars]
    with sampling.numba_mode():
        density = model.compile_fn(inputs=model.value_vars,
                                   outs=[model.logp(vars=[model[n]], sum=True) for n in in_graph],
                                   on_unused_input="ignore")
    inputs = {model.rvs_to_values[rv].name: fit.posterior[rv.name].values for rv in model.free_RVs}
    chains, draws = fit.posterior.sizes["chain"], fit.posterior.sizes["draw"]
    out = np.empty((len(in_graph), chains, draws))
    for c in range(chains):
        for d in range(draws):
            out[:, c, d] = density({k: v[c, d] for k, v in inputs.items()})
    priors = {n: (SAMPLE_DIMS, out[i]) for i, n in enumerate(in_graph)}
    if names.FIXED in scaled and names.FIXED not in in_graph:   # integrated beta's Normal
        mu, tau = fixed_prior(fit.model.design, fit.model.prior_entries)
        priors[names.FIXED] = (SAMPLE_DIMS, stats.norm.logpdf(
            fit.posterior[names.FIXED].values, mu, tau).sum(axis=-1))
    return xr.Dataset({n: priors[n] for n in scaled})


def _builtin_targets(fit) -> dict[str, Target]:
    """Every default quantity, computed lazily and once: the ICC (all factors at once) and
    the per-draw shrinkage (all terms of a factor at once) need work."""
    post, design = fit.posterior, fit.model.design
    pooled = [g for g in design.groups if g.term.pooled]
    icc = cache(lambda: icc_of_draws(post, design).draws.transpose("chain", "draw", "group").values)
    shrink = cache(lambda i: shrinkage_draws(post, design, pooled[i]).mean(axis=2))  # (c, d, k)
    out: dict[str, Target] = {}
    for term in design.fixed_names:
        out[term] = lambda _, t=term: post[names.FIXED].sel({names.FIXED_DIM: t}).values
    for g in pooled:
        for term in g.term_names:
            out[names.sd_entry(g.name, term)] = (
                lambda _, g=g, t=term: post[names.sd(g.name)].sel({names.term_dim(g.name): t}).values)
        if names.corr(g.name) in post:
            for i, (a, b) in enumerate(names.pairs(g.term_names)):
                out[names.corr_entry(g.name, g.term_names[a], g.term_names[b])] = (
                    lambda _, g=g, i=i: post[names.corr(g.name)].isel({names.pair_dim(g.name): i}).values)
    for extra in design.spec.family_object.extras:    # sigma, alpha, nu, psi, kappa
        out[extra.name] = lambda _, name=extra.name: post[name].values
    for i, g in enumerate(pooled):
        out[f"icc[{g.name}]"] = lambda _, i=i: icc()[..., i]
        for t, term in enumerate(g.term_names):
            out[f"pooling_factor[{g.name}, {term}]"] = lambda _, i=i, t=t: shrink(i)[..., t]
    return out


def quantity_draws(fit, targets: Sequence[str] | Mapping[str, Target] | None = None
                   ) -> xr.Dataset:
    """Draws (chain, draw) of each quantity, one variable per label.

    ``targets``: None for every default quantity; a list of labels; or a mapping from a
    label to a function ``fit -> array (chain, draw)`` for a derived quantity of your own
    (a mapping value of None means the built-in quantity of that label).
    """
    builtin = _builtin_targets(fit)
    if targets is None:
        chosen: dict[str, Target] = builtin
    else:
        mapping = dict(targets) if isinstance(targets, Mapping) else dict.fromkeys(targets)
        unknown = [k for k, v in mapping.items() if v is None and k not in builtin]
        if unknown:
            raise SpecError(f"unknown sensitivity target(s) {unknown}; available: {list(builtin)} "
                            "(or pass {label: function(fit) -> draws} for your own)")
        chosen = {k: builtin[k] if v is None else v for k, v in mapping.items()}
    shape = (fit.posterior.sizes["chain"], fit.posterior.sizes["draw"])
    data = {}
    for label, compute in chosen.items():
        values = np.asarray(compute(fit), dtype=float)
        if values.shape != shape:
            raise SpecError(f"target {label!r} must give one value per draw, shape {shape}, "
                            f"but gave {values.shape}")
        data[label] = (SAMPLE_DIMS, values)
    return xr.Dataset(data, coords={d: fit.posterior[d] for d in SAMPLE_DIMS})


def _tree(fit, quantities: xr.Dataset, scale_priors: str) -> DataTree:
    return DataTree.from_dict({
        "posterior": quantities,
        "log_prior": _log_prior(fit, scale_priors),
        "log_likelihood": fit.idata["log_likelihood"].to_dataset(),
    })


def diagnose(prior: float, likelihood: float, threshold: float = THRESHOLD) -> str:
    """priorsense's reading of a pair of sensitivities."""
    if prior >= threshold and likelihood >= threshold:
        return "prior-data conflict"
    if prior >= threshold:
        return "strong prior / weak likelihood"
    return "-"


def power_scale(fit, targets: Sequence[str] | Mapping[str, Target] | None = None, *,
                scale_priors: str = "top-level", threshold: float = THRESHOLD,
                alphas: tuple[float, float] = ALPHAS) -> pd.DataFrame:
    """Power-scaling sensitivity of each quantity to the prior and to the likelihood.

    Returns a DataFrame indexed by quantity label with columns ``prior`` and ``likelihood``
    (CJS distances; see the module docstring) and ``diagnosis``: "prior-data conflict"
    (both >= ``threshold``), "strong prior / weak likelihood" (prior only) or "-". The
    scaled prior variables are in ``.attrs["scaled_priors"]``.
    """
    tree = _tree(fit, quantity_draws(fit, targets), scale_priors)
    sens = {group: psense(tree, group=group, alphas=alphas, sample_dims=list(SAMPLE_DIMS))
            for group in ("prior", "likelihood")}
    labels = list(tree["posterior"].data_vars)
    table = pd.DataFrame({group: [float(sens[group][label]) for label in labels]
                          for group in sens}, index=pd.Index(labels, name="quantity"))
    table["diagnosis"] = [diagnose(p, lik, threshold)
                          for p, lik in zip(table["prior"], table["likelihood"])]
    table.attrs["scaled_priors"] = scaled_priors(fit.model, scale_priors)
    table.attrs["threshold"] = threshold
    return table


def scaling_weights(fit, alphas: Sequence[float] = (0.8, 1.25), *,
                    scale_priors: str = "top-level") -> xr.DataArray:
    """Normalised PSIS weights (component, alpha, chain, draw) for power-scaling the prior
    and the likelihood by each alpha: the reweighted posteriors of the sensitivity plot."""
    log_prior = _log_prior(fit, scale_priors)
    log_lik = fit.idata["log_likelihood"].to_dataset()
    out = []
    for component in (log_prior, log_lik):
        total = component.to_stacked_array("v", sample_dims=list(SAMPLE_DIMS)).sum("v")
        per_alpha = []
        for alpha in alphas:
            lw = total.azstats.power_scale_lw(alpha=alpha, dim=list(SAMPLE_DIMS))
            w = np.exp(lw - lw.max())
            per_alpha.append(w / w.sum())
        out.append(xr.concat(per_alpha, dim="alpha"))
    return xr.concat(out, dim="component").assign_coords(
        component=["prior", "likelihood"], alpha=list(alphas)).transpose(
        "component", "alpha", *SAMPLE_DIMS)
