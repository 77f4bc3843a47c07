# comp448: two commands on a fresh machine.
#   make lab    set everything up, then open JupyterLab on the course
#   make test   set everything up, then run every test
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Two cores: keep torch from oversubscribing when tests run side by side.
export OMP_NUM_THREADS ?= 2
# Tests draw with the non-interactive backend; `make lab` keeps Jupyter's inline one.
PYTEST := MPLBACKEND=Agg $(BIN)/python -m pytest

.PHONY: setup system lab test test-fast test-slow exercises book bench clean

setup: $(STAMP) system

# One pip command: requirements.txt pins torch==2.13.0 beside everything else, and -e .
# installs comp448 itself (its pyproject only asks torch>=2.3, which the pin satisfies).
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt -e .
	$(BIN)/jupyter labextension disable --level=sys_prefix @jupyterlab/apputils-extension:announcements >/dev/null 2>&1 || true
	mkdir -p $(VENV)/share/jupyter/lab/settings
	echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' > $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(STAMP)

# Debian packages the tests use: Chromium (browser test), bubblewrap (grading sandbox) and
# PostgreSQL (a gradebook server for concurrent graders, tests/autograder/test_postgres_gradebook.py).
system:
	@if ! command -v chromium >/dev/null || ! command -v bwrap >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium bubblewrap postgresql >/dev/null; \
	fi

lab: setup
	$(BIN)/jupyter lab --notebook-dir=. lectures/00_index.ipynb

# Both cores: pytest-xdist runs two tests at a time, each single-threaded (notebook kernels,
# sandboxed graders and training runs inherit OMP_NUM_THREADS=1), so neither oversubscribes.
test: setup
	OMP_NUM_THREADS=1 $(PYTEST) -p no:cacheprovider -n 2 --durations=25 tests

test-fast: setup
	$(PYTEST) -p no:cacheprovider -m "not slow" -x -q tests

test-slow: setup
	OMP_NUM_THREADS=1 $(PYTEST) -p no:cacheprovider -n 2 -m slow tests

exercises: setup
	$(BIN)/python tools/make_exercises.py

book: setup
	$(BIN)/python tools/build_book.py

bench: setup
	$(BIN)/python benchmarks/bench_losses.py
	$(BIN)/python benchmarks/bench_weightmap.py
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf $(VENV) _build artifacts
