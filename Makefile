# Two commands on a fresh machine:  `make demo` (the main job) and `make test` (the test suite).
# Both build a virtual environment in .venv, install rnnedge from its wheel (not editable) with
# the train and dev extras (torch held to the CPU build 2.13.0 by constraints/cpu-torch.txt), and read
# data from $RNNEDGE_DATA, else ../shared/data where that folder exists, else the per-user cache
# (downloaded into on first use).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ifneq ($(wildcard ../shared/data),)
export RNNEDGE_DATA ?= $(abspath ../shared/data)
endif
CONSTRAINTS := constraints/cpu-torch.txt

.PHONY: setup test test-js demo lint clean

WHEEL = $(VENV)/dist/rnnedge-*.whl

# Dependencies come from pyproject.toml's extras (installed once, again when pyproject.toml changes);
# rnnedge itself is rebuilt and reinstalled from its wheel on every run so tests see the current code.
$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) torch
	rm -rf $(VENV)/dist
	$(PY) -m pip wheel --quiet --no-deps -w $(VENV)/dist .
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) "$$(ls $(WHEEL))[train,plot,serve,dev]"
	touch $@

setup: $(VENV)/.deps
	rm -rf $(VENV)/dist
	$(PY) -m pip wheel --quiet --no-deps -w $(VENV)/dist .
	$(PY) -m pip install --quiet --force-reinstall --no-deps $(WHEEL)

test: lint
	bash .ci/check_base_install.sh $$(ls $(WHEEL)) $(VENV)
	$(PY) -m pytest -q
	$(MAKE) test-js

# The JavaScript runtime (js/): unit tests, parity with the Python runtime's fixtures (written by
# tests/export/test_js_fixtures.py, which pytest runs above; here only when they are missing), and
# the demo page in headless Chromium (/usr/bin/chromium: .ci/run installs it from Debian).
js/node_modules/.installed: js/package-lock.json
	cd js && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
	touch $@

test-js: js/node_modules/.installed
	test -f js/test/fixtures/index.json || $(PY) -m pytest -q tests/export/test_js_fixtures.py
	test -d js/test/fixtures/own || $(PY) -m pytest -q tests/export/test_own_module.py -k js_fixtures
	cd js && npm test

demo: setup
	$(VENV)/bin/rnnedge demo

lint: setup
	$(VENV)/bin/ruff check errors data training export runtime bench serve cli tests benchmarks
	$(VENV)/bin/ruff format --check errors data training export runtime bench serve cli tests benchmarks
	$(VENV)/bin/mypy --strict errors data runtime bench
	$(VENV)/bin/mypy training export serve cli

clean:
	rm -rf $(VENV) build runs *.egg-info
