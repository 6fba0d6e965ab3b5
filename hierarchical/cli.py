"""Command line: ``hierarchical demo`` fits the radon model and prints what an analyst reads."""

from __future__ import annotations

import argparse
import sys
import time

DEMO_FORMULA = "log_radon ~ floor + (1 + floor | county)"


def demo(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    import hierarchical as hier
    import pandas as pd

    data = hier.datasets.load("radon")
    model = hier.Model(DEMO_FORMULA, data)
    print(f"Radon, Minnesota (Gelman & Hill 2006): {len(data)} houses in "
          f"{data['county'].nunique()} counties\nModel: {DEMO_FORMULA}\n")
    print("Priors in use:")
    print(model.priors.to_string(), "\n")
    fit = model.fit(draws=args.draws, tune=args.tune, chains=args.chains, sampler=args.sampler,
                    random_seed=args.seed, progressbar=not args.no_progress)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
        print("\nFixed effects:")
        print(fit.fixed_effects().to_string())
        print("\nVariance components:")
        print(fit.variance_components().to_string())
    print()
    print(fit.diagnostics())
    print(f"\nWall time: {time.perf_counter() - start:.1f} s "
          f"(sampler {args.sampler}, including import and compilation)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hierarchical",
        description="Bayesian hierarchical (mixed-effects) models on PyMC.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="fit radon with varying intercepts and slopes and print "
                                    "fixed effects, variance components and convergence")
    p.add_argument("--sampler", default="nutpie", choices=["nutpie", "pymc", "numpyro"])
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
