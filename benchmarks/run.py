"""Benchmark: this toolkit against bambi (default sampler and nutpie), rstanarm and brms.

Each (case, contender) runs in its own subprocess, so compile caches are what we say they
are: "cold" points HOME, PyTensor's compile directory and numba's cache at empty folders,
"warm" reuses them. Figures per run: wall time from building the model to a finished fit, the
minimum bulk ESS over fixed effects and variance components, ESS per second, the largest
r_hat over the same parameters, divergences, and the posterior means, checked against ours
within 4 combined Monte Carlo standard errors. All contenders get the same data and
SAMPLING; each keeps its own default target acceptance (ours and rstanarm 0.95, bambi and
brms 0.8).

    python benchmarks/run.py                      # every case, warm caches
    python benchmarks/run.py --cases radon_mn_int sleepstudy --cold
    python benchmarks/run.py --first-fit          # time to first draw only
    make bench                                    # --cold: cold + warm, and time to first draw

Every subprocess runs this file's interpreter: run it with the interop environment
(.venv-interop, which has bambi) for the bambi contenders.

bambi gets our priors (``hierarchical.bambi_interop``). It has no correlated group effects, so
its (1 + x | g) is compared with our (1 + x || g), and it sits out the correlated cases.

rstanarm and brms run ``benchmarks/stan/fit.R`` through Rscript when R and the package are
installed (otherwise they are skipped with a note) on the case's data written to a CSV, with
their default priors (see PRIORS; so the agreement check also measures the prior
difference), and fit correlated effects as well. rstanarm's models are precompiled; brms
compiles a Stan program for every model, reported apart: its "warm s" is sampling only,
"total s" adds the compile. Neither keeps a compile cache between processes, so they run
once, in the warm column.

Time to first draw (``--first-fit``, and part of ``--cold``): one case per model template,
a fresh process with empty HOME and caches, one default fit (each tool's default priors and
sampler, 4 chains x (1000 + 1000): ours' and rstanarm's defaults; PyMC's default chain count
follows the cores, so bambi is given 4), phase by phase; saved under "first_fit".
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    # name: (dataset, our formula, bambi formula or None, family)
    "radon_mn_int": ("radon", "log_radon ~ floor + (1 | county)", "log_radon ~ floor + (1 | county)", "gaussian"),
    "radon_mn_slopes": ("radon", "log_radon ~ floor + (1 + floor || county)", "log_radon ~ floor + (1 + floor | county)", "gaussian"),
    "radon_mn_slopes_corr": ("radon", "log_radon ~ floor + (1 + floor | county)", None, "gaussian"),
    "radon_all_slopes": ("radon_all", "log_radon ~ floor + (1 + floor || county)", "log_radon ~ floor + (1 + floor | county)", "gaussian"),
    "radon_all_slopes_corr": ("radon_all", "log_radon ~ floor + (1 + floor | county)", None, "gaussian"),
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days || Subject)", "Reaction ~ Days + (Days | Subject)", "gaussian"),
    "epilepsy": ("epil", "y ~ trt + lbase + lage + V4 + (1 | subject)", "y ~ trt + lbase + lage + V4 + (1 | subject)", "poisson"),
    "contraception_logit": ("contraception", "use01 ~ urban + livch + (1 | district)", "use01 ~ urban + livch + (1 | district)", "bernoulli"),
    "insteval_crossed": ("insteval", "y ~ service + (1 | s) + (1 | d)", "y ~ service + (1 | s) + (1 | d)", "gaussian"),
    # family "meta": estimates with known standard errors in column "se" (meta_analysis template)
    "eight_schools": ("eight_schools", "y ~ 1 + (1 | school)", None, "meta"),
}
R_CONTENDERS = ("rstanarm", "brms")
CONTENDERS = ("hierarchical", "bambi", "bambi_nutpie", *R_CONTENDERS)
SAMPLING = dict(draws=1000, tune=1000, chains=2)
R_SKIP = {  # case: why the R contenders sit it out
    # 73,421 rows, 4,100 effects, gradient 8 ms in both; one chain on the 2-core machine:
    # rstanarm 19 warm-up iterations in 10 min, brms 4 s per iteration after 10 warm-up ones
    "insteval_crossed": "too slow (2 x 2000 iterations would take hours; see R_SKIP)",
}

# Time to first draw: one case per template (hierarchical/templates.py).
FIRST_FIT = {"random_intercepts": "radon_mn_int", "random_slopes": "sleepstudy",
             "poisson_glmm": "epilepsy", "logit_glmm": "contraception_logit",
             "meta_analysis": "eight_schools"}
FIRST_FIT_CONTENDERS = ("hierarchical", "bambi", "rstanarm", "brms")
FIRST_FIT_SAMPLING = dict(draws=1000, tune=1000, chains=4)

PRIORS = """\
Priors (checked with hier.Model(...).priors, rstanarm::prior_summary, brms::get_prior); bambi
gets ours, rstanarm and brms their defaults. s = sd(y) in Gaussian models, 1 otherwise.
  ours      Intercept Normal(mean y or link(mean y), 2.5 s, widened for uncentred predictors);
            slopes Normal(0, 2.5 s / sd(x)); group SDs HalfNormal(s), slopes' HalfNormal(s / sd(x));
            sigma HalfNormal(sd(y)); correlations LKJ(2)
  rstanarm  Intercept, predictors centred: Normal(mean y, 2.5 sd(y)), GLMs Normal(0, 2.5);
            slopes as ours; sigma Exponential(rate 1 / sd(y)); covariances decov(1, 1, 1, 1):
            LKJ(1) correlations, the variances a uniform simplex of a trace J tau^2 with tau
            ~ Exponential(1), times sigma in Gaussian models (one intercept: SD = sigma tau)
  brms      Intercept, predictors centred: Student-t(3, median(link(y)), m); slopes flat; group
            SDs and sigma half Student-t(3, 0, m); m = max(2.5, mad(link(y))) for identity and
            log links, the logit's intercept Student-t(3, 0, 2.5); correlations LKJ(1)"""


