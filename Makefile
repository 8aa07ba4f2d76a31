# The two commands of the README: `make book` and `make test`.
# Both create the virtual environment (.venv) on first use and fetch the data.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONSTRAINTS := ci/constraints.txt
STAMP := $(VENV)/.installed

.PHONY: book test test-notebooks lint format data bench timing clean help student student-env jupyter-edition

help:
	@echo "make book   build the executed book into _build/html (warnings are errors)"
	@echo "make test   lint, unit and property tests, and every notebook in fast mode as students run it"
	@echo "make test-notebooks  every notebook in fast mode inside this clone (nbval)"
	@echo "make bench  run the benchmarks and write companion/pretrained/records/"
	@echo "make timing execute every notebook (full and fast) and report the times"
	@echo "            (TIMING_ARGS=--from-builds: reuse the runs of make book and make student-env)"
	@echo "make student build the student edition (no solutions) into _build/student"
	@echo "make jupyter-edition  the notebooks in plain Markdown (Colab, Binder, nbgrader) into _build/jupyter-edition"
	@echo "make student-env  every notebook alone in a fresh venv from the wheel, as a student runs it"
	@echo "make clean  remove _build"

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check \
		-c $(CONSTRAINTS) -e ".[test,book,instructor]"
	touch $@

# Fashion-MNIST: found on disk, else (as root on Debian) the dataset-fashion-mnist
# package, else downloaded from the official URL into the user cache.
data: $(STAMP)
	@$(PY) -m companion.data fashion-mnist --check >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing the Debian package dataset-fashion-mnist"; \
			apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
			{ apt-get update -qq >/dev/null 2>&1 && \
			  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; } || \
			echo "apt-get failed; downloading instead"; \
		fi; \
		$(PY) -m companion.data fashion-mnist; }

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(PY) scripts/install_cell.py --check

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The notebooks run once, in fast mode, the way students run them (make student-env:
# the wheel in a fresh environment, each notebook alone); `make test-notebooks` runs
# them in this clone instead (nbval), a quicker check while editing.
test: lint data mathjax-if-online
	$(PY) -m pytest tests
	$(MAKE) student-env

test-notebooks: $(STAMP) data
	COMPANION_FAST=1 $(PY) -m pytest --nbval-lax book

# Notebook outputs are cached by their cells' code; a change to the package must
# re-execute them, so the cache (and Sphinx's record of read pages) is dropped
# whenever anything the notebooks import or load under companion/ is newer (code,
# exercises, shipped weights and records).
_build/.companion-stamp: $(shell find companion -type f \( -name '*.py' -o -name '*.pt' -o -name '*.json' \))
	rm -rf _build/.jupyter_cache _build/.doctrees
	mkdir -p _build && touch $@

# MathJax 3 from the npm registry into _build/mathjax-static, served by
# book/_ext/local_mathjax.py so math renders offline; without it the pages use
# the CDN. `make book` tries it and goes on (with the CDN) when offline.
.PHONY: mathjax mathjax-if-online browser
mathjax: $(STAMP)
	$(PY) scripts/fetch_mathjax.py

mathjax-if-online: $(STAMP)
	@$(PY) scripts/fetch_mathjax.py --soft

# Every page of the built book in headless Chromium (needs /usr/bin/chromium and
# playwright); BROWSER_ARGS passes options, e.g. for the student edition
# BROWSER_ARGS="--site _build/student/html --book _build/student/source --student".
browser: $(STAMP)
	$(PY) scripts/browser_check.py $(BROWSER_ARGS)

book: data _build/.companion-stamp mathjax-if-online
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

bench: data
	cd benchmarks && ../$(PY) foundation.py && ../$(PY) pca.py && ../$(PY) clustering.py \
		&& ../$(PY) vae.py && ../$(PY) gan.py && ../$(PY) evaluation.py

# TIMING_ARGS=--from-builds reads the runs of `make book` and `make student-env`
# instead of executing every notebook again (CI).
timing: data
	$(PY) benchmarks/notebooks.py $(TIMING_ARGS) $(if $(TIMING_OUT),--out $(TIMING_OUT),)

# The student edition: stripped notebooks in _build/student/source, HTML without
# execution in _build/student/html; then the whole build is searched for solutions.
student: $(STAMP)
	$(PY) scripts/student_edition.py --out _build/student
	STUDENT_EDITION_DIR=_build/student $(PY) -m pytest -q tests/test_student_edition.py

# The Jupyter edition: every notebook with MyST rewritten into plain Markdown (what the
# launch buttons open and nbgrader releases); fails on leftover MyST syntax.
jupyter-edition: $(STAMP)
	$(PY) scripts/jupyter_edition.py --check

# The student-environment run: the wheel, a fresh venv without the constraints file,
# every notebook of the Jupyter edition alone in an empty folder, fast mode, installed
# by its own install cell; the table goes to _build/student-env/report.{json,md}.
student-env: $(STAMP) data
	$(PY) scripts/student_env.py $(STUDENT_ENV_ARGS)

clean:
	rm -rf _build
