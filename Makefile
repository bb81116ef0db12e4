# The commands of the README's quick start: `make serve`, `make test`,
# `make docs` and `make dist-check`. Each creates .venv on first use and
# installs what it needs, so a fresh clone needs nothing but Python 3.11+ and
# make.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

# The floor of `make test`'s coverage of trioweb/ (measured: 95%).
COVERAGE_FLOOR ?= 90

.PHONY: serve serve-site test docs dist-check check lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@ $(VENV)/.installed

## Install and serve the example app on http://127.0.0.1:$(PORT)/
serve: $(VENV)/.installed
	$(BIN)/trioweb serve examples.hello:app --port $(PORT)

## Install and serve the example site (examples/site/) on http://127.0.0.1:$(PORT)/
serve-site: $(VENV)/.installed
	$(BIN)/trioweb serve examples.site.app:app --port $(PORT)

## Install the test tools and run the whole suite (measuring its coverage of
## trioweb/, which must reach COVERAGE_FLOOR), the type checker and the linter
test: $(VENV)/.installed-test
	bash tests/system/install.sh
	$(BIN)/python -m coverage erase
	$(BIN)/python -m coverage run -m pytest -q
	$(BIN)/python -m coverage report --fail-under=$(COVERAGE_FLOOR)
	$(BIN)/mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Build the docs site (Sphinx, docs/conf.py) into docs/_build/html;
## any warning is an error
docs: $(VENV)/.installed-docs
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

## Build the sdist and the wheel into dist/, install each into a fresh venv and
## serve an app with it (tests/check_dist.py)
dist-check: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q tests/check_dist.py

## Benchmark trioweb against tornado, aiohttp and hypercorn (bench/run.py, its
## own bench/.venv); writes docs/performance.md and docs/performance.png.
## BENCH_ARGS=--quick for 1 round x 2 s; BENCH_ROUNDS / BENCH_DURATION env vars;
## BENCH_ARGS="--scenario overload" for the overload scenario alone.
bench:
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(PYTHON) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist docs/_build *.egg-info .coverage .coverage.*
