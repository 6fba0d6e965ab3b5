"""fit.comparisons against bambi's interpret.comparisons on the same draws (a bambi fit read
through hier.from_bambi): the per-row and averaged comparisons agree to rounding."""

import numpy as np
import pandas as pd
import pytest

import hierarchical as hier

from .test_effects_and_display import counts

bmb = pytest.importorskip("bambi")
pytestmark = pytest.mark.interop   # bambi lives in the interop environment


@pytest.mark.parametrize("ours, theirs", [("difference", "diff"), ("ratio", "ratio")])
def test_comparisons_match_bambi_interpret(ours, theirs):
    frame = counts().assign(g=lambda d: d["g"].astype(str),
                            trt=lambda d: pd.Categorical(d["trt"]))
    model = bmb.Model("y ~ x + trt + (1|g)", frame, family="poisson")
    idata = model.fit(draws=300, tune=300, chains=2, random_seed=1, progressbar=False)
    fit = hier.from_bambi(model, idata)
    result = bmb.interpret.comparisons(model, idata, contrast="trt", comparison=theirs).summary
    theirs_avg = result.groupby("value")["estimate"].mean()
    table = fit.comparisons("trt", comparison=ours, include_groups=True)   # bambi keeps group effects
    sep = " - " if ours == "difference" else " / "
    for contrast, name in ((f"b{sep}a", "a_vs_b"), (f"c{sep}a", "a_vs_c")):
        assert table.xs(contrast, level="contrast")["estimate"].iloc[0] == pytest.approx(
            theirs_avg[name], rel=1e-9)
    rows = fit.comparisons("trt", comparison=ours, include_groups=True, newdata=frame)
    np.testing.assert_allclose(rows.xs(f"b{sep}a", level="contrast")["estimate"].to_numpy(),
                               result.loc[result["value"] == "a_vs_b", "estimate"].to_numpy(),
                               rtol=1e-9)