def load(dataset: str):
    import hierarchical as hier

    data = hier.datasets.load(dataset)
    if dataset == "contraception":
        data = data.assign(use01=(data["use"] == "Y").astype(int))
    if dataset == "radon_all":
        data = data[data["floor"].isin([0, 1])].reset_index(drop=True)  # drop survey codes 2, 3, 9
    return data


def our_model(case: str, data):
    """Our model for a case; the meta-analysis comes from its template, as a formula has no
    place for the known standard errors."""
    import hierarchical as hier

    _, formula, _, family = CASES[case]
    if family == "meta":
        response, group = formula.split(" ~ ")[0], formula.rsplit("| ", 1)[1].rstrip(")")
        return hier.Model(hier.meta_analysis(response, "se", group), data)
    return hier.Model(formula, data, family=family)


def why_not(case: str, contender: str) -> str | None:
    """Why a contender sits a case out (None when it runs it)."""
    family, bambi_formula = CASES[case][3], CASES[case][2]
    if contender.startswith("bambi") and bambi_formula is None:
        return "no known-SE likelihood" if family == "meta" else "no correlated group effects"
    if contender in R_CONTENDERS:
        if contender == "rstanarm" and family == "meta":
            return "no known-SE likelihood"
        return r_missing(contender) or R_SKIP.get(case)
    return None


@functools.cache
def r_missing(package: str) -> str | None:
    """Why an R contender cannot run on this machine (None when it can)."""
    if shutil.which("Rscript") is None:
        return "R is not installed (no Rscript)"
    check = f"quit(status = !all(sapply(c('{package}', 'jsonlite'), requireNamespace, quietly = TRUE)))"
    if subprocess.run(["Rscript", "-e", check], capture_output=True).returncode != 0:
        return f"R package {package} (or jsonlite) is not installed"
    return None


def summarise_ours(fit) -> dict:
    table = fit.fixed_effects()
    out = {f"beta[{t}]": _row(r) for t, r in table.iterrows()}
    for (g, name), r in fit.variance_components().iterrows():
        key = "sigma" if g == "residual" else f"{g}_sd[{name}]"
        if not name.startswith("corr("):
            out[key] = _row(r)
    return out


def _row(r) -> tuple:
    return (r["mean"], r["mcse_mean"], r["ess_bulk"], r["r_hat"])


def summarise_bambi(idata, model) -> dict:
    import arviz as az
    import numpy as np

    post = idata.posterior
    out = {}
    for name in post.data_vars:
        draws = post[name]
        extra = [d for d in draws.dims if d not in ("chain", "draw")]
        if name.endswith("_offset") or (("|" in name) and not name.endswith("_sigma")):
            continue
        if extra:
            if "__obs__" in extra:
                continue
            for level in draws[extra[0]].values:
                sub = draws.sel({extra[0]: level})
                out[f"beta[{name}[{level}]]"] = _stats(sub, az, np)
        elif name.endswith("_sigma"):
            term, group = name[:-6].split("|")
            out[f"{group}_sd[{'Intercept' if term == '1' else term}]"] = _stats(draws, az, np)
        elif name == "sigma":
            out["sigma"] = _stats(draws, az, np)
        else:
            out[f"beta[{name}]"] = _stats(draws, az, np)
    return out


