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
	$(VENV)/bin/batcher run sample_inputs/cancellations.csv --status-column "Registration Status" --status CANCELED --sandbox --sandbox-registrations batcher/sandbox/data/registrations.csv --yes --results demo.results.csv; test $$? -le 1 && echo "demo: done; open demo.results.csv (exit 1 above means some sample rows are meant to fail)"

sandbox: $(STAMP)
	$(VENV)/bin/batcher sandbox

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info demo.results.csv sample_inputs/*.results.csv
