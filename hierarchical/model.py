"""`Model`: a spec bound to validated data, compiled to a real `pm.Model`.

scikit-learn style: the constructor validates and builds the graph (cheap); the work happens
in `fit`, and the results live on the returned `Fit`.
"""

from __future__ import annotations

import html
import time

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from xarray import DataTree

from . import graph, laplace, marginal, names, parameterisation, persist, sampling
from .aggregate import aggregate
from .design import build_design
from .diagnostics import warn_if_failed
from .exceptions import SpecError
from .fit import Fit
from .formula import from_formula
from .graph import build_pymc_model
from .marginal import build_marginal_model
from .nutpie_sampler import NutpieSampler, Route
from .prior_predictive import PriorPredictive
from .priors import priors_table, resolve_priors
from .summary import sizes_text
from .spec import ModelSpec, Prior


def _as_spec(spec, family, link, trials, offset, exposure, weights, priors) -> ModelSpec:
    if isinstance(spec, str):
        return from_formula(spec, family or "gaussian", link=link, trials=trials, offset=offset,
                            exposure=exposure, weights=weights, priors=priors)
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"Model needs a ModelSpec (from a template) or an lme4 formula string, "
                        f"but got {type(spec).__name__}")
    given = {"family": family, "link": link, "trials": trials, "offset": offset,
             "exposure": exposure, "weights": weights}
    clash = {k: v for k, v in given.items() if v is not None and v != getattr(spec, k)}
    if clash:
        raise SpecError(f"{sorted(clash)} conflict with the spec ({ {k: getattr(spec, k) for k in clash} }); "
                        "set them in the template or formula instead")
    return spec.with_priors(priors)


MARGINALIZE = (True, False, "auto", "laplace")


def _resolve_marginalize(marginalize, design) -> str | None:
    """How the effects are integrated out: "exact" (Gaussian), "laplace" or None."""
    if marginalize not in MARGINALIZE:
        raise SpecError(f"marginalize must be True, False, 'auto' or 'laplace', but got "
                        f"{marginalize!r}")
    if marginalize == "laplace":
        reason = laplace.unsupported(design)
        if reason is not None:
            raise SpecError(f"marginalize='laplace' cannot integrate the group effects out: "
                            f"{reason}")
        return "laplace"
    reason = marginal.unsupported(design)
    if marginalize is True and reason is not None:
        raise SpecError(f"marginalize=True cannot integrate the group effects out: {reason}")
    if marginalize == "auto" and reason is not None and laplace.automatic(design) is None:
        return "laplace"
    exact = reason is None if marginalize == "auto" else bool(marginalize)
    return "exact" if exact else None