def _stats(draws, az, np):
    return (float(draws.mean()), float(az.mcse(draws, method="mean")),
            float(az.ess(draws, method="bulk")), float(az.rhat(draws)))


def write_r_input(case: str, contender: str, data, folder: Path, seed: int, *, draws: int,
                  tune: int, chains: int) -> Path:
    """The case's data as a CSV and benchmarks/stan/fit.R's config beside it; the config's path.

    Text columns are named as factors (R would read a column of coded levels as numbers).
    """
    _, formula, _, family = CASES[case]
    data.to_csv(folder / "data.csv", index=False)
    factors = [c for c in data.columns if data[c].dtype.kind not in "biuf"]
    config = dict(backend=contender, data=str(folder / "data.csv"), formula=formula, family=family,
                  factors=factors, chains=chains, warmup=tune, draws=draws,
                  cores=min(chains, os.cpu_count() or 1), seed=seed)
    (folder / "config.json").write_text(json.dumps(config))
    return folder / "config.json"


def run_r(config: Path, env: dict | None = None) -> dict:
    """fit.R on a config from write_r_input: its timings and summaries (see fit.R)."""
    out = config.with_name("out.json")
    script = Path(__file__).parent / "stan" / "fit.R"
    proc = subprocess.run(["Rscript", str(script), str(config), str(out)], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"Rscript {script.name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def worker(case: str, contender: str, seed: int) -> dict:
    """One fit in this process; returns timings, diagnostics and per-parameter
    (mean, mcse, ess, r_hat)."""
    import warnings

    dataset, ours, theirs, family = CASES[case]
    data = load(dataset)
    compile_seconds = None
    start = time.perf_counter()
    if contender == "hierarchical":
        with warnings.catch_warnings(record=True):
            fit = our_model(case, data).fit(random_seed=seed, progressbar=False, **SAMPLING)
        seconds = time.perf_counter() - start
        params = summarise_ours(fit)
        divergences = fit.diagnostics().divergences
        verdict = f"{fit.diagnostics().verdict}, {fit.model.nutpie_route.name}"
    elif contender in R_CONTENDERS:
        with tempfile.TemporaryDirectory() as folder:
            out = run_r(write_r_input(case, contender, data, Path(folder), seed, **SAMPLING))
        seconds, params, divergences = out["seconds"], out["params"], out["divergences"]
        compile_seconds = out["compile_seconds"] or None
        verdict = ""
    else:
        import bambi as bmb

        import hierarchical as hier
        from hierarchical.bambi_interop import bambi_priors

        same_priors = bambi_priors(hier.Model(ours, data, family=family))
        model = bmb.Model(theirs, data, family=family, center_predictors=False,
                          priors=same_priors)
        method = "pymc" if contender == "bambi" else "nutpie"
        idata = model.fit(random_seed=seed, progressbar=False, inference_method=method, **SAMPLING)
        seconds = time.perf_counter() - start
        params = summarise_bambi(idata, model)
        divergences = int(idata.sample_stats["diverging"].sum())
        verdict = ""
    ess = min(v[2] for v in params.values())
    total = seconds + (compile_seconds or 0)
    return {"case": case, "contender": contender, "seconds": seconds,
            "compile_seconds": compile_seconds, "total_seconds": total, "min_ess_bulk": ess,
            "ess_per_s": ess / seconds, "ess_per_s_total": ess / total,
            "max_rhat": max(v[3] for v in params.values()), "divergences": divergences,
            "params": params, "verdict": verdict}


def fresh_env(folder: Path) -> dict:
    """Environment whose HOME, PyTensor compile directory and numba cache live in ``folder``:
    empty on the first run, filled (warm) for later runs given the same folder."""
    (folder / "home").mkdir(exist_ok=True)
    return dict(os.environ, HOME=str(folder / "home"), XDG_CACHE_HOME=str(folder / "home" / ".cache"),
                PYTENSOR_FLAGS=f"base_compiledir={folder / 'pytensor'}",
                NUMBA_CACHE_DIR=str(folder / "numba"))


def run_one(case: str, contender: str, caches: Path, seed: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", case, contender, str(seed)],
                         capture_output=True, text=True, env=fresh_env(caches))
    if out.returncode != 0:
        return {"case": case, "contender": contender, "error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def agreement(ours: dict, theirs: dict) -> str:
    shared = [k for k in ours if k in theirs]
    bad = [k for k in shared
           if abs(ours[k][0] - theirs[k][0]) > 4 * (ours[k][1] ** 2 + theirs[k][1] ** 2) ** 0.5]
    return f"{len(shared) - len(bad)}/{len(shared)} agree" + (f" (differ: {bad})" if bad else "")


def case_table(cases: list[str], contenders: list[str], cold: bool, seed: int) -> list[dict]:
    """Every (case, contender): printed as it finishes, returned as rows."""
    results = []
    print(f"{'case':22} {'contender':13} {'cold s':>7} {'warm s':>7} {'total s':>7} {'min ESS':>7} "
          f"{'ESS/s':>7} {'tot/s':>7} {'ratio':>6} {'r_hat':>6} {'div':>4}  check", flush=True)
    for case in cases:
        rows, notes = {}, {}  # contender: result row / why it has none
        for contender in contenders:
            if reason := why_not(case, contender):
                notes[contender] = f"skipped: {reason}"
                continue
            with tempfile.TemporaryDirectory() as caches:
                # the first run fills the caches (and is the cold one); R keeps no compile
                # cache between processes, so its one run is the warm one
                first = run_one(case, contender, Path(caches), seed)
                again = contender not in R_CONTENDERS
                warm = run_one(case, contender, Path(caches), seed) if again else first
            if "error" in warm:
                notes[contender] = f"ERROR {warm['error'][-300:]}"
                continue
            warm["cold_seconds"] = first.get("seconds") if cold and again else None
            rows[contender] = warm
            results.append(warm)
        ours = rows.get("hierarchical")
        for contender in contenders:
            if contender not in rows:
                print(f"{case:22} {contender:13} {notes[contender]}", flush=True)
                continue
            row = rows[contender]
            theirs = ours and contender != "hierarchical"
            ratio = f"{ours['ess_per_s'] / row['ess_per_s']:6.2f}" if theirs else f"{'':>6}"
            check = agreement(ours["params"], row["params"]) if theirs else row["verdict"]
            if contender in R_CONTENDERS:
                check = f"{check}, own priors" if check else "own priors"
            cold_s = f"{row['cold_seconds']:7.1f}" if row.get("cold_seconds") else f"{'-':>7}"
            print(f"{case:22} {contender:13} {cold_s} {row['seconds']:7.1f} "
                  f"{row['total_seconds']:7.1f} {row['min_ess_bulk']:7.0f} {row['ess_per_s']:7.1f} "
                  f"{row['ess_per_s_total']:7.1f} {ratio} {row['max_rhat']:6.3f} "
                  f"{row['divergences']:4d}  {check}", flush=True)
    print("\nwarm s: build to finished fit (brms: sampling only); total s: with brms' compile; "
          "tot/s: ESS per total second;\nratio: our ESS/s divided by the contender's.")
    if any(c in R_CONTENDERS for c in contenders):
        print(PRIORS)
    return results


def first_fit_worker(case: str, contender: str, csv: str, seed: int) -> dict:
    """One default fit in this fresh process, timed phase by phase from the outside of the
    package's calls (the parent adds the process's total)."""
    phases, start = {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal start
        phases[name] = time.perf_counter() - start
        start = time.perf_counter()

    import numpy as np
    import pandas as pd

    data = pd.read_csv(csv)
    lap("data")
    if contender == "hierarchical":
        import hierarchical as hier

        hier.Model  # noqa: B018 (the package imports its modules on first use)
        lap("import")
        model = our_model(case, data)
        lap("build")
        compiled = model.compiled_nutpie()
        model.nutpie.logp_and_gradient(np.zeros(compiled.n_dim))  # numba compiles at the first call
        lap("compile")
        fit = model.fit(random_seed=seed, progressbar=False, **FIRST_FIT_SAMPLING)
        lap("fit")
        idata = fit.idata
    else:
        import bambi as bmb

        lap("import")
        model = bmb.Model(CASES[case][2], data, family=CASES[case][3])
        lap("build")
        idata = model.fit(random_seed=seed, progressbar=False, **FIRST_FIT_SAMPLING)
        lap("fit")  # PyMC compiles inside fit
    # the sampler's own stamp; the rest of fit is post-processing (ours: the Fit object)
    phases["sample"] = idata.posterior.attrs.get("sampling_time")
    if contender == "hierarchical" and phases["sample"] is not None:
        phases["post"] = phases["fit"] - phases["sample"]
    return phases


def time_first_fit(case: str, contender: str, data, folder: Path, seed: int) -> dict:
    """The phases of one first fit in a fresh process whose HOME and caches are the empty
    ``folder``, and ``total``: that process's wall time, start to exit."""
    if contender in R_CONTENDERS:
        config = write_r_input(case, contender, data, folder, seed, **FIRST_FIT_SAMPLING)
        start = time.perf_counter()
        out = run_r(config, env=fresh_env(folder))
        phases = {"import": out["load_seconds"], "compile": out["compile_seconds"] or None,
                  "sample": out["stan_seconds"], "fit": out["seconds"]}
    else:
        data.to_csv(folder / "data.csv", index=False)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--first-fit-worker", case, contender,
                               str(folder / "data.csv"), str(seed)],
                              capture_output=True, text=True, env=fresh_env(folder))
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        phases = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**phases, "total": time.perf_counter() - start}


