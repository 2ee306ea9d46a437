# Two commands on a fresh machine:  `make demo` (the main job) and `make test` (the test suite).
# Both build a virtual environment in .venv, install rnnedge from its wheel (not editable) with
# the train and dev extras (torch pinned to the CPU build 2.13.0), and use the data in ../shared/data
# unless RNNEDGE_DATA says otherwise.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export RNNEDGE_DATA ?= $(abspath ../shared/data)

.PHONY: setup test demo lint clean

$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0" "onnx>=1.16" "tqdm>=4.60" "numpy>=1.24" "click>=8.1" "onnxruntime>=1.17" \
		"pytest>=8" "hypothesis>=6" "mypy>=1.10" "ruff>=0.5" "matplotlib>=3.7"
	touch $@

setup: $(VENV)/.deps
	rm -rf $(VENV)/dist
	$(PY) -m pip wheel --quiet --no-deps -w $(VENV)/dist .
	$(PY) -m pip install --quiet --force-reinstall --no-deps $(VENV)/dist/rnnedge-*.whl

test: setup
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/rnnedge demo

lint: setup
	$(VENV)/bin/ruff check training export runtime cli tests benchmarks
	$(VENV)/bin/mypy runtime

clean:
	rm -rf $(VENV) build runs *.egg-info
