"""The README's demo command: radon with varying intercepts and slopes, printed tables."""

import subprocess
import sys


def test_demo_prints_tables_and_verdict():
    out = subprocess.run([sys.executable, "-m", "hierarchical.cli", "demo", "--draws", "200",
                          "--tune", "200", "--chains", "2", "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "919 houses in 85 counties" in text
    for heading in ("Priors in use:", "Fixed effects:", "Variance components:", "Convergence:"):
        assert heading in text
    assert "corr(Intercept, floor)" in text
    fixed = text.split("Fixed effects:")[1]
    floor_row = next(line for line in fixed.splitlines() if line.startswith("floor "))
    assert -0.9 < float(floor_row.split()[1]) < -0.4  # Gelman & Hill: about -0.66


def test_help_is_useful():
    out = subprocess.run([sys.executable, "-m", "hierarchical.cli", "--help"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "demo" in out.stdout