def first_fit(templates: list[str], contenders: list[str], seed: int) -> list[dict]:
    """Time to first draw per template and contender, printed as each finishes."""
    results = []
    print(f"{'template':18} {'case':20} {'contender':13} {'import':>7} {'build':>7} {'compile':>7} "
          f"{'sample':>7} {'post':>7} {'fit':>7} {'total':>7}", flush=True)
    for template in templates:
        case = FIRST_FIT[template]
        data = load(CASES[case][0])
        for contender in contenders:
            label = f"{template:18} {case:20} {contender:13}"
            if reason := why_not(case, contender):
                print(f"{label} skipped: {reason}", flush=True)
                continue
            with tempfile.TemporaryDirectory() as folder:
                try:
                    phases = time_first_fit(case, contender, data, Path(folder), seed)
                except RuntimeError as error:
                    print(f"{label} ERROR {str(error)[-300:]}", flush=True)
                    continue
            row = {"template": template, "case": case, "contender": contender, **phases}
            results.append(row)
            cells = " ".join(f"{row[k]:7.1f}" if row.get(k) is not None else f"{'-':>7}"
                             for k in ("import", "build", "compile", "sample", "post", "fit", "total"))
            print(f"{label} {cells}", flush=True)
    print("\nSeconds. import: import / library(); build: the model object; compile: ours "
          "compiled_nutpie() and a first gradient (numba compiles at the first call),\nbrms "
          "brm(chains = 0) (bambi compiles inside fit, rstanarm is precompiled); sample: the "
          "sampler's own time (Stan: chain times summed / cores);\npost: the rest of our fit (the "
          "Fit object); fit: the fitting call after the compile; total: the process, start to exit.")
    return results


