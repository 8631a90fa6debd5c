# Set2Tracks: `make run` serves the app, `make test` runs the whole suite.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
export PORT

.DEFAULT_GOAL := help
.PHONY: help run test lint format requirements worker clean

help:
	@echo "make run    serve the app on http://127.0.0.1:$(PORT) (embedded profile: SQLite, in-process jobs)"
	@echo "make test   run the test suite (PostgreSQL + Redis when they answer, SQLite otherwise)"
	@echo "make lint   ruff check, ruff format --check, mypy"
	@echo "make format format the code with ruff"
	@echo "make worker run an RQ worker (production profile: needs SET2TRACKS_ENV=production)"

# Fail early, in one sentence, when the machine lacks what a virtualenv needs.
$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "Error: $(PYTHON) not found. Install Python 3.11 or newer (Debian/Ubuntu: sudo apt-get install python3)."; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "Error: Set2Tracks needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) -V 2>&1). Run make with PYTHON=python3.11 (or newer)."; exit 1; }
	@$(PYTHON) -m venv $(VENV) >/dev/null 2>&1 || { rm -rf $(VENV); \
	  echo "Error: cannot create a virtualenv: Python's venv module is missing (Debian/Ubuntu: sudo apt-get install python3-venv)."; exit 1; }
	@$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-prod: requirements/prod.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/prod.txt
	@touch $@

$(VENV)/.installed-dev: requirements/dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	@touch $@ $(VENV)/.installed-prod

run: $(VENV)/.installed-prod
	@$(BIN)/flask --app wsgi check --port $(PORT)
	@$(BIN)/flask --app wsgi db upgrade
	@echo "Set2Tracks on http://127.0.0.1:$(PORT) (Ctrl-C stops it)"
	@$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: $(VENV)/.installed-dev
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

worker: $(VENV)/.installed-prod
	$(BIN)/python worker.py

# Re-pin after editing requirements/*.in.
requirements: $(VENV)/.installed-dev
	for name in base prod dev; do \
	  $(BIN)/pip-compile --quiet --strip-extras --no-header --allow-unsafe \
	    --no-emit-index-url --no-emit-find-links -o requirements/$$name.txt requirements/$$name.in; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
