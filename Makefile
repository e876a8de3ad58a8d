# The two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench lint stop-db clean

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Generated sample data (or DATA=folder laid out like the sample) on a local PostgreSQL.
demo: $(VENV)/.runtime
	$(PY) demo.py $(if $(DATA),--data $(DATA))

test: $(VENV)/.dev
	$(PY) -m pytest -q

# 1,000,000 events and 100,000 song files by default; EVENTS=… SONGS=… to change.
bench: $(VENV)/.runtime
	$(PY) bench.py $(if $(EVENTS),--events $(EVENTS)) $(if $(SONGS),--songs $(SONGS))

lint: $(VENV)/.dev
	$(PY) -m ruff check .

# Stop the demo's PostgreSQL cluster (its data stays in .local-pg until `make clean`).
stop-db:
	$(PY) -m sparkify.pg_cluster stop .local-pg

clean: stop-db
	$(PY) -m sparkify.pg_cluster stop .bench/pg
	rm -rf .local-pg .demo .bench