def save(path: str, key: str, rows: list[dict]) -> None:
    """Put ``rows`` under ``key`` in the results file, keeping its other keys."""
    file = Path(path)
    saved = json.loads(file.read_text()) if file.exists() else {}
    if isinstance(saved, list):  # the file's old layout: the case table only
        saved = {"cases": saved}
    file.write_text(json.dumps({**saved, key: rows}, indent=1))
    print(f"wrote {key} to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--contenders", nargs="*", default=list(CONTENDERS))
    parser.add_argument("--cold", action="store_true",
                        help="also time each fit with empty caches, and time to first draw")
    parser.add_argument("--first-fit", action="store_true", help="time to first draw only")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results.json")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--first-fit-worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        case, contender, seed = args.worker
        print(json.dumps(worker(case, contender, int(seed))))
        return
    if args.first_fit_worker:
        case, contender, csv, seed = args.first_fit_worker
        print(json.dumps(first_fit_worker(case, contender, csv, int(seed))))
        return
    if not args.first_fit:
        save(args.out, "cases", case_table(args.cases, args.contenders, args.cold, args.seed))
    if args.first_fit or args.cold:
        templates = [t for t, case in FIRST_FIT.items() if case in args.cases]
        contenders = [c for c in args.contenders if c in FIRST_FIT_CONTENDERS]
        save(args.out, "first_fit", first_fit(templates, contenders, args.seed))


if __name__ == "__main__":
    main()
