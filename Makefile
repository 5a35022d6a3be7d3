# claude-nexus: every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced
RUNTIME_STAMP := $(VENV)/.synced-runtime
# Real Claude Code, for the end-to-end tests (a native binary from the npm registry).
CLAUDE_CODE_VERSION := 2.1.330
CLAUDE_CODE := $(TOOLS)/claude-code/node_modules/.bin/claude
# The dashboard's JS assets (htmx, its SSE extension, Chart.js) from the npm registry, pinned with
# their integrity in the script; gitignored, shipped in the wheel. The manifest it writes last is the stamp.
DASHBOARD_ASSETS := src/nexus/entrypoints/dashboard/static/vendor/manifest.json
# Use the machine's Python; never download one.
export UV_PYTHON_DOWNLOADS := never

.DEFAULT_GOAL := help
.PHONY: help install run test test-unit test-integration lint fmt clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $(STAMP)

$(DASHBOARD_ASSETS): scripts/fetch_dashboard_assets.py
	@$(PYTHON) scripts/fetch_dashboard_assets.py

# `make run` needs only what the product needs: no test or lint tools. --inexact keeps the dev
# tools of an earlier `make test` in place instead of uninstalling them.
$(RUNTIME_STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --no-dev --inexact --python $(PYTHON)
	@touch $(RUNTIME_STAMP)

install: $(STAMP) $(DASHBOARD_ASSETS) ## Create .venv, install the locked dependencies and the dashboard's JS assets

$(CLAUDE_CODE):
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/claude-code "@anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)"

# Debian's chromium for the browser tests (driven by Playwright with executable_path), installed if missing.
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null || { \
		echo "installing chromium with apt-get"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null \
			|| { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; \
	}

run: $(RUNTIME_STAMP) $(DASHBOARD_ASSETS) ## Run the proxy and its dashboard on port 3000 (PORT, HOST and the rest from the environment or .env; logs as text unless LOG_FORMAT says otherwise)
	LOG_FORMAT=$${LOG_FORMAT:-text} DASHBOARD_GENERATE_KEY=true $(BIN)/claude-nexus-proxy

test: $(STAMP) $(DASHBOARD_ASSETS) $(CLAUDE_CODE) chromium ## Run the whole test suite (installs Claude Code for the end-to-end tests, chromium for the browser tests)
	$(BIN)/pytest

test-unit: $(STAMP) $(DASHBOARD_ASSETS) ## Run the unit tests only
	$(BIN)/pytest tests/unit

test-integration: $(STAMP) $(DASHBOARD_ASSETS) $(CLAUDE_CODE) ## Run the integration tests only
	$(BIN)/pytest tests/integration tests/support_tests

# Every Dockerfile of the project (the root one builds both images; see docs/deployment.md).
DOCKERFILES = $(wildcard Dockerfile *.Dockerfile deploy/*Dockerfile* deploy/*/Dockerfile*)

lint: $(STAMP) $(DASHBOARD_ASSETS) ## ruff, the strict type checker, the layer contract, hadolint and the Kubernetes schemas
	$(BIN)/ruff check src tests migrations bench scripts
	$(BIN)/ruff format --check src tests migrations bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint $(DOCKERFILES)
	$(BIN)/kubernetes-validate --strict --quiet deploy/kubernetes/*.yaml

fmt: $(STAMP) ## Format and auto-fix
	$(BIN)/ruff check --fix src tests migrations bench scripts
	$(BIN)/ruff format src tests migrations bench scripts

.PHONY: bench
bench: $(STAMP) ## Run the load benchmark on loopback (installs nginx-light and wrk with apt-get if missing)
	@missing=""; command -v nginx >/dev/null || missing="nginx-light"; command -v wrk >/dev/null || missing="$$missing wrk"; \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing with apt-get"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends $$missing \
			|| { apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; }; \
	fi
	ulimit -n 65536 2>/dev/null || ulimit -n $$(ulimit -Hn); $(BIN)/python bench/run.py $(BENCH_ARGS)

clean: ## Remove the virtualenvs and caches
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
