"""The package's modules import in one direction: describe -> bind -> build -> sample ->
read -> model -> workflows -> show. A module may import its own layer or any earlier one,
never a later one, at top level or inside a function (the README lists the layers)."""

import ast
import pathlib

import pytest

import hierarchical as hier

LAYERS = [
    ("base", {"__init__", "exceptions", "names", "prior", "families", "spec"}),
    ("describe", {"formula", "templates", "datasets", "model_file"}),
    ("bind", {"design", "aggregate", "priors", "parameterisation"}),
    ("build", {"linpred", "lkj", "stop_gradient", "graph", "marginal", "kernels", "spd",
               "jax_dispatch", "laplace_chain", "laplace"}),
    ("sample", {"sampling", "nutpie_sampler", "parallel"}),
    ("read", {"summary", "diagnostics", "shrinkage", "predict", "effects", "ppc", "persist",
              "prior_predictive"}),
    ("model", {"model", "fit", "cv", "bambi_interop"}),
    ("workflows", {"refit_grid", "sensitivity", "pooling", "calibration"}),
    ("show", {"plots", "report", "analysis", "warm", "cli"}),
]
LAYER = {module: i for i, (_, modules) in enumerate(LAYERS) for module in modules}
PACKAGE = pathlib.Path(hier.__file__).parent
SOURCES = ({path.stem: path for path in PACKAGE.glob("*.py")}
           | {path.parent.name: path for path in PACKAGE.glob("*/__init__.py")})
# Describing a model and validating its data never need PyMC (priors.py does: it checks
# prior parameters against PyMC's signatures).
PYMC_FREE = LAYERS[0][1] | LAYERS[1][1] | {"design", "aggregate", "parameterisation"}


def imports(module: str) -> list[tuple[str, int]]:
    """(imported name, line) for every import in the module, function-level ones included:
    package modules as their stem, others as their top-level package."""
    out = []
    for node in ast.walk(ast.parse(SOURCES[module].read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.append((node.module.split(".")[0], node.lineno))
            else:
                out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
    return out


def test_every_module_has_a_layer():
    assert set(SOURCES) == set(LAYER), (set(SOURCES) ^ set(LAYER))


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_imports_point_to_earlier_layers(module):
    later = [(name, line, LAYERS[LAYER[name]][0]) for name, line in imports(module)
             if name in LAYER and LAYER[name] > LAYER[module] and module != "__init__"]
    assert not later, f"{module} ({LAYERS[LAYER[module]][0]}) imports later layers: {later}"


@pytest.mark.parametrize("module", sorted(PYMC_FREE))
def test_spec_side_never_imports_pymc(module):
    found = {name for name, _ in imports(module)} & {"pymc", "pytensor", "nutpie", "matplotlib"}
    assert not found, f"{module} imports {found}"


def test_no_module_but_the_nutpie_back_end_touches_private_sampler_api():
    """nutpie's private helpers and PyTensor's ``vm.jit_fn`` live behind one version check."""
    private = ("_make_functions", "_prepare_dims_and_coords", "jit_fn", "_shared_data",
               "_make_logp_func", "_make_initial_points", "compiled_pyfunc")
    for module, path in SOURCES.items():
        if module != "nutpie_sampler":
            text = path.read_text()
            assert not [p for p in private if p in text], module
