"""`Model`: a spec bound to validated data, compiled to a real `pm.Model`.

scikit-learn style: the constructor validates and builds the graph (cheap); the work happens
in `fit`, and the results live on the returned `Fit`.
"""

from __future__ import annotations

import time

import pandas as pd
import pymc as pm
from xarray import DataTree

from . import sampling
from .design import build_design
from .exceptions import SpecError
from .formula import from_formula
from .graph import build_pymc_model
from .linpred import log_likelihood_group
from .priors import priors_table, resolve_priors
from .spec import ModelSpec, Prior


def _as_spec(spec, family, trials, offset, exposure, priors) -> ModelSpec:
    if isinstance(spec, str):
        return from_formula(spec, family or "gaussian", trials=trials, offset=offset,
                            exposure=exposure, priors=priors)
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"Model needs a ModelSpec (from a template) or an lme4 formula string, "
                        f"but got {type(spec).__name__}")
    given = {"family": family, "trials": trials, "offset": offset, "exposure": exposure}
    clash = {k: v for k, v in given.items() if v is not None and v != getattr(spec, k)}
    if clash:
        raise SpecError(f"{sorted(clash)} conflict with the spec ({ {k: getattr(spec, k) for k in clash} }); "
                        "set them in the template or formula instead")
    return spec.with_priors(priors)


class Model:
    """A hierarchical model bound to data.

    ``Model(spec_or_formula, data, family=..., trials=..., offset=..., exposure=...,
    priors={...}, centered=..., dropna=False)``. ``pymc_model`` is a real `pm.Model` with named
    dims; ``priors`` is the table of every prior in use.
    """

    def __init__(self, spec: ModelSpec | str, data: pd.DataFrame, *, family: str | None = None,
                 trials: str | None = None, offset: str | None = None,
                 exposure: str | None = None, priors: dict[str, Prior] | None = None,
                 centered: bool | str | list[str] | None = None, dropna: bool = False):
        spec = _as_spec(spec, family, trials, offset, exposure, priors)
        if centered is not None:
            spec = spec.with_centered(centered)
        self.spec = spec
        self.design = build_design(spec, data, dropna=dropna)
        self.prior_entries = resolve_priors(self.design, spec.prior_overrides)
        self.pymc_model = build_pymc_model(self.design, self.prior_entries)
        self._nutpie_compiled = None

    @property
    def priors(self) -> pd.DataFrame:
        return priors_table(self.prior_entries)

    @property
    def data(self) -> pd.DataFrame:
        """The validated columns the model uses (a copy of the caller's data)."""
        return self.design.data

    def __repr__(self) -> str:
        groups = ", ".join(f"{g.name} ({len(g.levels)} levels)" for g in self.design.groups)
        return (f"<hierarchical.Model {self.spec.formula!r}, family={self.spec.family}, "
                f"{self.design.n} rows; groups: {groups or 'none'}>")

    def prior_predictive(self, draws: int = 500, random_seed: int | None = None) -> DataTree:
        """Draws from the prior and prior predictive distribution (a DataTree)."""
        with sampling.numba_mode():
            return pm.sample_prior_predictive(draws=draws, model=self.pymc_model,
                                              random_seed=random_seed)

    def compiled_nutpie(self):
        """The nutpie-compiled model, built on first use and reused by later fits."""
        if self._nutpie_compiled is None:
            self._nutpie_compiled = sampling.compile_nutpie(self.pymc_model)
        return self._nutpie_compiled

    def fit(self, draws: int = 1000, tune: int = 1000, chains: int = 4, *,
            sampler: str = "nutpie", cores: int | None = None, random_seed: int | None = None,
            progressbar: bool = True, target_accept: float | None = None, warn: bool = True):
        """Sample the posterior with NUTS and return a `Fit`.

        Warns (`ConvergenceWarning`) when r_hat > 1.01, bulk ESS < 400, any divergence or
        E-BFMI < 0.3; ``fit.diagnostics()`` gives the details.
        """
        from .fit import Fit

        sampling.check_sampler(sampler)
        for name, value in {"draws": draws, "tune": tune, "chains": chains}.items():
            if not isinstance(value, int) or value < (0 if name == "tune" else 1):
                raise SpecError(f"{name} must be a positive integer, but got {value!r}")
        options = dict(draws=draws, tune=tune, chains=chains, cores=cores,
                       random_seed=random_seed, progressbar=progressbar,
                       target_accept=target_accept)
        start = time.perf_counter()
        if sampler == "nutpie":
            idata = sampling.sample_nutpie(self.pymc_model, self.compiled_nutpie(), **options)
        else:
            idata = sampling.sample_pymc(self.pymc_model, sampler=sampler, **options)
        idata["log_likelihood"] = log_likelihood_group(idata.posterior.to_dataset(), self.design)
        fit = Fit(self, idata, sampler=sampler, seconds=time.perf_counter() - start)
        if warn:
            from .diagnostics import warn_if_failed

            warn_if_failed(fit.diagnostics())
        return fit
