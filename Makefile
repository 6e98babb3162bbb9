# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create the virtual environment .venv on first use (Python 3.11, CPU; see README for CUDA).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= demo_out

# The curation's person / hand detector models (Apache-2.0) are read from the mediapipe wheel, which
# is downloaded (not installed: its pins conflict with ours) into the venv; see docs/curation.md.
MEDIAPIPE_MODELS = $(BIN)/pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
	--platform manylinux_2_28_x86_64 mediapipe==0.10.21 -d $(VENV)/share/see3d

.PHONY: setup demo test test-all lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(MEDIAPIPE_MODELS)
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
