"""Every notebook runs top to bottom (HIERARCHICAL_QUICK=1: fewer draws) and is committed
executed, from its current source in notebooks/src/."""

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("notebook_builder", ROOT / "scripts" / "notebooks.py")
builder = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(builder)

NAMES = builder.names()
MACHINE_PATHS = ("/home/", "/root/", "/work/", "/tmp/", "/Users/", "site-packages", "C:\\")


def test_at_least_seven_notebooks():
    assert len(NAMES) >= 7, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_its_executed_source(name):
    committed = nbformat.read(builder.NOTEBOOKS / f"{name}.ipynb", as_version=4)
    source = builder.from_source(builder.SOURCES / f"{name}.py")
    assert [c.source for c in committed.cells] == [c.source for c in source.cells], (
        f"notebooks/{name}.ipynb is stale: run `python scripts/notebooks.py build {name}`")
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), f"{name}: unexecuted cells"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{name}: committed with an error output"
    assert any(o.get("data", {}).get("image/png") for c in code for o in c.outputs), (
        f"{name}: no figure")
    stderr = [o["text"][:200] for c in code for o in c.outputs if o.get("name") == "stderr"]
    assert not stderr, f"{name}: warnings in the committed outputs: {stderr}"
    texts = [str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
             + str(o.get("data", {}).get("text/html", "")) for c in code for o in c.outputs]
    paths = [t for t in texts if any(m in t for m in MACHINE_PATHS)]
    assert not paths, f"{name}: machine paths in the committed outputs: {paths[0][:300]}"


# The cheapest notebook runs in every test session; all of them in the slow tier.
EVERY_SESSION = "radon_intercepts"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.integration if n == EVERY_SESSION
                                               else pytest.mark.slow) for n in NAMES])
def test_notebook_executes(name, monkeypatch):
    monkeypatch.setenv("HIERARCHICAL_QUICK", "1")
    nb = builder.execute(builder.from_source(builder.SOURCES / f"{name}.py"))
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code)
