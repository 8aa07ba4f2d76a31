# The two commands of the README: `make book` and `make test`.
# Both create the virtual environment (.venv) on first use and fetch the data.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONSTRAINTS := ci/constraints.txt
STAMP := $(VENV)/.installed

.PHONY: book test lint format data bench timing clean help

help:
	@echo "make book   build the executed book into _build/html (warnings are errors)"
	@echo "make test   lint, unit and property tests, and every notebook in fast mode"
	@echo "make bench  run the benchmarks and write benchmarks/results/"
	@echo "make timing execute every notebook (full and fast) and report the times"
	@echo "make clean  remove _build"

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check \
		-c $(CONSTRAINTS) -e ".[test,book]"
	touch $@

# Fashion-MNIST: found on disk, else (as root on Debian) the dataset-fashion-mnist
# package, else downloaded from the official URL into the user cache.
data: $(STAMP)
	@$(PY) -m companion.fetch fashion-mnist --check >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing the Debian package dataset-fashion-mnist"; \
			apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
			{ apt-get update -qq >/dev/null 2>&1 && \
			  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; } || \
			echo "apt-get failed; downloading instead"; \
		fi; \
		$(PY) -m companion.fetch fashion-mnist; }

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(PY) scripts/install_cell.py --check

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint data
	$(PY) -m pytest tests
	COMPANION_FAST=1 $(PY) -m pytest --nbval-lax book

# Notebook outputs are cached by their cells' code; a change to the package must
# re-execute them, so the cache (and Sphinx's record of read pages) is dropped
# whenever companion/ is newer.
_build/.companion-stamp: $(wildcard companion/*.py)
	rm -rf _build/.jupyter_cache _build/.doctrees
	mkdir -p _build && touch $@

book: data _build/.companion-stamp
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

bench: data
	cd benchmarks && ../$(PY) foundation.py && ../$(PY) pca.py && ../$(PY) clustering.py \
		&& ../$(PY) vae.py

timing: data
	$(PY) benchmarks/notebooks.py $(if $(TIMING_OUT),--out $(TIMING_OUT),)

clean:
	rm -rf _build
