"""The lme4 bank: every textbook multi-factor example fitted with the defaults (4 chains x
1000 draws), against lme4's time and estimates. ``python benchmarks/lme4_bank.py [ids...]``
prints a markdown table and writes ``benchmarks/lme4_bank.json``.

Times: "compile" is building the graph, compiling it and a 10-draw warm-up (numba's JIT
runs on the first call); "fit" is then the default fit on warm caches, draws of the
marginalised effects included (the pointwise log likelihood waits for LOO). lme4's time is
the median of 5 fits in R (``tests/data/reference/bank.R``). The cases, the agreement rule
and the convergence rule are those of ``tests/test_lme4_bank.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_lme4_bank import (BANK, EXAMPLES, agreement, bank_model,  # noqa: E402
                                  converged, convergence, reference)
from hierarchical import laplace_chain, marginal  # noqa: E402

OUT = Path(__file__).with_name("lme4_bank.json")


def mechanism(model) -> str:
    """How the model was sampled: marginalised (and the elimination), or each factor's
    parameterisation."""
    design = model.design
    order = laplace_chain.chain(model.sampled_design) if model.integration == "laplace" else None
    if order is not None:
        return "Laplace kernel (" + " in ".join(design.groups[g].name for g in order) + ")"
    if model.marginalized:
        plan = marginal.layout(design)
        name = design.groups[plan.eliminated].name
        how = "marginal" if model.integration == "exact" else "Laplace"
        if not plan.rest:
            return f"{how} ({name})"
        return f"{how} ({name}, then {plan.components} x {plan.size} dense)"
    table = model.parameterisation
    parts = [f"{g}: {'C' if row.centered else 'NC'}" for g, row in table.iterrows()]
    return ", ".join(parts)


def bench(example: str, seed: int, sampled: bool = False) -> dict:
    start = time.perf_counter()
    model = bank_model(example, **({"marginalize": False} if sampled else {}))
    model.compiled_nutpie()
    model.fit(draws=10, tune=10, chains=1, random_seed=seed, progressbar=False, warn=False)
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    fit = model.fit(random_seed=seed, progressbar=False, warn=False)
    seconds = time.perf_counter() - start
    fit.example = example
    table = agreement(fit)
    summary = convergence(fit)
    lme4_seconds = reference(example)["seconds"]
    return {"example": example, "n": BANK["fits"][example]["n"],
            "family": BANK["fits"][example]["family"], "mechanism": mechanism(model),
            "route": model.nutpie_route.name, "compile_seconds": compile_seconds,
            "seconds": seconds, "lme4_seconds": lme4_seconds,
            "ratio": seconds / lme4_seconds, **summary, "converged": converged(summary),
            "agree": int(table["agrees"].sum()), "quantities": len(table),
            "disagree": table.loc[~table["agrees"], "quantity"].tolist(),
            "within_time": seconds <= max(5.0, 10 * lme4_seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="*", default=EXAMPLES)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sampled", action="store_true",
                        help="sample the GLMM examples' effects (marginalize=False) instead of "
                             "the defaults, which integrate nested ones out by the Laplace "
                             "approximation; the table is not written")
    args = parser.parse_args()
    if args.sampled:
        args.examples = [e for e in args.examples if BANK["fits"][e]["family"] != "gaussian"]
    print("| example | n | family | how | compile s | fit s | lme4 s | ratio | min ESS | "
          "max r_hat | div | agree | targets |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for example in args.examples:
        r = bench(example, args.seed, args.sampled)
        rows.append(r)
        met = "yes" if r["converged"] and r["within_time"] and not r["disagree"] else "NO"
        print(f"| {example} | {r['n']} | {r['family']} | {r['mechanism']} | "
              f"{r['compile_seconds']:.1f} | {r['seconds']:.1f} | {r['lme4_seconds']:.2f} | "
              f"{r['ratio']:.0f} | {r['min_ess_bulk']:.0f} | {r['max_r_hat']:.3f} | "
              f"{r['divergences']} | {r['agree']}/{r['quantities']} | {met} |", flush=True)
    median = statistics.median(r["ratio"] for r in rows)
    print(f"\nmedian ratio to lme4: {median:.1f}; targets met by "
          f"{sum(r['converged'] and r['within_time'] and not r['disagree'] for r in rows)} "
          f"of {len(rows)}")
    if set(args.examples) == set(EXAMPLES) and not args.sampled:
        OUT.write_text(json.dumps({"seed": args.seed, "environment": environment(),
                                   "rows": rows}, indent=1))


def environment() -> dict:
    """The machine and the versions a run measured: times differ between machines (the
    same commit took 40 % longer on one 2-core machine than on another)."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    packages = ("pymc", "pytensor", "nutpie", "numba", "numpy", "arviz")
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            **{name: metadata.version(name) for name in packages}}


if __name__ == "__main__":
    main()
