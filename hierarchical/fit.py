"""`Fit`: posterior draws plus the model that made them, read as a statistician would."""

from __future__ import annotations

import warnings
from functools import cached_property

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from xarray import DataTree

from . import diagnostics as diag
from . import effects
from . import names, persist, shrinkage
from . import predict as prediction
from .linpred import log_likelihood_group
from .summary import FitSummary, ci_prob, interval_columns, sizes_text, summarize


def _family_group(name: str) -> str:
    """The variance-components group of a family parameter: the residual SD, or the family."""
    return "residual" if name == names.SIGMA else "family"


def _parameter_label(group: str, name: str) -> str:
    """('Subject', 'Days') -> 'Subject_sd[Days]'; the corr and family rows likewise."""
    if group in ("residual", "family"):
        return name
    if name.startswith("corr("):
        return names.corr_entry(group, *name[5:-1].split(", "))
    return names.sd_entry(group, name)


class Fit:
    """A fitted model. ``idata`` is the arviz DataTree (posterior, sample_stats,
    observed_data, log_likelihood); the methods return tidy pandas tables."""

    def __init__(self, model, idata: DataTree, *, settings: dict, seconds: float | None = None):
        self.model = model
        self._idata = idata
        self.settings = dict(settings)
        self.seconds = seconds
        self._summaries: dict = {}   # group effects and ICC, by their arguments

    @property
    def sampler(self) -> str:
        return self.settings["sampler"]

    @property
    def spec(self):
        return self.model.spec

    @property
    def idata(self) -> DataTree:
        """The draws for arviz. Its pointwise log likelihood (rows x draws) is computed on
        first use, so that a fit which never meets LOO does not pay for it: Chem97's 31,022
        rows x 4,000 draws are 1 GB and a third of the fit's time."""
        if persist.LOG_LIKELIHOOD not in self._idata.children:
            self._idata[persist.LOG_LIKELIHOOD] = log_likelihood_group(self.posterior,
                                                                       self.model.design)
        return self._idata

    @property
    def tree(self) -> DataTree:
        """``idata`` as it stands, without computing the log likelihood (which it may lack)."""
        return self._idata

    @property
    def posterior(self) -> xr.Dataset:
        return self._idata.posterior.to_dataset()

    def __repr__(self) -> str:
        post = self.posterior
        return (f"<hierarchical.Fit {self.spec.formula!r} ({self.spec.family}), sampler="
                f"{self.sampler}, {post.sizes['chain']} chains x {post.sizes['draw']} draws; "
                f"convergence {self.diagnostics().verdict}>")

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def summary(self, prob: float | None = None) -> FitSummary:
        """Fixed effects, variance components and the convergence verdict in one object,
        as lme4's ``summary``: text when printed, tables in a notebook. Intervals follow
        ``arviz.rcParams["stats.ci_prob"]`` unless ``prob`` is given."""
        lo, hi = interval_columns(prob)
        columns = ["mean", "sd", lo, hi, "ess_bulk", "r_hat"]
        post, design = self.posterior, self.model.design
        groups = "; ".join(f"{g.name} ({len(g.levels)} levels, {sizes_text(g.counts)} rows each)"
                           for g in design.groups) or "none"
        link = self.spec.family_object.link.name
        header = [f"{self.spec.formula}", f"family {self.spec.family} (link {link}); "
                  f"{design.n} rows; groups: {groups}",
                  f"{post.sizes['chain']} chains x {post.sizes['draw']} draws ({self.sampler})"
                  + (f", {self.seconds:.1f} s" if self.seconds else "")]
        return FitSummary(header, self.fixed_effects(prob)[columns],
                          self.variance_components(prob)[columns], self.diagnostics())

    def fixed_effects(self, prob: float | None = None) -> pd.DataFrame:
        """One row per fixed-effect term (``Intercept``, ``Days``, ``trt[progabide]``, ...)."""
        index = pd.Index(self.model.design.fixed_names, name="term")
        draws = self.posterior[names.FIXED] if len(index) else None
        return summarize(draws, index, prob)

    def variance_components(self, prob: float | None = None) -> pd.DataFrame:
        """SDs (and correlations) per grouping factor, plus the residual SD.

        Index (group, name): ("Subject", "Intercept"), ("Subject", "corr(Intercept, Days)"),
        ("residual", "sigma"), and the family's other parameters as ("family", "alpha").
        """
        post, parts = self.posterior, []
        for g in self.model.design.groups:
            if not g.term.pooled:
                continue
            index = pd.MultiIndex.from_product([[g.name], g.term_names], names=["group", "name"])
            parts.append(summarize(post[names.sd(g.name)], index, prob))
            if names.corr(g.name) in post:
                index = pd.MultiIndex.from_product([[g.name], names.pair_labels(g.term_names)],
                                                   names=["group", "name"])
                parts.append(summarize(post[names.corr(g.name)], index, prob))
        for extra in self.spec.family_object.extras:   # sigma; alpha, nu, psi, kappa
            index = pd.MultiIndex.from_tuples([(_family_group(extra.name), extra.name)],
                                              names=["group", "name"])
            parts.append(summarize(post[extra.name].expand_dims("item", axis=-1), index, prob))
        if not parts:
            return summarize(None, pd.MultiIndex.from_tuples([], names=["group", "name"]), prob)
        return pd.concat(parts)

    def group_draws(self, group: str, kind: str = "total") -> xr.DataArray:
        """Draws of one factor's effects, dims (chain, draw, <group>, <group>_term)."""
        if kind not in ("total", "deviation"):
            raise ValueError(f"kind must be 'total' or 'deviation', but got {kind!r}")
        effect = self.posterior[names.effect(group)]
        if kind == "deviation":
            return effect
        beta = self.posterior.get(names.FIXED)
        terms = effect[names.term_dim(group)].values
        shared = [t for t in terms if beta is not None and t in beta[names.FIXED_DIM].values]
        if not shared:
            return effect
        fixed = beta.sel({names.FIXED_DIM: shared}).rename({names.FIXED_DIM: names.term_dim(group)})
        return effect + fixed.reindex({names.term_dim(group): terms}, fill_value=0.0)

    def _summarised(self, what: str, compute, *args, prob: float | None = None):
        """``compute(*args, prob)``, computed once per arguments and interval probability:
        a report asks for the group effects and the ICC in several sections (radon: 0.6 s
        each, for 386 levels)."""
        key = (what, *args, ci_prob(prob))
        if key not in self._summaries:
            self._summaries[key] = compute(*args, prob)
        value = self._summaries[key]
        return value.copy() if isinstance(value, pd.DataFrame) else value

    def group_effects(self, kind: str = "total", prob: float | None = None) -> pd.DataFrame:
        """Index (group, level, term). ``kind="deviation"`` gives u_j, ``"total"`` beta + u_j."""
        return self._summarised("group_effects", self._group_effects, kind, prob=prob)

    def _group_effects(self, kind: str, prob: float | None) -> pd.DataFrame:
        parts = []
        for g in self.model.design.groups:
            draws = self.group_draws(g.name, kind).transpose("chain", "draw", g.name, names.term_dim(g.name))
            index = pd.MultiIndex.from_product([[g.name], g.levels, g.term_names],
                                               names=["group", "level", "term"])
            parts.append(summarize(draws, index, prob))
        if not parts:
            return summarize(None, pd.MultiIndex.from_tuples([], names=["group", "level", "term"]),
                             prob)
        return pd.concat(parts)

    def icc(self, prob: float | None = None):
        """Posterior of the intraclass correlation per grouping factor (`shrinkage.ICC`)."""
        return self._summarised("icc", lambda p: shrinkage.icc(self, p), prob=prob)

    def pooling_factors(self, prob: float | None = None) -> pd.DataFrame:
        """Gelman & Pardoe (2006) pooling factor per (group, term), with an interval."""
        return shrinkage.pooling_factors(self, prob)

    def shrinkage(self) -> pd.DataFrame:
        """Model-based shrinkage toward the population per (group, level, term)."""
        return shrinkage.model_shrinkage(self)

    def predict(self, newdata: pd.DataFrame | None = None, *, kind: str = "mean",
                new_groups: str = "population", include_groups=True, summary: bool = True,
                random_seed: int | None = None, prob: float | None = None):
        """Predictions per row of ``newdata`` (default: the fitted rows).

        ``kind``: "link" | "mean" | "response"; ``new_groups``: "population" | "zero" |
        "error" for levels not seen in fitting; ``include_groups``: True (every factor's
        effects), False (none: the population-level prediction, brms' ``re_formula = NA``)
        or a list of factors. Returns a DataFrame (mean, sd, interval) or, with
        ``summary=False``, a DataArray of draws (chain, draw, __obs__). The same
        ``random_seed`` gives the same draws.
        """
        return prediction.predict(self, newdata, kind=kind, new_groups=new_groups,
                                  include_groups=include_groups, summary=summary,
                                  random_seed=random_seed, prob=prob)

    def posterior_predictive(self, random_seed: int | None = None) -> DataTree:
        """Draw replicated data y_rep for every fitted row and add them to ``idata`` as the
        ``posterior_predictive`` group (named after the response, dims chain, draw, __obs__),
        aligned with ``observed_data``: obs i is row i of ``model.data``, whatever the
        data's index or the rows ``dropna`` removed. Returns ``idata``."""
        draws = self.predict(kind="response", summary=False, random_seed=random_seed)
        name = names.observed_name(self.model.design)
        rows = np.arange(self.model.design.n)         # observed_data's coordinate (Model.fit)
        replicated = xr.Dataset({name: draws.assign_coords({names.OBS_DIM: rows})})
        self._idata["posterior_predictive"] = DataTree(replicated)
        return self.idata

    def comparisons(self, variable: str, *, comparison: str = "difference", by=None,
                    include_groups=False, newdata: pd.DataFrame | None = None, values=None,
                    prob: float | None = None, random_seed: int | None = None) -> pd.DataFrame:
        """How the expected response changes with ``variable`` (``effects.py``): each level
        against the reference, 0 -> 1, or x -> x + 1 (``values=(lo, hi)`` to choose), as a
        "difference", "ratio" or "oddsratio", averaged over the data (per ``by`` group) or
        per ``newdata`` row. Columns: estimate, sd, interval, ``p_increase``."""
        return effects.comparisons(self, variable, comparison=comparison, by=by,
                                   include_groups=include_groups, newdata=newdata,
                                   values=values, prob=prob, random_seed=random_seed)

    def save(self, path) -> None:
        """Write the fit (draws, spec, options, settings, data, package versions) to one
        compressed netCDF file; ``hier.load`` reads it back as it was."""
        persist.save(self, path)

    def loo(self, *, reloo: bool = False, k_threshold: float = 0.7, workers: int | None = None,
            client=None, random_seed: int | None = None, cache=True, progressbar: bool = True,
            **kwargs):
        """PSIS-LOO (arviz) from the stored pointwise log likelihood.

        ``reloo=True`` refits the model without each observation whose Pareto k exceeds
        ``k_threshold`` and scores it exactly (``cv.reloo``), on ``workers`` local processes
        or a Dask ``client``; other keywords go to ``arviz.loo``.
        """
        if not reloo:
            return az.loo(self.idata, **kwargs)
        from . import cv   # cv builds fold models: a cycle within the model layer

        with warnings.catch_warnings():    # the points it warns about are refitted next
            warnings.filterwarnings("ignore", message=diag.PARETO_WARNING)
            psis = az.loo(self.idata, **{**kwargs, "pointwise": True})
        return cv.reloo(self, psis, k_threshold=k_threshold, random_seed=random_seed,
                        workers=workers, client=client, cache=cache, progressbar=progressbar)

    def kfold(self, k: int | None = 10, *, by: str | None = None, stratify: str | None = None,
              random_seed: int | None = None, workers: int | None = None, client=None,
              draws_per_level: int | None = None, cache=True, progressbar: bool = True):
        """K-fold cross-validation: an ELPD object (``cv.KFold``) that ``arviz.compare`` takes.

        ``by`` (a grouping factor or column) holds whole levels out per fold: leave-group-out
        CV, held-out levels predicted as new groups (``k=None``: one fold per level).
        ``stratify`` spreads a column's values evenly over folds. Folds refit with this fit's
        sampler settings, one compile per worker, on ``workers`` local processes (default one
        per CPU) or the workers of a Dask ``client``: the same seed gives the same result on
        both. Finished folds are cached (``cache=False`` to turn off, or a directory), so an
        interrupted run resumes. See ``cv.py`` for how folds are refitted and scored.
        """
        from . import cv   # cv builds fold models: a cycle within the model layer

        return cv.kfold(self, k, by=by, stratify=stratify, random_seed=random_seed,
                        workers=workers, client=client, cache=cache, progressbar=progressbar,
                        **({} if draws_per_level is None else {"draws_per_level": draws_per_level}))

    def _checked_table(self) -> pd.DataFrame:
        """r_hat and ESS of what the sampler moved: fixed effects, variance components and,
        unless they were integrated out, the group effects. Marginalised effects are exact
        independent draws given each posterior draw, so their chains mix at least as well
        as the hyperparameters they depend on, and checking them would only cost time
        (radon, all states: 772 effects, 2.3 s)."""
        tables = [self.fixed_effects().rename(index=lambda t: f"beta[{t}]")]
        vc = self.variance_components()
        vc.index = [_parameter_label(g, n) for g, n in vc.index]
        tables.append(vc)
        if not self.model.marginalized:
            effects = self.group_effects(kind="deviation")
            effects.index = [names.effect_entry(g, lvl, t) for g, lvl, t in effects.index]
            tables.append(effects)
        return pd.concat(tables)[["r_hat", "ess_bulk", "ess_tail"]]

    @cached_property
    def _diagnostics(self) -> diag.Diagnostics:
        groups = [g.name for g in self.model.design.groups]
        return diag.check(self._checked_table(), self._idata.sample_stats, groups,
                          self.settings.get("target_accept"))

    def diagnostics(self) -> diag.Diagnostics:
        """r_hat, ESS, divergences and E-BFMI with a pass/fail verdict."""
        return self._diagnostics