class Model:
    """A hierarchical model bound to data.

    ``Model(spec_or_formula, data, family=..., link=..., trials=..., offset=..., exposure=...,
    weights=..., priors={...}, centered=..., dropna=False, marginalize="auto")``. ``weights``
    names a column of frequency weights: row i counts as weights_i observations (its log
    likelihood is multiplied by them, as lme4's and brms' weights do). ``pymc_model`` is the
    real `pm.Model` that is sampled, with named dims; ``priors`` is the table of every prior
    in use. Gaussian models integrate the effects of any number of nested or crossed
    factors out (``marginalize="auto"``, see ``marginal.py``) and draw them exactly after
    sampling, so a fit looks the same either way; Poisson and logit models integrate
    them out approximately (``marginalize="laplace"``, see ``laplace.py``), which "auto"
    does for nested factors where the approximation is accurate (``laplace.automatic``;
    the parameterisation table says so, and ``marginalize=False`` samples them);
    ``full_pymc_model`` is then the graph with explicit effects.
    Binomial, Bernoulli and Poisson rows sharing a covariate pattern and group levels are
    summed before sampling (``aggregate_rows=True``, see ``aggregate.py``).
    Every array of the design and every prior parameter enters the graph as data, so a
    model of the same structure on other data, or with other prior parameters, reuses the
    compiled sampler (``with_data``, ``with_priors``; prior grids, cross-validation).
    """

    def __init__(self, spec: ModelSpec | str, data: pd.DataFrame, *, family: str | None = None,
                 link: str | None = None, trials: str | None = None, offset: str | None = None,
                 exposure: str | None = None, weights: str | None = None,
                 priors: dict[str, Prior] | None = None,
                 centered: bool | str | list[str] | None = None, dropna: bool = False,
                 marginalize: bool | str = "auto", aggregate_rows: bool = True):
        spec = _as_spec(spec, family, link, trials, offset, exposure, weights, priors)
        if centered is not None:
            spec = spec.with_centered(centered)
        self.spec = spec
        design = build_design(spec, data, dropna=dropna)
        self.integration = _resolve_marginalize(marginalize, design)
        if self.integration:
            how = ("marginalised: effects integrated out, drawn exactly after sampling"
                   if self.integration == "exact" else
                   "Laplace approximation: effects integrated out, drawn from its Gaussian "
                   "after sampling" + (" (chosen for nested factors; marginalize=False samples "
                                       "them)" if marginalize == "auto" else ""))
            self.parameterisation_choices = [parameterisation.Choice(
                g.name, float("nan"), False, how) for g in design.groups]
        else:
            self.parameterisation_choices = parameterisation.choose(design)
        self.design = parameterisation.apply(design, self.parameterisation_choices)
        self.prior_entries = resolve_priors(self.design, spec.prior_overrides)
        self.aggregate_rows = aggregate_rows
        self.sampled_design = aggregate(self.design) if aggregate_rows else self.design
        self.dropna = dropna
        # beta integrated out with the effects (several factors, Normal priors): not a free
        # variable of the graph, drawn exactly after sampling
        self.integrated_fixed = (self.integration == "exact"
                                 and marginal.integrates_fixed(self.design, self.prior_entries))
        if self.integration == "exact":
            self._stats = marginal.sufficient_stats(self.design)
        elif self.integration == "laplace":
            self._stats = laplace.structure(self.sampled_design)
        self.pymc_model = self._build_graph()
        self.nutpie = NutpieSampler(self.pymc_model)
        self._full_model = None

    def _build_graph(self) -> pm.Model:
        if self.integration == "exact":
            return build_marginal_model(self.design, self.prior_entries, self._stats)
        if self.integration == "laplace":
            return laplace.build_laplace_model(self.sampled_design, self.prior_entries,
                                               self._stats)
        return build_pymc_model(self.sampled_design, self.prior_entries)

    @property
    def marginalized(self) -> bool:
        """Whether the group effects are integrated out while sampling (exactly or by the
        Laplace approximation) and drawn afterwards."""
        return self.integration is not None

    @property
    def options(self) -> dict:
        """The constructor options as resolved (``marginalize="auto"`` as what it chose)."""
        marginalize = "laplace" if self.integration == "laplace" else self.marginalized
        return {"marginalize": marginalize, "aggregate_rows": self.aggregate_rows,
                "dropna": self.dropna}

    @property
    def resolved_spec(self) -> ModelSpec:
        """The spec with each factor's parameterisation pinned as chosen."""
        return self.spec.with_centered({g.name: g.term.centered for g in self.design.groups})

    def construction(self) -> tuple[ModelSpec, pd.DataFrame, dict]:
        """(spec, data, options) that rebuild this model, parameterisation pinned: picklable,
        for workers that rebuild it in another process, and what a saved fit stores."""
        return self.resolved_spec, self.data, self.options

    def with_priors(self, priors: dict[str, Prior]) -> "Model":
        """The same model and data with these prior overrides added (later keys win).

        The parameterisation is kept. The compiled sampler passes to the new model when only
        prior parameters changed (not a distribution), so refitting costs no compilation.
        """
        spec, data, options = self.construction()
        return Model(spec.with_priors(priors), data, **options)._adopt_compiled(self)

    def with_data(self, data: pd.DataFrame) -> "Model":
        """The same model (spec, prior overrides, parameterisation) on new data.

        Default priors are derived again from the new data. When the new data give the
        same structure and the same sizes (rows, levels, parameterisation: a simulated or
        resampled response, a changed covariate), this process's compiled sampler is
        reused with the new values, so a refit costs no compilation: simulation-based
        calibration refits one model hundreds of times this way (``benchmarks/sbc.py``).
        Other sizes compile the same graph again, which numba's disk cache then serves.
        """
        spec, _, options = self.construction()
        return Model(spec, data, **options)._adopt_compiled(self)

    def _adopt_compiled(self, other: "Model") -> "Model":
        """Take ``other``'s compiled nutpie sampler when the graphs differ only in data."""
        if other.is_compiled and self.graph_structure() == other.graph_structure():
            self.nutpie.adopt(other.nutpie)
        return self

    def graph_structure(self) -> tuple:
        """What a compiled sampler depends on: free variables with their distributions and
        shapes, the data variables' shapes (not their values) and every constant's value."""
        free = tuple((rv.name, type(rv.owner.op).__name__, tuple(rv.type.shape))
                     for rv in self.pymc_model.free_RVs)
        data = tuple(sorted((v.name, np.shape(v.get_value())) for v in self.pymc_model.data_vars))
        return free, data, graph.constants_fingerprint(self.pymc_model)

    def prior_data(self) -> dict[str, np.ndarray]:
        """Values of the prior parameters (held as data)."""
        return {v.name: v.get_value() for v in self.pymc_model.data_vars
                if v.name.startswith("prior:")}

    @property
    def is_compiled(self) -> bool:
        """Whether the nutpie sampler is compiled (a fit will not compile again)."""
        return self.nutpie.is_compiled

    @property
    def nutpie_route(self) -> Route | None:
        """The nutpie route the compiled sampler took, and why (None before compiling)."""
        return self.nutpie.route

    @property
    def priors(self) -> pd.DataFrame:
        return priors_table(self.prior_entries)

    @property
    def parameterisation(self) -> pd.DataFrame:
        """Centred or not, per grouping factor, and why (see ``parameterisation.py``)."""
        return parameterisation.table(self.parameterisation_choices)

    @property
    def data(self) -> pd.DataFrame:
        """The validated columns the model uses (a copy of the caller's data)."""
        return self.design.data

    def __repr__(self) -> str:
        groups = ", ".join(f"{g.name} ({len(g.levels)} levels)" for g in self.design.groups)
        return (f"<hierarchical.Model {self.spec.formula!r}, family={self.spec.family}, "
                f"{self.design.n} rows; groups: {groups or 'none'}>")

    def _repr_html_(self) -> str:
        """The model as a notebook shows it: formula, data, how each factor is sampled, and
        every prior with where it came from."""
        spec, design = self.spec, self.design
        groups = "".join(f"<li>{html.escape(g.name)}: {len(g.levels)} levels, "
                         f"{sizes_text(g.counts)} rows each; terms "
                         f"{html.escape(', '.join(g.term_names))}</li>" for g in design.groups)
        effects = ("effects (and the fixed effects, Normal priors)" if self.integrated_fixed
                   else "effects")
        how = {"exact": f"{effects} integrated out while sampling, drawn exactly afterwards",
               "laplace": "effects integrated out by the Laplace approximation while "
                          "sampling, drawn from its Gaussian afterwards"}.get(
            self.integration, "effects sampled")
        return (f"<div><p><b>{html.escape(spec.formula)}</b><br>family {spec.family} (link "
                f"{spec.family_object.link.name}); {design.n} rows; {how}</p>"
                f"<ul>{groups}</ul>{self.parameterisation.to_html(border=0)}"
                f"<p><b>Priors</b></p>{self.priors.to_html(border=0)}</div>")

    @property
    def full_pymc_model(self) -> pm.Model:
        """The graph with explicit group effects on the rows as given and the response as an
        observed variable: ``pymc_model`` unless the effects are marginalised, rows
        aggregated or rows weighted (then built on first use; weights do not change prior
        predictive draws, for which it is used)."""
        if (not self.marginalized and self.sampled_design is self.design
                and self.design.weights is None):
            return self.pymc_model
        if self._full_model is None:
            with graph.unweighted():
                self._full_model = build_pymc_model(self.design, self.prior_entries)
        return self._full_model

    def prior_predictive(self, draws: int = 500, random_seed: int | None = None
                         ) -> PriorPredictive:
        """Draws from the prior and the prior predictive distribution, summarised as the
        implied ICC, spread of group means and outcome range (``.summary``; the draws are
        in ``.idata``). ``hier.plots.prior_predictive`` draws them against the data."""
        with sampling.numba_mode(), sampling.quiet_logger("pymc.sampling.forward"):
            idata = pm.sample_prior_predictive(draws=draws, model=self.full_pymc_model,
                                               random_seed=random_seed)
        return PriorPredictive(idata, self)

    def compiled_nutpie(self, route: str | None = None, *, chains: int = 4,
                        iterations: int = 2000, cores: int | None = None):
        """The nutpie-compiled model, built on first use and reused by later fits.

        ``route`` is "callback" (PyTensor's cached numba function called from Python; chains
        run one after another), "cfunc" (nutpie's compiled wrapper; parallel chains) or None
        to choose from the graph's size and the run's (``nutpie_sampler``).
        ``nutpie_route`` then says which was taken and why.
        """
        return self.nutpie.compile(route, chains=chains, iterations=iterations, cores=cores)

    def _with_drawn_effects(self, idata: DataTree, random_seed: int | None) -> DataTree:
        """Add draws of the marginalised effects: exact conditional draws, or the Laplace
        approximation's."""
        posterior = idata.posterior.to_dataset()
        rng = np.random.default_rng(None if random_seed is None else [int(random_seed), 1])
        if self.integration == "laplace":
            drawn = laplace.draw_effects(posterior, self.sampled_design, self._stats, rng)
        else:
            drawn = marginal.draw_effects(posterior, self.design, self._stats, rng,
                                          self.prior_entries)
            if names.FIXED in drawn:     # integrated out too (Normal prior), drawn first
                posterior = posterior.assign({names.FIXED: xr.DataArray(
                    drawn.pop(names.FIXED), dims=("chain", "draw", names.FIXED_DIM),
                    coords={names.FIXED_DIM: self.design.fixed_names})})
                posterior = posterior[[names.FIXED, *(v for v in posterior.data_vars
                                                      if v != names.FIXED)]]
        effects = {names.effect(g.name): xr.DataArray(
            drawn[g.name], dims=("chain", "draw", g.name, names.term_dim(g.name)),
            coords={g.name: g.levels, names.term_dim(g.name): g.term_names})
            for g in self.design.groups}
        idata["posterior"] = DataTree(posterior.assign(effects), name="posterior")
        return idata

    def _observed_data(self) -> DataTree:
        """The observed rows as the user gave them (the sampled graph may have fewer)."""
        observed = xr.Dataset({names.observed_name(self.design): (names.OBS_DIM, self.design.y)},
                              coords={names.OBS_DIM: np.arange(self.design.n)})
        return DataTree(observed, name="observed_data")

    def fit(self, draws: int = 1000, tune: int = 1000, chains: int = 4, *,
            sampler: str = "nutpie", cores: int | None = None, random_seed: int | None = None,
            progressbar: bool = True, target_accept: float | None = None, warn: bool = True,
            route: str | None = None):
        """Sample the posterior with NUTS and return a `Fit`.

        ``target_accept`` defaults to 0.95 (as rstanarm does for hierarchical models) rather
        than the usual 0.8 where group effects are sampled: their posteriors change curvature
        with the SDs, and smaller steps remove the occasional divergence. Where the effects
        are integrated out (``marginalized``) there is no such funnel, and the default is 0.9
        (`sampling.target_accept` gives the measurements).

        Warns (`ConvergenceWarning`) when r_hat > 1.01, bulk ESS < 400, any divergence or
        E-BFMI < 0.3; ``fit.diagnostics()`` gives the details. ``route`` pins nutpie's compile
        route ("callback" or "cfunc"; see ``compiled_nutpie``); ``fit.settings`` records the
        one taken with every other sampling setting.
        """
        sampling.check_sampler(sampler)
        if target_accept is None:
            target_accept = sampling.target_accept(self.marginalized)
        elif not isinstance(target_accept, int | float) or not 0 < target_accept < 1:
            raise SpecError(f"target_accept must be a number in (0, 1), but got "
                            f"{target_accept!r}")
        for name, value in {"draws": draws, "tune": tune, "chains": chains}.items():
            if not isinstance(value, int) or value < (0 if name == "tune" else 1):
                raise SpecError(f"{name} must be a positive integer, but got {value!r}")
        options = dict(draws=draws, tune=tune, chains=chains, cores=cores,
                       random_seed=random_seed, progressbar=progressbar,
                       target_accept=target_accept)
        start = time.perf_counter()
        if sampler == "nutpie":
            idata = self.nutpie.sample(route=route, **options)
        elif sampler == "numpyro" and self.integration == "laplace":
            # JAX cannot call the compiled kernel of a nesting chain (laplace_chain.py)
            graph = laplace.build_laplace_model(self.sampled_design, self.prior_entries,
                                                self._stats, kernel=False)
            idata = sampling.sample_pymc(graph, sampler=sampler, **options)
        else:
            idata = sampling.sample_pymc(self.pymc_model, sampler=sampler, **options)
        if self.marginalized:
            idata = self._with_drawn_effects(idata, random_seed)
        idata["observed_data"] = self._observed_data()
        settings = {"sampler": sampler, "draws": draws, "tune": tune, "chains": chains,
                    "random_seed": random_seed, "target_accept": target_accept,
                    "route": self.nutpie_route.name if sampler == "nutpie" else None}
        fit = Fit(self, idata, settings=settings, seconds=time.perf_counter() - start)
        if warn:
            warn_if_failed(fit.diagnostics())
        return fit


# Model options a saved fit records; fits saved before prior parameters were always data
# also recorded ``priors_as_data``, which no longer exists.
OPTIONS = ("marginalize", "aggregate_rows", "dropna")


def load(path) -> Fit:
    """Read a fit written by `Fit.save`: the same draws, on the same model (spec,
    parameterisation, priors and every option), with the same sampling settings."""
    idata, data, meta = persist.read(path)
    options = {k: v for k, v in meta["options"].items() if k in OPTIONS}
    model = Model(ModelSpec.from_dict(meta["spec"]), data, **options)
    return Fit(model, idata, settings=meta["settings"])
