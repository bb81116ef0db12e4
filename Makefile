# The two commands of the README's quick start: `make serve` and `make test`.
# Each creates .venv on first use and installs what it needs, so a fresh clone
# needs nothing but Python 3.11+ and make.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: serve serve-site test check lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

## Install and serve the example app on http://127.0.0.1:$(PORT)/
serve: $(VENV)/.installed
	$(BIN)/trioweb serve examples.hello:app --port $(PORT)

## Install and serve the example site (examples/site/) on http://127.0.0.1:$(PORT)/
serve-site: $(VENV)/.installed
	$(BIN)/trioweb serve examples.site.app:app --port $(PORT)

## Install the test tools and run the whole suite, the type checker and the linter
test: $(VENV)/.installed-test
	bash tests/system/install.sh
	$(BIN)/python -m pytest -q
	$(BIN)/mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Benchmark trioweb against tornado, aiohttp and hypercorn (bench/run.py, its
## own bench/.venv); writes docs/performance.md and docs/performance.png.
## BENCH_ARGS=--quick for 1 round x 2 s; BENCH_ROUNDS / BENCH_DURATION env vars;
## BENCH_ARGS="--scenario overload" for the overload scenario alone.
bench:
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(PYTHON) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
