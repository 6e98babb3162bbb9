# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create the virtual environment .venv on first use (Python 3.11, CPU; see README for CUDA).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= demo_out

.PHONY: setup demo test test-all lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/see3d demo --out $(OUT) --overwrite

lint: setup
	$(BIN)/ruff check src tests benchmarks

test: setup lint
	$(BIN)/pytest

# the slow checks (real-data quality targets, long runs); not part of CI
test-all: setup
	$(BIN)/pytest -m "slow or not slow"

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
