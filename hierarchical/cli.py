"""Command line: ``hierarchical run models/X.toml``, ``hierarchical demo`` and
``hierarchical warm`` (compile ahead, see ``warm.py``).

Both fit a declarative model file (``model_file.py``), print what an analyst reads first and
write a folder with the HTML report, the saved fit, the figures and the tables. The package's
modules are imported inside each command, so ``--help`` answers without loading PyMC.
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib import resources
from pathlib import Path

from .exceptions import HierarchicalError

DEMO_FILE = "demo.toml"
EPILOG = """\
examples:
  hierarchical demo                                  radon, report in reports/radon_demo/
  hierarchical run models/sleepstudy.toml            fit, compare pooling, check priors, report
  hierarchical run models/epilepsy.toml --out out/ --draws 500 --no-pooling
  hierarchical check models/eight_schools.toml       validate the file and show the priors
  hierarchical warm --demo models/*.toml             compile their samplers ahead (make install)

A model file names the data, the model, priors, sampler settings and the report's parts;
see models/*.toml and the docstring of hierarchical/model_file.py for every key.
"""


def _print_summary(analysis, written) -> None:
    import pandas as pd

    from .model_file import display_path

    fit = analysis.fit
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
        print("\nFixed effects:")
        print(fit.fixed_effects().to_string())
        print("\nVariance components:")
        print(fit.variance_components().to_string())
        if analysis.sensitivity is not None:
            print("\nPrior sensitivity (power-scaling):")
            print(analysis.sensitivity.to_string())
    print()
    print(fit.diagnostics())
    for part, reason in analysis.skipped.items():
        print(f"(skipped {part}: {reason})")
    print(f"\nReport: {display_path(written['report'])}\nFit:    {display_path(written['fit'])} "
          f"(hier.load) | figures/ and tables/ beside them")


def _execute(model_file, args) -> int:
    from . import analysis, report

    start = time.perf_counter()
    model_file = model_file.with_sampler(name=args.sampler, draws=args.draws, tune=args.tune,
                                         chains=args.chains, random_seed=args.seed)
    model_file = model_file.with_report(pooling=False if args.no_pooling else None,
                                        sensitivity=False if args.no_sensitivity else None)
    result = analysis.run(model_file, progressbar=not args.no_progress)
    data = result.model.design
    print(f"{model_file.title}\n{model_file.data_source}: {data.n} rows; "
          + ", ".join(f"{len(g.levels)} levels of {g.name}" for g in data.groups)
          + f"\nModel: {result.model.spec.formula} ({result.model.spec.family})\n")
    print("Priors in use:")
    print(result.model.priors.to_string())
    out = Path(args.out) if args.out else Path("reports") / model_file.name
    written = report.write(result, out)
    _print_summary(result, written)
    print(f"Wall time: {time.perf_counter() - start:.1f} s (including compilation)")
    return 3 if args.strict and not result.fit.diagnostics().passed else 0


def run(args: argparse.Namespace) -> int:
    from . import model_file

    return _execute(model_file.load(args.model_file), args)


def demo(args: argparse.Namespace) -> int:
    from . import model_file

    with resources.as_file(resources.files(__package__) / DEMO_FILE) as path:
        demo_file = model_file.load(path)
    args.out = args.out or str(Path("reports") / "radon_demo")
    return _execute(demo_file, args)


def check(args: argparse.Namespace) -> int:
    from . import analysis, model_file
    from .model_file import display_path

    mf = model_file.load(args.model_file)
    model = analysis.build_model(mf)
    print(f"{display_path(mf.path)}: valid\n{mf.title}\nModel: {model.spec.formula} "
          f"({model.spec.family}) on {model.design.n} rows of {mf.data_source}\n")
    print(model.priors.to_string())
    print()
    print(model.parameterisation.to_string())
    return 0


def warm(args: argparse.Namespace) -> int:
    from . import warm as warm_module

    with resources.as_file(resources.files(__package__) / DEMO_FILE) as demo_path:
        table = warm_module.warm(([demo_path] if args.demo else []) + list(args.model_files))
    print(f"{len(table)} models compiled in {table['seconds'].sum():.0f} s")
    return 0


def _add_fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", help="output folder (default: reports/<file name>/)")
    p.add_argument("--sampler", choices=["nutpie", "pymc", "numpyro"],
                   help="NUTS back-end (default: the file's [sampler] name, else nutpie)")
    p.add_argument("--draws", type=int, help="draws per chain (overrides the file)")
    p.add_argument("--tune", type=int, help="tuning steps per chain (overrides the file)")
    p.add_argument("--chains", type=int, help="number of chains (overrides the file)")
    p.add_argument("--seed", type=int, help="random seed (overrides the file)")
    p.add_argument("--no-pooling", action="store_true",
                   help="skip the complete / no pooling fits (faster; no shrinkage plots)")
    p.add_argument("--no-sensitivity", action="store_true",
                   help="skip the power-scaling prior sensitivity")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars and steps")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 3 when the convergence verdict is FAIL")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hierarchical", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Bayesian hierarchical (mixed-effects) models on PyMC: fit a model file, "
                    "read fixed effects, variance components, shrinkage and prior "
                    "sensitivity, and get an HTML report.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("run", help="fit a model file and write the report",
                       description="Fit models/X.toml with NUTS, compare complete / no / partial "
                                   "pooling, check prior sensitivity and write report.html, "
                                   "fit.nc, figures/*.png and tables/*.csv.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_file", help="a model file, e.g. models/radon_intercepts.toml")
    _add_fit_options(p)
    p.set_defaults(func=run)
    p = sub.add_parser("demo", help="radon with varying intercepts and slopes, with the report",
                       description="Run the built-in radon model file (Gelman & Hill 2006: "
                                   "log_radon ~ floor + (1 + floor | county)) and write its "
                                   "report (default: reports/radon_demo/).")
    _add_fit_options(p)
    p.set_defaults(func=demo)
    p = sub.add_parser("check", help="validate a model file without sampling",
                       description="Parse the file, load the data, build the model and print "
                                   "the priors and parameterisation; no sampling.")
    p.add_argument("model_file")
    p.set_defaults(func=check)
    p = sub.add_parser("warm", help="compile the samplers of model files ahead of their runs",
                       description="Build every model a run of these files fits (the model and "
                                   "its pooling comparison) and compile its sampler, so that "
                                   "later processes load it from the disk cache. The cache is "
                                   "keyed by the model's structure, so it also serves the same "
                                   "formulas on other data.")
    p.add_argument("model_files", nargs="*", help="model files, e.g. models/*.toml")
    p.add_argument("--demo", action="store_true", help="include the built-in demo")
    p.set_defaults(func=warm)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HierarchicalError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
