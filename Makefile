# Two commands do all the set-up: `make demo` and `make test`. Both create .venv on first use
# and reinstall only when pyproject.toml or this Makefile changed (stamp keyed on their hash).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HASH := $(shell cat pyproject.toml Makefile | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(HASH)

.PHONY: install demo test lint typecheck pytest browser fuzz bench bench-quick clean

install: $(STAMP)

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/pixelseg demo --out runs/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The report's browser test needs Chromium: installed as root where apt-get can (else it skips,
# and fails under CI=true).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		>/dev/null) || echo "chromium not installed: the browser test will skip"; }

pytest: $(STAMP) browser
	$(PY) -m pytest --durations=15

test: lint typecheck pytest

# The fuzz targets of tests/reliability with 2000 examples each (make test runs 100).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/reliability/test_reliability_fuzz.py

# The benchmark also needs the peers (segmentation-models-pytorch, cellpose: the `bench` extra).
BENCH_STAMP := $(VENV)/.bench-installed-$(HASH)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) bench/run_all.py $(BENCH_ARGS)

bench-quick: $(BENCH_STAMP)
	$(PY) bench/run_all.py --quick

clean:
	rm -rf $(VENV) runs .mypy_cache .pytest_cache .ruff_cache
