"""The new families against glmmTMB / lme4 on public data: one default fit per case, printed
as a table of every fixed effect, group SD and family parameter (ours: posterior mean and
SD; theirs: the ML estimate), with convergence. ``python benchmarks/family_references.py``.
The cases and the agreement rule are those of ``tests/test_family_references.py``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hierarchical as hier  # noqa: E402
from tests.test_family_references import CASES, FITS, _agrees  # noqa: E402


def main() -> None:
    print("| family | data | quantity | glmmTMB / lme4 | ours: mean (sd) | agrees | fit s | max r_hat | min ESS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (key, formula, data, kwargs, fixed_of, components_of, _) in CASES.items():
        ref = FITS[key]
        model = hier.Model(formula, hier.datasets.load(data), **kwargs)
        start = time.perf_counter()
        fit = model.fit(random_seed=1, progressbar=False, warn=False)
        seconds = time.perf_counter() - start
        d = fit.diagnostics()
        fixed, vc = fit.fixed_effects(), fit.variance_components(prob=0.94)
        lo, hi = [c for c in vc.columns if c.startswith("eti")]
        rows = [(term, value, fixed.loc[term], abs(fixed.loc[term, "mean"] - value) < 2.5 * fixed.loc[term, "sd"])
                for term, value in fixed_of(ref).items()]
        rows += [(f"{g}: {n}", value, vc.loc[(g, n)],
                  _agrees(vc.loc[(g, n), "mean"], vc.loc[(g, n), "sd"], vc.loc[(g, n), lo],
                          vc.loc[(g, n), hi], value, positive=n != "psi"))
                 for (g, n), value in components_of(ref).items()]
        label = name + (f" ({kwargs['link']})" if "link" in kwargs else "")
        for i, (what, value, row, ok) in enumerate(rows):
            head = (f"{label} | {data} ({ref['n']}, {list(ref['levels'].values())[0]})" if i == 0
                    else " | ")
            tail = (f" | {seconds:.1f} | {d.table['r_hat'].max():.3f} | {d.table['ess_bulk'].min():.0f}"
                    if i == 0 else " | | | ")
            print(f"| {head} | {what} | {value:.4g} | {row['mean']:.4g} ({row['sd']:.2g}) | "
                  f"{'yes' if ok else 'NO'}{tail} |", flush=True)


if __name__ == "__main__":
    main()
