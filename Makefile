# servicehub: `make run` sets everything up and starts the hub; `make test` sets up and runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Reinstall when the dependencies change.
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml 2>/dev/null | cut -c1-12)
export HF_HUB_OFFLINE := 1

.PHONY: setup run test bench migrate demo clean screenshots messages

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# PyTorch first, as the CPU build: a plain torch requirement would pull several GB of CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

migrate: setup
	$(BIN)/servicehub migrate

demo: migrate
	$(BIN)/servicehub demo

run: demo
	$(BIN)/servicehub serve

# The style and the layering are checked before the suite: ruff's rules and the import-linter
# contracts are in pyproject.toml.
test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The documentation's screenshots, taken by the browser tests of the inbox (a plain test run
# captures them into the temporary directory and leaves docs/ alone).
screenshots: setup
	SERVICEHUB_SCREENSHOTS=1 $(BIN)/python -m pytest tests/web/test_inbox_browser.py
	SERVICEHUB_SCREENSHOTS=1 $(BIN)/python -m pytest tests/web/test_workspace_browser.py -k "opens_beside or dark_mode"

# The interface's text catalogs: extract every gettext string of the code and templates (babel.cfg)
# into hub/locale/messages.pot and merge it into each language's .po (translate the new entries,
# then `make test`: tests/web/test_i18n.py fails on any string left untranslated). The hub reads
# the .po files themselves: there is nothing to compile.
messages: setup
	$(BIN)/pybabel --quiet extract -w 120 -F babel.cfg -k N_ -k pgettext:1c,2 --no-location --sort-output \
		--project servicehub --version 0.1 -o hub/locale/messages.pot .
	for po in hub/locale/*/LC_MESSAGES/messages.po; do \
		$(BIN)/pybabel --quiet update -w 120 --no-fuzzy-matching -i hub/locale/messages.pot -o $$po \
			-l $$(basename $$(dirname $$(dirname $$po))); \
	done

# Every figure of the README's Performance section (tens of minutes on two cores); one script
# alone: `.venv/bin/python bench/<name>.py` (--help for smaller runs).
bench: setup
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/email.py
	$(BIN)/python bench/hostile.py
	$(BIN)/python bench/inbox.py
	$(BIN)/python bench/kb.py
	$(BIN)/python bench/kb_quality.py
	$(BIN)/python bench/intents.py
	$(BIN)/python bench/scm.py
	$(BIN)/python bench/journeys.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/erase.py

clean:
	rm -rf $(VENV) data .pytest_cache
