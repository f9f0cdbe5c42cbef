# The two commands of the README. Each creates its own virtualenv and installs what it needs.
#   make demo   - local Mosquitto + aggregator + edge node on a sample clip, prints the dashboard address
#   make test   - the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck system venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[edge,central,dev]'
	touch $(STAMP)

venv: $(STAMP)

system:
	bash scripts/install_system_deps.sh

demo: system $(STAMP)
	$(PY) scripts/demo.py

test: system $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
