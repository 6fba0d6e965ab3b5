"""The dependency sets pip resolves today for a plain install, the test extra and the interop
extra, side by side (``make check-deps``).

Exits 1 when the test environment would run the core on other versions than a plain
``pip install hierarchical`` gives a user: the tests must exercise what users get.
Needs the package index (pip's dry-run resolver; nothing is installed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"plain": ".", "test": ".[test]", "interop": ".[interop]"}


def resolve(target: str) -> dict[str, str]:
    """name -> version of everything pip would install for ``target`` into an empty env."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet",
                        "--ignore-installed", "--report", str(report), target],
                       cwd=ROOT, check=True)
        items = json.loads(report.read_text())["install"]
    return {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
            for item in items}


def main() -> int:
    sets = {name: resolve(target) for name, target in TARGETS.items()}
    plain = sets["plain"]
    rows = sorted(name for name in plain if any(s.get(name) != plain[name] for s in sets.values()))
    print(f"{len(plain)} packages in a plain install; those another set resolves differently:")
    print(f"{'package':24s} {'plain':>12s} {'test':>12s} {'interop':>12s}")
    for name in rows:
        print(f"{name:24s} " + " ".join(f"{sets[s].get(name, '-'):>12s}" for s in TARGETS))
    if not rows:
        print("(none)")
    drift = [name for name in plain if sets["test"].get(name) != plain[name]]
    if drift:
        print(f"FAIL: the test extra changes {drift}", file=sys.stderr)
        return 1
    print("OK: the test environment runs the core on exactly the versions of a plain install")
    return 0


if __name__ == "__main__":
    sys.exit(main())
