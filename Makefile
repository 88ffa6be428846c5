# Two commands for a fresh machine with Python 3.11 and make:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_out
# Tests may use up to this many pytest workers (2 on the CI machine).
TEST_WORKERS ?= 2

.PHONY: install demo test lint bench clean-demo

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Lint first (ruff, configured in pyproject.toml), then the tests.
test: lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

lint: $(STAMP)
	$(PY) -m ruff check .

demo: $(STAMP)
	$(PY) -m data_prep.fetch_demo_data
	DEMO_DIR=$(DEMO_DIR) PY=$(PY) bash scripts/demo.sh

# CPU benchmarks (each prints ratios measured within one run); about 30 minutes on 2 cores.
bench: $(STAMP)
	$(PY) -m data_prep.fetch_demo_data
	$(PY) bench/data_prep_throughput.py
	$(PY) bench/train_throughput.py
	$(PY) bench/serving_latency.py
