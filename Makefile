# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)

.PHONY: run test install lint migrate bench-assignment bench-ingest bench-recommenders bench-analysis bench-load bench-live-history fuzz-api clean

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo
	$(PY) manage.py serve

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

test: lint
	DJANGO_SETTINGS_MODULE=config.settings.test $(VENV)/bin/pytest

bench-assignment: install
	$(PY) bench/assignment.py

bench-ingest: install
	$(PY) bench/ingest.py

bench-analysis: install
	$(PY) bench/analysis.py

bench-recommenders: install
	$(PY) bench/recommenders.py

bench-load: install
	$(PY) bench/load.py

bench-live-history: install
	$(PY) bench/live_history.py ingest
	$(PY) bench/live_history.py closeup

# Schemathesis against every operation of /api/schema/, longer than CI's 8 examples each.
fuzz-api: install
	SCHEMATHESIS_EXAMPLES=$${SCHEMATHESIS_EXAMPLES:-500} DJANGO_SETTINGS_MODULE=config.settings.test \
		$(VENV)/bin/pytest -q tests/core/test_schemathesis.py

clean:
	rm -rf var/broker var/celery-results var/test-*.sqlite3*
