# One entry point. `make demo` and `make test` create .venv/ on first use.
# PYTHON may name an interpreter (>= 3.12); otherwise one is found on the machine.
VENV := .venv
STAMP := $(VENV)/.installed
PY := $(VENV)/bin/python

.PHONY: install demo test test-slow bench sbc extremes bad-inputs clean

$(STAMP): pyproject.toml scripts/find_python.sh
	@set -e; \
	if [ ! -x $(PY) ]; then \
	  interp=$$(bash scripts/find_python.sh); \
	  echo "creating $(VENV) with $$interp"; \
	  $$interp -m venv $(VENV); \
	fi; \
	$(PY) -m pip install --quiet --upgrade pip; \
	$(PY) -m pip install --quiet -e '.[test]'; \
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hierarchical demo

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

bench: $(STAMP)
	$(PY) benchmarks/run.py --cold

sbc: $(STAMP)
	$(PY) benchmarks/sbc.py

extremes: $(STAMP)
	$(PY) benchmarks/extremes.py

bad-inputs: $(STAMP)
	$(PY) benchmarks/bad_input_table.py

clean:
	rm -rf $(VENV) build *.egg-info
