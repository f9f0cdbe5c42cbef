# The two commands of the README. Each creates its own virtualenv and installs what it needs.
#   make demo   - local Mosquitto + aggregator + edge node on a sample clip, prints the dashboard address
#   make test   - the whole test suite (the model-export tests only where .venv-export exists)
#   make test-export - build .venv-export (torch + ultralytics, ~1.5 GB) and run the export tests
#   make test-fast - unit tests only (no real broker, database, video or installers), for a quick loop
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The model-export test needs torch + ultralytics (scripts/export_model.py): about 1.5 GB and 40 s with the
# CPU build of torch. They get their own virtualenv: ultralytics pulls opencv-python, which clashes with the
# runtime's opencv-python-headless, and the edge runtime must never depend on them. Where no CPU torch
# wheel is at hand, point pip at a CPU-only torch index to avoid the 6 GB CUDA build.
EXPORT_VENV ?= .venv-export
EXPORT_STAMP := $(EXPORT_VENV)/.installed
EXPORT_TORCH ?= torch==2.13.0
# `make test` runs the tests marked `export` only where .venv-export is built; EXPORT_TESTS=no leaves them
# out anyway (CI runs them once, in `make test-export`).
EXPORT_TESTS ?= $(if $(wildcard $(EXPORT_STAMP)),yes,no)
PYTEST_EXPORT := $(if $(filter no,$(EXPORT_TESTS)),-m "not export",)

# The peers (Ultralytics, supervision) for scripts/compare_peers.py: their own virtualenv (~1.8 GB), the same
# CPU torch as the export tools, never imported by the edge runtime. Built only on demand (`make peers-venv`);
# the comparison test skips without it unless ROADWATCH_PEERS_PYTHON names one. PyPI has no CPU torchvision
# (its wheel needs CUDA torch's libraries), so scripts/peers/cpu_torchvision.py stands in the one op the
# peers use (NMS); check_cpu_torch.py fails the build if CUDA packages came in or the peers cannot run.
PEERS_VENV ?= .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

.PHONY: demo test test-fast test-export lint typecheck system venv export-venv peers-venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[edge,central,dev]'
	touch $(STAMP)

venv: $(STAMP)

$(EXPORT_STAMP): pyproject.toml
	$(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(EXPORT_VENV)/bin/python -m pip install --quiet '$(EXPORT_TORCH)' -e '.[export]'
	touch $(EXPORT_STAMP)

export-venv: $(EXPORT_STAMP)

$(PEERS_STAMP): pyproject.toml
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet '$(EXPORT_TORCH)' -e '.[peers]'
	$(PEERS_VENV)/bin/python scripts/peers/check_cpu_torch.py
	touch $(PEERS_STAMP)

peers-venv: $(PEERS_STAMP)

system:
	bash scripts/install_system_deps.sh

demo: $(STAMP)
	bash scripts/install_system_deps.sh demo
	$(PY) scripts/demo.py

test: system $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -q $(PYTEST_EXPORT)

test-export: system $(STAMP) $(EXPORT_STAMP)
	$(PY) -m pytest -q -m export

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not integration and not slow and not export"

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy

clean:
	rm -rf $(VENV) $(EXPORT_VENV) $(PEERS_VENV) .pytest_cache .mypy_cache .ruff_cache
