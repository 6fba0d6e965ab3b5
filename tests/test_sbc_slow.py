"""Slow tier (pytest -m slow): the full simulation-based calibration, 200 replications of
every case, must find every parameter's ranks uniform (family-wise 1 %)."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_template_is_calibrated(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sbc.py"), "--reps", "200",
                          "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                         timeout=3 * 3600)
    assert run.returncode == 0, run.stderr[-3000:]
    table = pd.read_csv(tmp_path / "table.csv")
    assert len(table) == 97 and (table["reps"] == 200).all()   # 41 templates + 16 multi-factor + 40 families
    assert table["uniform"].all(), table[~table["uniform"]]
    assert ((table["mean_rank"] - 0.5).abs() < 0.07).all()   # 3.5 MC SEs of a mean rank
