# Multiple Losses in PyTorch: every command sets up .venv from requirements.txt first.
# `make book` builds the executed HTML book; `make test` runs the package tests and
# every notebook. Both need nothing but Python 3 on the machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.requirements.stamp
BENCH_STAMP := $(VENV)/.bench-requirements.stamp
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: help setup book test test-package test-notebooks test-grading lab bench assignments clean

help:
	@echo "make book   build the executed HTML book into _build/html"
	@echo "make test   run the package tests and every notebook (nbmake)"
	@echo "make lab    open Jupyter Lab on book/"
	@echo "make bench  print the benchmark ratios"
	@echo "make assignments  write student notebooks (solutions stubbed) to _build/assignments"
	@echo "make test-grading run nbgrader end to end (generate, autograde) on two chapters"
	@echo "make clean  remove _build, caches and .venv"

# The environment is rebuilt only when requirements.txt or pyproject.toml change.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

setup: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "The book is at file://$(abspath _build/html/index.html)"

test: test-package test-notebooks

test-package: $(STAMP)
	$(BIN)/python -m pytest tests multiloss_helpers

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbmake --nbmake-timeout=120 --durations=0 book

lab: $(STAMP)
	$(BIN)/jupyter lab book

$(BENCH_STAMP): benchmarks/requirements.txt $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@for script in benchmarks/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

assignments: $(STAMP)
	$(BIN)/python scripts/make_assignments.py book _build/assignments

# nbgrader is a test-only dependency: installed here, never by requirements.txt.
GRADING_STAMP := $(VENV)/.grading-requirements.stamp
$(GRADING_STAMP): requirements-grading.txt $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-grading.txt
	@touch $(GRADING_STAMP)

test-grading: $(GRADING_STAMP)
	MLH_TEST_GRADING=1 $(BIN)/python -m pytest tests/test_grading.py

clean:
	rm -rf _build .pytest_cache .jupyter_cache $(VENV) *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +
