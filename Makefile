# CNN Explorer — the two commands of the README:
#   make run    set up a virtual environment and start the app
#   make test   set up the same environment with the test tools and run every check
# The venv lives outside the app folder so Streamlit's file watcher never crawls it.

PYTHON ?= python3
VENV ?= $(HOME)/.venvs/cnn-explorer
BIN := $(VENV)/bin
PORT ?= 8501
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: run test setup setup-dev lint typecheck pytest chromium clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.app-installed: requirements.txt constraints.txt | $(BIN)/python
	$(PIP) -r requirements.txt -c constraints.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.app-installed
	$(PIP) -r requirements-dev.txt -c constraints.txt
	touch $@

setup: $(VENV)/.app-installed

setup-dev: $(VENV)/.dev-installed

run: setup
	$(BIN)/python -m streamlit run streamlit_app.py --server.port $(PORT)

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup-dev
	$(BIN)/mypy

# Browser tests drive Debian's Chromium (never `playwright install`); as root, install it.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: browser tests will be skipped (sudo apt-get install chromium)"; fi; }

# pytest exits 5 when it collects no test: say so, but do not fail the build for it.
pytest: setup-dev chromium
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5)"; exit 0; fi; exit $$rc

test: lint typecheck pytest

clean-venv:
	rm -rf $(VENV)
