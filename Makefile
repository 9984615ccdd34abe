# The two commands of the README: `make run` and `make test`. Both set everything up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app app
DEMO_CITIZENS ?= 2000
# The import's budget is stated at a million rows (issue 6).
IMPORTS_BENCH_ARGS ?= --citizens 1000000

.PHONY: run test bench lint translations clean-db

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run

# messages: the portal's own; admin: what Flask-Admin's bundled vi catalog lacks (see translations/vi/.../admin.po).
# Without --use-fuzzy: a fuzzy entry is pybabel's guess, so English shows until someone translates it.
translations: $(VENV)/.installed-run
	$(VENV)/bin/pybabel -q compile -d translations -D "messages admin"

run: $(VENV)/.installed-run translations
	$(FLASK) init-db
	$(FLASK) demo-data --citizens $(DEMO_CITIZENS) --if-empty
	$(PY) app.py

test: $(VENV)/.installed-dev translations
	$(PY) -m pytest

# The back office and citizens' pages (and the demo-data load), then reports on the same data, risk triage, imports, the encounter API.
bench: $(VENV)/.installed-dev translations
	$(PY) -m bench $(BENCH_ARGS)
	$(PY) -m bench.reports $(REPORTS_BENCH_ARGS)
	$(PY) -m bench.risk $(RISK_BENCH_ARGS)
	$(PY) -m bench.imports $(IMPORTS_BENCH_ARGS)
	$(PY) -m bench.api $(API_BENCH_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
