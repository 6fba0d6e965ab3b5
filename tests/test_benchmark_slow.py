"""Slow tier (pytest -m slow): the benchmark script runs end to end and agrees with bambi."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.interop
def test_benchmark_radon_intercepts(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--cases",
                          "radon_mn_int", "--out", str(out)], capture_output=True, text=True,
                         cwd=ROOT, timeout=1800)
    assert run.returncode == 0, run.stderr
    rows = {r["contender"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"hierarchical", "bambi", "bambi_nutpie"}
    assert "4/4 agree" in run.stdout
    assert rows["hierarchical"]["min_ess_bulk"] > 400
