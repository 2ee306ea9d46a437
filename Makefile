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

.PHONY: setup test test-js demo lint docs clean

WHEEL = $(VENV)/dist/rnnedge-*.whl

# Dependencies come from pyproject.toml's extras (installed once, again when pyproject.toml changes);
# rnnedge itself is rebuilt and reinstalled from its wheel on every run so tests see the current code.
$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) torch
	rm -rf $(VENV)/dist
	$(PY) -m pip wheel --quiet --no-deps -w $(VENV)/dist .
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) "$$(ls $(WHEEL))[train,plot,serve,serve-fast,tune,dev]"
	touch $@

setup: $(VENV)/.deps
	rm -rf $(VENV)/dist
	$(PY) -m pip wheel --quiet --no-deps -w $(VENV)/dist .
	$(PY) -m pip install --quiet --force-reinstall --no-deps $(WHEEL)

# js/node_modules first: pytest's cross-runtime tests (one sampler in Python, JavaScript and serve) run node.
test: lint js/node_modules/.installed
	bash .ci/check_base_install.sh $$(ls $(WHEEL)) $(VENV)
	$(PY) -m pytest -q
	$(MAKE) test-js

# The JavaScript runtime (js/): unit tests, parity with the Python runtime's fixtures (written by
# tests/export/test_js_fixtures.py, which pytest runs above; here only when they are missing), the
# shared contract corpus (tests/contract/test_contract_corpus.py, likewise), and
# the demo page in headless Chromium (/usr/bin/chromium: .ci/run installs it from Debian).
js/node_modules/.installed: js/package-lock.json
	cd js && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
	touch $@

test-js: js/node_modules/.installed
	test -f js/test/fixtures/index.json || $(PY) -m pytest -q tests/export/test_js_fixtures.py
	test -f js/test/fixtures/contract/corpus.json || $(PY) -m pytest -q tests/contract/test_contract_corpus.py
	test -d js/test/fixtures/own || $(PY) -m pytest -q tests/export/test_own_module.py -k js_fixtures
	cd js && npm test

demo: setup
	$(VENV)/bin/rnnedge demo

lint: setup
	$(VENV)/bin/ruff check errors data training export runtime bench serve cli tests benchmarks docs/gen_benchmarks.py
	$(VENV)/bin/ruff format --check errors data training export runtime bench serve cli tests benchmarks docs/gen_benchmarks.py
	$(VENV)/bin/mypy --strict errors data runtime bench
	$(VENV)/bin/mypy training export serve cli

# The documentation site in site/: guides from docs/, the API from the installed package's docstrings,
# the benchmark pages from docs/benchmarks/data/*.json (docs/gen_benchmarks.py). --strict: a warning, a
# missing page or a broken link or anchor fails the build.
$(VENV)/.docs-deps: pyproject.toml | $(VENV)/.deps
	$(PY) -m pip install --quiet "$$(ls $(WHEEL))[docs]"
	touch $@

docs: setup $(VENV)/.docs-deps
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build runs site *.egg-info
