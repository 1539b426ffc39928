# The two commands of README.md: `make serve` and `make test`. Both work on a
# fresh machine: they create .venv, install the project, and (for tests) the
# system packages the suite reads.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# Debian packages the service (and its data-backed features) read; the tests also drive a real browser.
SYSTEM_PACKAGES := dataset-fashion-mnist
TEST_SYSTEM_PACKAGES := $(SYSTEM_PACKAGES) chromium

PACKAGES ?= $(SYSTEM_PACKAGES)

# the project as pip installs it: here editable with the extras the suite and lint need; deploy/Dockerfile
# installs the same PROJECT without -e and without EXTRAS (tests/deploy/test_manifests.py checks both)
PROJECT := .
EXTRAS := test,dev

.PHONY: serve test test-fast lint install bundles system-deps bench bench-latency bench-latency-host bench-proxies bench-search bench-service bench-dashboard bench-scale clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '$(PROJECT)[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

# the dashboard's partial plotly.js bundles (job page: scattergl + parcoords; others: scatter + bar; 3-D on
# demand), from the npm registry's plotly.js package, pinned by version and sha512 (service/dashboard/vendor.py)
BUNDLES := service/dashboard/static/vendor/plotly.json
$(BUNDLES): service/dashboard/vendor.py | $(STAMP)
	$(BIN)/python -m service.dashboard.vendor

bundles: $(BUNDLES)

system-deps:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

serve: install system-deps
	@$(MAKE) --no-print-directory bundles || echo "dashboard: no npm; serving the full plotly.js (a slower first paint)"
	$(BIN)/hwnas serve --host $(HOST) --port $(PORT)

# the suite checks the vendored plotly.js bundles, so it needs npm: Debian's, where the machine has none
test: install
	@$(MAKE) --no-print-directory system-deps PACKAGES="$(TEST_SYSTEM_PACKAGES)"
	@command -v npm >/dev/null || $(MAKE) --no-print-directory system-deps PACKAGES=npm
	@$(MAKE) --no-print-directory bundles
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# the quick loop: the same suite less the tests marked slow (each over ~5 s: Ray, the dashboard in a browser,
# training runs, killed controllers); `make test` stays the full check
test-fast: install
	@$(MAKE) --no-print-directory system-deps PACKAGES="$(TEST_SYSTEM_PACKAGES)"
	@command -v npm >/dev/null || $(MAKE) --no-print-directory system-deps PACKAGES=npm
	@$(MAKE) --no-print-directory bundles
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

lint: install
	$(BIN)/ruff check searchspace latency_tables nas service tests benchmarks
	$(BIN)/ruff format --check searchspace latency_tables nas service tests benchmarks
	$(BIN)/mypy searchspace latency_tables nas service

bench: install
	$(BIN)/python benchmarks/searchspace.py

# about an hour on 2 cores: 100 nets per space, each measured twice, both profiles
bench-latency: install
	$(BIN)/python benchmarks/latency.py

# a new user's first use on this machine: host check, first-use tables, their validation, the shipped table's error
bench-latency-host: install
	$(BIN)/python benchmarks/latency_host.py

# the proxies' evidence, resumable (each training run is appended to benchmarks/results/ as it ends): the
# protocol pilot, the ground truth (60 nets x 4 seeds, about 24 CPU hours), then the report
bench-proxies: install system-deps
	$(BIN)/python benchmarks/proxies.py pilot
	$(BIN)/python benchmarks/proxies.py truth
	$(BIN)/python benchmarks/proxies.py report

bench-search: install system-deps
	$(BIN)/python benchmarks/search.py

# the REST service as a user sees it: reads of a 10,000-trial job on SQLite and PostgreSQL (a fresh database on
# postgres@127.0.0.1:5432, dropped after), POST to first trial; 20-30 minutes on 2 cores
bench-service: install system-deps
	$(BIN)/python benchmarks/service.py

# the dashboard in Chromium on a 50,000-trial job (--db keeps the filled job for the next run)
# docs/scaling.md's figures: controller cost and database statements per trial (SQLite, and PostgreSQL when
# HWNAS_TEST_POSTGRES_URL names a server), lookups, Ray round trips, proxy costs; a few minutes
bench-scale: install
	$(BIN)/python benchmarks/scale.py

bench-dashboard: install bundles
	@$(MAKE) --no-print-directory system-deps PACKAGES="$(TEST_SYSTEM_PACKAGES)"
	$(BIN)/python benchmarks/dashboard.py --db hwnas-bench-dashboard.db

clean:
	rm -rf $(VENV) service/dashboard/static/vendor .pytest_cache .mypy_cache .ruff_cache .hypothesis
