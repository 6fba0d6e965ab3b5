#!/usr/bin/env bash
# The package on the oldest versions it claims: every core dependency pinned to the lower bound
# pyproject.toml states, on the oldest Python it supports, in a throw-away environment; then
# the unit tier and one real fit against lme4 (tests/test_reference_sleepstudy.py).
# The newest versions are what `make test` resolves on the day.
#   bash scripts/check_versions.sh            (make check-versions)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
python=${OLDEST_PYTHON:-$(ls -d "$root"/versions/3.12*/bin/python3 2>/dev/null | sort -V | head -n 1)}
if [ -z "$python" ]; then echo "no Python 3.12 found: set OLDEST_PYTHON" >&2; exit 1; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# "name>=X" in [project] dependencies -> "name==X"
"$python" - "$work/constraints.txt" <<'EOF'
import re, sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
pins = []
for dep in deps:
    name, low = re.match(r"^([A-Za-z0-9_.-]+)>=([0-9.]+)", dep).groups()
    pins.append(f"{name}=={low}")
open(sys.argv[1], "w").write("\n".join(pins) + "\n")
print("oldest claimed:", ", ".join(pins))
EOF
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet -c "$work/constraints.txt" -e '.[test]'
"$work/venv/bin/python" -m pip list 2>/dev/null | grep -iE '^(pymc|pytensor|numba|nutpie|arviz|arviz-stats|numpy|pandas|xarray|formulae|matplotlib|scipy|h5netcdf|h5py|tqdm) '
HOME="$work/home" "$work/venv/bin/python" -m pytest -q -p no:cacheprovider \
  -m "not integration and not slow and not interop" tests
HOME="$work/home" "$work/venv/bin/python" -m pytest -q -p no:cacheprovider \
  -m "integration" tests/test_reference_sleepstudy.py
