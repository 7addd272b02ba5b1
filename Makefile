# bedside — the two commands: `make demo` and `make test`. Both set up what they need first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
NPMSTAMP := dashboard/node_modules/.installed
PACKAGES := monitor drivers alerts dashboard simulators

.PHONY: venv demo test test-pg lint typecheck unit integration browser system-deps clean bench fuzz

venv: $(STAMP) $(NPMSTAMP)

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "bedside needs Python >= 3.11")'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(NPMSTAMP): dashboard/package.json dashboard/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: apt-get install nodejs npm"; exit 1; }
	cd dashboard && npm ci --no-audit --no-fund --loglevel=error
	touch $@

system-deps:
	@scripts/ensure-system-deps

demo: venv
	@scripts/ensure-system-deps --optional mosquitto
	$(BIN)/bedside demo --speed 10

lint: venv
	$(BIN)/ruff check $(PACKAGES) tests bench fuzz

typecheck: venv
	$(BIN)/mypy --strict $(PACKAGES) bench fuzz

unit: venv
	$(BIN)/pytest -q tests/unit

integration: venv system-deps
	$(BIN)/pytest -q tests/integration

browser: venv system-deps
	$(BIN)/pytest -q tests/browser

test: venv system-deps lint typecheck
	$(BIN)/pytest -q -rs -p no:cacheprovider tests
	@$(MAKE) --no-print-directory test-pg

# the service tests (marker `service`: they build a Service or run `bedside run`) again, with their traces in
# PostgreSQL: a fresh database per data dir on the server of PG_URL (tests/storage.py). Skipped, and said so, when
# that server does not answer. The browser tests are left out (make test-pg PG_TESTS=service to include them).
PG_URL   ?= postgresql://root@127.0.0.1:5432/test
PG_TESTS ?= service and not browser
test-pg: venv system-deps
	@why=$$($(BIN)/python -m tests.storage '$(PG_URL)'); rc=$$?; \
	if [ $$rc -eq 1 ]; then echo "*** PostgreSQL pass SKIPPED: no usable PostgreSQL at $(PG_URL): $$why"; exit 0; fi; \
	[ $$rc -eq 0 ] || { echo "$$why"; exit $$rc; }; \
	echo "PostgreSQL pass: the service tests with their traces in PostgreSQL ($(PG_URL))"; \
	BEDSIDE_TEST_STORAGE_URL='$(PG_URL)' $(BIN)/pytest -q -rs -p no:cacheprovider -m '$(PG_TESTS)' tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "PostgreSQL pass: no tests selected by -m '$(PG_TESTS)'"; exit 0; fi; exit $$rc

bench: venv system-deps
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/trend.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/capacity.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/dashboard_load.py

# a million inputs per parser of untrusted bytes (fuzz/), then schemathesis at length over the HTTP API
fuzz: venv
	$(BIN)/python -m fuzz --inputs 1000000
	BEDSIDE_API_FUZZ_EXAMPLES=300 $(BIN)/pytest -q -p no:cacheprovider --timeout 900 tests/unit/test_api_schemathesis.py

clean:
	rm -rf $(VENV) dashboard/node_modules .mypy_cache .ruff_cache .pytest_cache
