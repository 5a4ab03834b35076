# Multiple Losses in PyTorch: every command sets up .venv from requirements.txt first.
# `make book` builds the executed HTML book; `make test` runs the package tests and
# verifies every notebook with nbmake. Both need nothing but Python 3 on the machine.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.requirements.stamp
BENCH_STAMP := $(VENV)/.bench-requirements.stamp
DEV_STAMP   := $(VENV)/.dev-requirements.stamp
SITE_STAMP  := $(VENV)/.site-requirements.stamp
# torch's exact version, read from requirements.txt (installed first, see $(STAMP)).
TORCH_PIN   := $(shell sed -n 's/^torch==\([^ #]*\).*/\1/p' requirements.txt)
# Executed notebooks are cached here (_config.yml: execute_notebooks: cache).
NB_CACHE    := _build/.jupyter_cache
NB_CACHE_STAMP := $(NB_CACHE)/.inputs.stamp
# nbmake executes copies of the notebooks here (it collects nothing under _build/).
NB_EXEC     := _executed
NOTEBOOKS   := $(sort $(wildcard book/*.ipynb))
# Seconds per cell, for nbmake as for the book build: read from _config.yml.
NB_TIMEOUT  := $(shell sed -n 's/^ *timeout: *\([0-9][0-9]*\).*/\1/p' _config.yml)
JB_STRICT   := -W -n --keep-going
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: help setup mathjax book test test-package test-notebooks test-grading lab lab-authors bench \
	assignments clean \
	lint dist seeds check-site bench-busy pdf pdf-instructor

help:
	@echo "make book   build the executed HTML book into _build/html"
	@echo "make test   run the package tests and execute every notebook with nbmake"
	@echo "make lab    open Jupyter Lab on student copies (no solutions) in _build/student"
	@echo "make lab-authors  open Jupyter Lab on book/ (the full notebooks, with solutions)"
	@echo "make bench  print the benchmark ratios"
	@echo "make bench-busy  time every chapter with one core kept busy"
	@echo "make lint   ruff check, ruff format --check and mypy"
	@echo "make dist   build the wheel and sdist into dist/ and run twine check"
	@echo "make seeds  run every notebook for MLH_SEED=0..19 (SEEDS=...) and list the failures"
	@echo "make check-site  check every chapter at 420 and 1280 px, offline, in headless Chromium"
	@echo "make pdf    the book as one PDF, student edition (no solutions): _build/pdf/"
	@echo "make pdf-instructor  the same with the solutions (instructor edition)"
	@echo "make mathjax  copy MathJax into _build/mathjax: the site serves it itself"
	@echo "make assignments  write student notebooks (solutions stubbed) to _build/assignments"
	@echo "make test-grading run nbgrader end to end (generate, autograde) on two chapters"
	@echo "make clean  remove _build, caches and .venv"

# The environment is rebuilt only when requirements.txt or pyproject.toml change.
# torch goes first: on Linux without a GPU, from PyTorch's CPU index when it answers
# (no CUDA packages); scripts/torch_index.py decides, and prints nothing to fall back
# to the regular registry, as it does when the index cannot be reached.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@index="$$($(BIN)/python scripts/torch_index.py)"; \
	if [ -n "$$index" ]; then \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check \
	    --index-url "$$index" "torch==$(TORCH_PIN)" \
	  || echo "torch index: $$index failed, falling back to the regular registry"; \
	fi
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

setup: $(STAMP)

# The cache of executed notebooks keys on each notebook's code only, so it is emptied
# whenever the package or the environment changes: a cached output is never stale.
$(NB_CACHE_STAMP): $(shell find multiloss_helpers -name '*.py') requirements.txt pyproject.toml \
		scripts/ipython_kernel_config.py scripts/executed_notebooks.py
	rm -rf $(NB_CACHE)
	@mkdir -p $(NB_CACHE)
	@echo "$(NB_SEED)" > $(NB_CACHE)/.seed
	@touch $@

# The kernels of the book build show short tracebacks (scripts/ipython_kernel_config.py).
IPYTHON_PROFILE := _build/ipython/profile_default/ipython_kernel_config.py
$(IPYTHON_PROFILE): scripts/ipython_kernel_config.py
	@mkdir -p $(dir $@)
	cp $< $@
book test-notebooks: export IPYTHONDIR = $(abspath _build/ipython)

# The cache keys on code only, not on MLH_SEED: a run for another seed empties it first,
# so that `MLH_SEED=3 make test-notebooks` really executes every chapter on seed 3.
NB_SEED := $(or $(strip $(MLH_SEED)),0)
define nb_cache_for_seed
	@if [ "$$(cat $(NB_CACHE)/.seed 2>/dev/null)" != "$(NB_SEED)" ]; then \
	  rm -rf $(NB_CACHE); mkdir -p $(NB_CACHE); touch $(NB_CACHE_STAMP); \
	  echo "$(NB_SEED)" > $(NB_CACHE)/.seed; fi
endef

# MathJax is served with the site (no CDN: formulas render offline). Its files come with
# the environment (django-static-mathjax in requirements.txt, a data-only wheel of
# MathJax 3.2.2); scripts/vendor_mathjax.py copies what the site loads.
MATHJAX         := _build/mathjax/mathjax/tex-mml-chtml.js
$(MATHJAX): $(STAMP) scripts/vendor_mathjax.py
	$(BIN)/python scripts/vendor_mathjax.py _build/mathjax

mathjax: $(STAMP) $(MATHJAX)

book: $(STAMP) $(NB_CACHE_STAMP) $(IPYTHON_PROFILE) $(MATHJAX)
	$(nb_cache_for_seed)
	$(BIN)/jupyter-book build . --all $(JB_STRICT)
	@# The download button serves _sources/book/<chapter>.ipynb: student copies, no solutions.
	$(BIN)/python scripts/make_assignments.py book _build/html/_sources/book
	@echo "The book is at file://$(abspath _build/html/index.html)"

test: test-package test-notebooks

test-package: $(STAMP) $(DEV_STAMP)
	$(BIN)/python -m pytest tests multiloss_helpers

# Every notebook is executed once. `make test` runs `pytest --nbmake --overwrite` on copies
# ($(NB_EXEC)/book/) of the notebooks that $(NB_CACHE) lacks (new, changed, or the cache
# was emptied above: package, environment, kernel settings or MLH_SEED changed); a failing
# cell or a cell over the timeout fails it, and --durations=0 prints each notebook's time.
# scripts/executed_notebooks.py then puts each copy that ran to the end into $(NB_CACHE),
# as the book build would have, so that `make book` renders it without executing it
# again. A `make book` alone executes whatever the cache lacks itself: a fresh clone
# still gets a fully executed book. Rendering stays strict: `make book` (-W -n).
test-notebooks: $(STAMP) $(NB_CACHE_STAMP) $(IPYTHON_PROFILE)
	$(nb_cache_for_seed)
	@mkdir -p $(NB_EXEC)
	@$(BIN)/python scripts/executed_notebooks.py plan $(NB_CACHE) $(NB_EXEC) $(NOTEBOOKS) \
	  > $(NB_EXEC)/stale.txt
	@if [ -s $(NB_EXEC)/stale.txt ]; then status=0; \
	  echo "nbmake: $$(wc -l < $(NB_EXEC)/stale.txt) notebook(s) to execute"; \
	  $(BIN)/python -m pytest --nbmake --overwrite --nbmake-timeout=$(NB_TIMEOUT) \
	    -p no:cacheprovider --durations=0 -q $$(cat $(NB_EXEC)/stale.txt) || status=$$?; \
	  $(BIN)/python scripts/executed_notebooks.py cache $(NB_CACHE) $(NB_EXEC); exit $$status; \
	else echo "nbmake: every notebook is already executed for this code and seed"; fi
	$(BIN)/python scripts/notebook_times.py $(NB_CACHE)

# Every notebook for each seed in SEEDS (MLH_SEED=0..19 unless given, e.g.
# `make seeds SEEDS="20 21"`) with nbmake: about twenty times `make test-notebooks`, so it
# is not part of `make test`. Prints the failing notebooks per seed; fails if any.
SEEDS ?= $(shell seq 0 19)
seeds: $(STAMP)
	@mkdir -p _build; failed=""; for seed in $(SEEDS); do \
	  echo "== MLH_SEED=$$seed"; \
	  MLH_SEED=$$seed $(BIN)/python -m pytest --nbmake --nbmake-timeout=120 -q -rf \
	    -p no:cacheprovider book > _build/seed-$$seed.log 2>&1 \
	    || failed="$$failed $$seed"; \
	  grep -E "^(FAILED|[0-9]+ (passed|failed))" _build/seed-$$seed.log || tail -3 _build/seed-$$seed.log; \
	done; \
	if [ -n "$$failed" ]; then echo "seeds with failures:$$failed (logs: _build/seed-N.log)"; exit 1; fi; \
	echo "every notebook passed for MLH_SEED in: $(strip $(SEEDS))"

# Learners: student copies (no solutions, prompts as plain Markdown) in _build/student/,
# written once; a copy already there (your work) is kept. Authors: the full notebooks.
lab: $(STAMP)
	$(BIN)/python scripts/make_assignments.py --keep book _build/student
	$(BIN)/jupyter lab _build/student

lab-authors: $(STAMP)
	$(BIN)/jupyter lab book

$(BENCH_STAMP): benchmarks/requirements.txt $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@for script in benchmarks/[!_]*.py; do \
	  case $$script in */busy_core.py) continue;; esac; \
	  echo "== $$script"; $(BIN)/python $$script || exit 1; done

bench-busy: $(STAMP)
	$(BIN)/python benchmarks/busy_core.py

$(DEV_STAMP): requirements-dev.txt $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(DEV_STAMP)

# All three run, whatever the first finds; the target fails if any of them does.
lint: $(DEV_STAMP)
	@status=0; \
	echo "== ruff check"; $(BIN)/ruff check . || status=1; \
	echo "== ruff format --check"; $(BIN)/ruff format --check . || status=1; \
	echo "== mypy"; $(BIN)/mypy || status=1; \
	exit $$status

dist: $(DEV_STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

$(SITE_STAMP): requirements-site.txt $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-site.txt
	@touch $(SITE_STAMP)

# Needs Chromium and its driver (Debian: apt-get install chromium chromium-driver).
check-site: $(SITE_STAMP) $(MATHJAX)
	@test -f _build/html/index.html || $(MAKE) book
	$(BIN)/python scripts/check_site.py _build/html --screenshots _build/site-check
	@# The same checks on a small book: the site's MathJax passes offline, a CDN one fails.
	MLH_TEST_SITE=1 $(BIN)/python -m pytest -q tests/house/test_site.py

# The PDF edition (scripts/pdf_edition.py): the executed notebooks from $(NB_CACHE)
# (test-notebooks executes only what it lacks: nothing after a `make book`), rendered as
# one HTML page (--builder singlehtml) and printed by headless Chromium, offline, once
# MathJax has typeset every formula. Needs Chromium and chromedriver, as check-site does.
# `make pdf` also copies the student edition into _build/html/pdf/ when the site is built.
PDF_DIR        := _build/pdf
PDF_STUDENT    := $(PDF_DIR)/multiple-losses-in-pytorch.pdf
PDF_INSTRUCTOR := $(PDF_DIR)/multiple-losses-in-pytorch-instructor.pdf
define pdf_edition
	$(BIN)/python scripts/pdf_edition.py source $(1) $(NB_CACHE) $(PDF_DIR)/$(1)
	$(BIN)/jupyter-book build $(PDF_DIR)/$(1) --builder singlehtml $(JB_STRICT)
	$(BIN)/python scripts/pdf_edition.py print $(PDF_DIR)/$(1)/_build/singlehtml \
	  $(2) --title "Multiple Losses in PyTorch, $(1) edition" $(3)
endef

pdf: $(SITE_STAMP) $(MATHJAX) test-notebooks
	$(call pdf_edition,student,$(PDF_STUDENT),)
	@if [ -f _build/html/index.html ]; then \
	  mkdir -p _build/html/pdf && cp $(PDF_STUDENT) _build/html/pdf/; fi
	MLH_TEST_PDF=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/house/test_pdf.py

pdf-instructor: $(SITE_STAMP) $(MATHJAX) test-notebooks
	$(call pdf_edition,instructor,$(PDF_INSTRUCTOR),--solutions)

assignments: $(STAMP)
	$(BIN)/python scripts/make_assignments.py book _build/assignments

# nbgrader is a test-only dependency: installed here, never by requirements.txt.
GRADING_STAMP := $(VENV)/.grading-requirements.stamp
$(GRADING_STAMP): requirements-grading.txt $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-grading.txt
	@touch $(GRADING_STAMP)

test-grading: $(GRADING_STAMP)
	MLH_TEST_GRADING=1 $(BIN)/python -m pytest tests/house/test_grading.py

clean:
	rm -rf _build $(NB_EXEC) dist .pytest_cache .jupyter_cache .mypy_cache .ruff_cache $(VENV) \
	  *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +
