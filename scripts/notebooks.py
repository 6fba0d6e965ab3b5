"""Build the executed notebooks in notebooks/ from their sources in notebooks/src/.

Sources are plain Python in the "percent" format (reviewable diffs): ``# %%`` starts a code
cell, ``# %% [markdown]`` a Markdown cell whose lines start with ``# ``. The notebook is
written with its outputs so it reads on GitHub.

    python scripts/notebooks.py build                 # every source, full draws
    python scripts/notebooks.py build radon_intercepts
    HIERARCHICAL_QUICK=1 python scripts/notebooks.py build radon_intercepts   # quick look

The test suite (tests/test_notebooks.py) re-executes every notebook with
HIERARCHICAL_QUICK=1 (fewer draws) and checks that each notebook matches its source.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "src"
CELL_TIMEOUT = 900
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _cell(kind: str, lines: list[str]):
    text = "\n".join(lines).strip("\n")
    if kind == "markdown":
        text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#")
                         for line in text.splitlines())
        return nbformat.v4.new_markdown_cell(text)
    return nbformat.v4.new_code_cell(text)


def from_source(path: Path) -> nbformat.NotebookNode:
    """Percent-format Python -> an unexecuted notebook."""
    cells, kind, lines = [], None, []
    for line in path.read_text().splitlines():
        if line.startswith("# %%"):
            if kind is not None and "\n".join(lines).strip():
                cells.append(_cell(kind, lines))
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    if kind is not None and "\n".join(lines).strip():
        cells.append(_cell(kind, lines))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = KERNEL
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = CELL_TIMEOUT) -> nbformat.NotebookNode:
    """Run every cell top to bottom in a fresh kernel, working directory notebooks/."""
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL["name"],
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def names() -> list[str]:
    return sorted(p.stem for p in SOURCES.glob("*.py"))


def build(name: str) -> float:
    start = time.perf_counter()
    nb = execute(from_source(SOURCES / f"{name}.py"))
    nbformat.write(nb, NOTEBOOKS / f"{name}.ipynb")
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "build":
        print(__doc__)
        return 2
    chosen = argv[1:] or names()
    unknown = sorted(set(chosen) - set(names()))
    if unknown:
        print(f"unknown notebook(s) {unknown}; sources: {names()}", file=sys.stderr)
        return 2
    for name in chosen:
        print(f"executing {name} ...", flush=True)
        print(f"  wrote notebooks/{name}.ipynb in {build(name):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
