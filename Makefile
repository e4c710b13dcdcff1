# Two commands do everything: `make run` and `make test` (see README.md).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PYTHON3 ?= python3
export NO_MKDOCS_2_WARNING := 1

.PHONY: run test test-core lint build install clean

# The virtual environment is (re)built whenever the requirements or pyproject.toml change. It holds the exact
# versions of REQUIREMENTS: for development, requirements-dev.txt (the tests, benchmarks and linter, and through
# its `-r`, requirements.txt); a release installs requirements.txt alone (deploy/release build).
# Bytecode is compiled at install, the project's included: the service cannot write into its release
# (systemd's ProtectSystem=strict), and where PYTHONDONTWRITEBYTECODE is set nothing caches it either,
# so every process (each gunicorn worker, each check, each test's subprocess) would compile every module.
REQUIREMENTS ?= requirements-dev.txt
PIP := $(PYTHON) -m pip install --quiet --disable-pip-version-check
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON3) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11 or newer is needed (found: $$($(PYTHON3) --version))"; exit 1; }
	$(PYTHON3) -m venv --clear $(VENV)  # a package dropped from the requirements goes too
	$(PIP) -r $(REQUIREMENTS)
	$(PIP) --no-deps --editable .
	$(PYTHON) -m compileall -q forms_service
	touch $@

install: $(VENV)/.installed

## Build the site, then serve it with the forms on http://127.0.0.1:8000 (Ctrl-C stops).
## Every email goes to a local sink: instance/dev/mail/*.eml
run: install
	$(PYTHON) -m forms_service.devserver

# Tests run side by side (pytest-xdist): most of their time is spent waiting for servers, browsers
# and subprocesses, so more at once than there are cores. TEST_WORKERS=0 runs them one after another.
# worksteal: a worker that runs out takes tests queued behind another's long one (with `load`, tests
# waited a minute behind the release build while the other workers sat idle).
TEST_WORKERS ?= 6
PYTEST := $(PYTHON) -m pytest -n $(TEST_WORKERS) --dist worksteal

# What ruff lints and formats (its settings: pyproject.toml).
LINTED := forms_service tests harness benchmarks overrides

## Run every test: unit, integration with a real SMTP server, nginx, browser; lint and format first.
test: install lint
	$(PYTEST)

## ruff's lint and format checks (`ruff format $(LINTED)` formats).
lint: install
	$(PYTHON) -m ruff check $(LINTED)
	$(PYTHON) -m ruff format --check $(LINTED)

## The service, spool and site-build tests alone, e.g. on another interpreter in its own venv:
## make test-core PYTHON3=python3.13 VENV=.venv-3.13 (CI runs them on 3.13, after the whole suite on Debian's python3).
test-core: install
	$(PYTEST) tests/service tests/spool tests/site/test_build.py

## Build the static site into site/ for a production host (SITE_URL: where it will live).
build: install
	$(PYTHON) -m mkdocs build --strict

clean:
	rm -rf site .pytest_cache
