# One entry point. `make demo` and `make test` create .venv/ on first use.
# PYTHON may name an interpreter (>= 3.12); otherwise one is found on the machine.
#
# .venv/          the package and its test tools only: what a plain `pip install` resolves
# .venv-interop/  plus the contenders and optional back-ends (bambi, numpyro, dask), which pin
#                 some of the core's dependencies (bambi: formulae < 0.7), so they live apart
VENV := .venv
PKG_STAMP := $(VENV)/.installed
STAMP := $(VENV)/.warmed
PY := $(VENV)/bin/python
IVENV := .venv-interop
ISTAMP := $(IVENV)/.installed
IPY := $(IVENV)/bin/python

.PHONY: install install-interop lab demo test test-unit test-slow test-interop test-all bench sbc extremes \
        bad-inputs check-deps check-versions clean

define make_venv
	@set -e; \
	if [ ! -x $(1)/bin/python ]; then \
	  interp=$$(bash scripts/find_python.sh); \
	  echo "creating $(1) with $$interp"; \
	  $$interp -m venv $(1); \
	fi; \
	$(1)/bin/python -m pip install --quiet --upgrade pip; \
	$(1)/bin/python -m pip install --quiet -e '.[$(2)]'
endef

# the package and test tools; `make test` needs no more
$(PKG_STAMP): pyproject.toml scripts/find_python.sh
	$(call make_venv,$(VENV),test)
	@touch $(PKG_STAMP)

# plus the compiled samplers of the demo and the model files, so that a first fit of those
# structures (on any data) loads from the disk cache instead of compiling (warm.py)
$(STAMP): $(PKG_STAMP) hierarchical/demo.toml $(wildcard models/*.toml)
	$(VENV)/bin/hierarchical warm --demo models/*.toml
	@touch $(STAMP)

$(ISTAMP): pyproject.toml scripts/find_python.sh
	$(call make_venv,$(IVENV),interop)
	@touch $(ISTAMP)

install: $(STAMP)

install-interop: $(ISTAMP)

demo: $(STAMP)
	$(VENV)/bin/hierarchical demo

# JupyterLab on notebooks/ in the project's environment (adds the [lab] extra on first use)
lab: $(STAMP)
	@$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install --quiet -e '.[lab]'
	$(PY) -m jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)   # containers run as root

# unit + integration tiers (what CI runs); prints the slowest tests. Test files are shared
# out to TEST_WORKERS processes (a file stays on one, so its module fixtures are built once):
# compiles run on one core, so two processes use a 2-core machine; TEST_WORKERS=0 runs in one
TEST_WORKERS ?= 2
test: $(PKG_STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

test-slow: $(PKG_STAMP)
	$(PY) -m pytest -m slow

# bambi cross-checks, numpyro, Dask clusters: in their own environment
test-interop: $(ISTAMP)
	$(IPY) -m pytest -m "interop and not slow"

# every tier; the interop ones in the interop environment
test-all: $(PKG_STAMP) $(ISTAMP)
	$(PY) -m pytest -m "not interop"
	$(IPY) -m pytest -m interop

bench: $(ISTAMP)
	$(IPY) benchmarks/run.py --cold

sbc: $(PKG_STAMP)
	$(PY) benchmarks/sbc.py

extremes: $(PKG_STAMP)
	$(PY) benchmarks/extremes.py

bad-inputs: $(PKG_STAMP)
	$(PY) benchmarks/bad_input_table.py

# the dependency sets a plain install, the test extra and the interop extra resolve
check-deps: $(PKG_STAMP)
	$(PY) scripts/check_deps.py

# the unit tier on the oldest versions pyproject claims, in a throw-away environment
check-versions:
	bash scripts/check_versions.sh

clean:
	rm -rf $(VENV) $(IVENV) build *.egg-info

# the unit tier alone: no sampler runs (tests/conftest.py enforces it)
test-unit: $(PKG_STAMP)
	$(PY) -m pytest -m "not integration and not slow and not interop"
