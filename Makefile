# One line per target. VENV can be overridden: make test VENV=/path/to/venv
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install test lint demo sandbox bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]" && touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check batcher tests bench && $(PY) -m ruff format --check batcher tests bench && $(PY) -m mypy && $(PY) -m mypy bench/*.py && $(VENV)/bin/lint-imports --no-logo

demo: $(STAMP)
	@echo "demo: the plan of an event's export, cancelling every registration in it (nothing is read or sent)"
	$(VENV)/bin/batcher plan sample_inputs/event_export.csv --status CANCELED
	@echo "demo: the run, against the in-process sandbox (no token, nothing leaves this machine)"
	$(VENV)/bin/batcher run sample_inputs/event_export.csv --status CANCELED --sandbox --sandbox-registrations batcher/sandbox/data/registrations.csv --yes --no-progress --results demo.results.csv
	@echo "demo: done; the results are in demo.results.csv. To look at them, or to try it yourself, paste:"
	@echo "  $(VENV)/bin/batcher report demo.results.csv"
	@echo "  $(VENV)/bin/batcher run sample_inputs/event_export.csv --status CANCELED --sandbox --sandbox-registrations batcher/sandbox/data/registrations.csv --results my.results.csv"

sandbox: $(STAMP)
	$(VENV)/bin/batcher sandbox

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info demo.results.csv* demo.results.verify.csv* demo.results.undo.csv* my.results.csv* sample_inputs/*.results.csv* sample_inputs/*.verify.csv* sample_inputs/*.undo.csv*
