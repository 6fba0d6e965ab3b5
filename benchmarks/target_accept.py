"""Gradients per draw and divergences of the lme4 bank's examples at several NUTS target
acceptance rates: the measurement behind ``sampling.target_accept``'s defaults.

``python benchmarks/target_accept.py [examples...] --targets 0.95 0.9 0.8 --seeds 1 2 3``
fits each example (default: those whose effects are integrated out) with the default
settings but ``target_accept``, and prints one markdown row per example: mean leapfrog steps
per draw and total divergences over the seeds, per target. Gradients per draw are the
steady measure of cost; wall time moves with the machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_lme4_bank import EXAMPLES, bank_model, convergence  # noqa: E402


def measure(model, targets: list[float], seeds: list[int]) -> dict:
    """target -> (mean steps per draw, divergences, max r_hat) over the seeds."""
    rows = {}
    for target in targets:
        steps, divergences, worst = [], 0, 0.0
        for seed in seeds:
            fit = model.fit(random_seed=seed, progressbar=False, warn=False,
                            target_accept=target)
            steps.append(float(fit.idata["sample_stats"]["n_steps"].mean()))
            summary = convergence(fit)
            divergences += summary["divergences"]
            worst = max(worst, summary["max_r_hat"])
        rows[target] = (sum(steps) / len(steps), divergences, worst)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="*", help="default: the marginalised examples")
    parser.add_argument("--targets", nargs="+", type=float, default=[0.95, 0.9, 0.8])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    args = parser.parse_args()
    header = " / ".join(str(t) for t in args.targets)
    print(f"| example | gradients per draw at {header} | divergences at {header} "
          f"| max r_hat at {header} |\n|---|---|---|---|")
    for example in args.examples or EXAMPLES:
        model = bank_model(example)
        if not args.examples and not model.marginalized:
            continue
        rows = measure(model, args.targets, args.seeds)
        cells = [" / ".join(fmt.format(rows[t][i]) for t in args.targets)
                 for i, fmt in enumerate(("{:.1f}", "{}", "{:.3f}"))]
        print(f"| {example} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
