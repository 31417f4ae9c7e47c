# Telemed — `make run` to try it, `make test` to check it.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test test-fast lint bench messages lock clean help

help:
	@echo "make run    - start Telemed in embedded mode at http://127.0.0.1:8000"
	@echo "make test   - run the whole test suite"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - run the benchmarks, write docs/benchmarks.md"

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Telemed needs $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# What the app needs to run (production installs exactly this file)...
$(STAMP): requirements/lock.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/lock.txt
	touch $(STAMP)

# ...and what developing it needs on top (tests, lint, benchmarks).
$(DEV_STAMP): requirements/dev-lock.txt $(STAMP)
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev-lock.txt
	touch $(DEV_STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --if-empty
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py run_embedded

# In CI (DATABASE_URL set) the suite runs on PostgreSQL, then the tests marked
# `sqlite` run again on SQLite so both databases stay covered.
test: $(DEV_STAMP)
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest
	@if [ -n "$$DATABASE_URL" ]; then \
		echo "--- tests marked sqlite, on SQLite ---"; \
		env -u DATABASE_URL $(PY) -m pytest -m sqlite -p no:cacheprovider; \
	fi

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(DEV_STAMP)
	$(PY) -m bench

# Regenerate the translation catalogs (needs GNU gettext) and compile them.
messages: $(DEV_STAMP)
	$(PY) manage.py makemessages -l zh_Hans --no-obsolete --ignore=.venv --ignore=var --ignore=bench --ignore=tests
	$(PY) manage.py makemessages -d djangojs -l zh_Hans --no-obsolete --ignore=.venv --ignore=var --ignore=static/vendor
	$(PY) manage.py compilemessages -l zh_Hans --ignore=.venv

# Re-pin every dependency from pyproject.toml.
lock: | $(PY)
	$(PY) -m pip install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --strip-extras --generate-hashes --no-emit-index-url --no-emit-find-links -o requirements/lock.txt pyproject.toml
	$(VENV)/bin/pip-compile --quiet --extra dev --strip-extras --generate-hashes --no-emit-index-url --no-emit-find-links -c requirements/lock.txt \
		-o requirements/dev-lock.txt pyproject.toml

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
