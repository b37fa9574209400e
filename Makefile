# CNN Explorer — the two commands of the README:
#   make run    set up a virtual environment and start the app
#   make test   set up the same environment with the test tools and run every check
# The venv lives outside the app folder so Streamlit's file watcher never crawls it.

PYTHON ?= python3
VENV ?= $(HOME)/.venvs/cnn-explorer
BIN := $(VENV)/bin
PORT ?= 8501
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: run test setup setup-dev lint typecheck pytest chromium nginx bubblewrap axe clean-venv

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

# Serves in the foreground; prints the URL once the app's script has run (a deep link such as
# /train then works for the first visitor). Ctrl-C stops it. See explorer/hosting/serve.py.
run: setup
	$(BIN)/python -m explorer.hosting.serve --port $(PORT)

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup-dev
	$(BIN)/mypy

# What CI cannot run (no Docker, no cluster) it lints: the Dockerfile, deploy/'s YAML, and the
# Kubernetes manifests against the schemas kubernetes-validate ships (offline). The Gateway
# API kinds have no schema there: tests/test_deploy.py checks their fields.
K8S_VERSION ?= 1.35.0
.PHONY: lint-deploy
lint-deploy: setup-dev
	$(BIN)/hadolint deploy/Dockerfile
	$(BIN)/yamllint --strict -c deploy/.yamllint deploy/
	$(BIN)/kubernetes-validate --strict --quiet -k $(K8S_VERSION) \
	  deploy/k8s/deployment.yaml deploy/k8s/service.yaml

# Browser tests drive Debian's Chromium (never `playwright install`); as root, install it.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: browser tests will be skipped (sudo apt-get install chromium)"; fi; }

# Students' model files are read in a bubblewrap sandbox (explorer/sandbox); as root, install it.
bubblewrap:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; \
	  else echo "bubblewrap is missing: model files run in a plain worker process (sudo apt-get install bubblewrap)"; fi; }

# The local cluster's tests run Debian's nginx (deploy/local-cluster); as root, install it.
nginx:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; \
	  else echo "nginx is missing: cluster tests will be skipped (sudo apt-get install nginx)"; fi; }

# The accessibility audit (tests/test_browser_a11y.py) injects axe-core, pinned by
# tests/a11y/package-lock.json; npm ci installs exactly that. Without npm it is skipped.
# As root, it installs npm first (as the chromium target does chromium).
axe:
	@command -v npm >/dev/null || [ "$$(id -u)" != 0 ] || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
	@if command -v npm >/dev/null; then \
	  npm ci --prefix tests/a11y --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else echo "npm is missing: the accessibility audit will be skipped (sudo apt-get install npm)"; fi

# pytest exits 5 when it collects no test: say so, but do not fail the build for it.
pytest: setup-dev chromium nginx bubblewrap axe
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5)"; exit 0; fi; exit $$rc

test: lint typecheck lint-deploy pytest

clean-venv:
	rm -rf $(VENV)
