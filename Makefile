# Two commands do everything: `make run` and `make test` (see README.md).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
export NO_MKDOCS_2_WARNING := 1

.PHONY: run test build install clean

# The virtual environment is rebuilt whenever requirements.txt changes.
$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(VENV)/.installed

## Build the site, then serve it with the forms on http://127.0.0.1:8000 (Ctrl-C stops).
run: install
	$(PYTHON) -m forms_service.devserver

## Run every test: unit, integration with a real SMTP server, browser.
test: install
	$(PYTHON) -m pytest

## Build the static site into site/ for a production host.
build: install
	$(PYTHON) -m mkdocs build --strict

clean:
	rm -rf site .pytest_cache
