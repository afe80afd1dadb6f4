# Churn platform: `make demo` and `make test` are the two commands a new user needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-fast test-slow lint format bench airflow-ui mlflow-ui clean

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	# constraints.txt pins every package (torch==2.13.0 included, so pip never pulls a newer CUDA build).
	# For a CUDA build: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu126 make venv
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	@touch $@

venv: $(VENV)/.installed ## create .venv, install pinned dependencies and the system packages (Chromium)
	@bash scripts/install_system_deps.sh

demo: venv ## run the main job end to end on embedded defaults (DuckDB, SQLite MLflow/Airflow, sample data)
	@bash scripts/demo.sh

# Tests run in TEST_WORKERS pytest-xdist processes (default 2, the cores CI has): most of the suite keeps one core busy
# (Python, Airflow subprocesses, SQL), so two workers on two cores take ~11 min instead of ~19. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

test: venv ## run the whole test suite (DuckDB and PostgreSQL) in TEST_WORKERS processes (default 2)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

test-fast: venv ## skip slow tests (training, whole-DAG runs)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow"

lint: venv ## ruff check + ruff format --check (CI runs this)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: venv ## ruff format + autofix
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

bench: venv ## benchmarks at SCALE (default 10k): make bench SCALE=100k
	$(BIN)/python -m benchmarks --scale $(or $(SCALE),10k)

# `airflow standalone` starts its components by running `airflow` from PATH: the venv's bin goes first.
airflow-ui: venv ## start Airflow (api-server, scheduler, dag-processor, triggerer) with these DAGs on :8080
	@echo "DAGs start paused: unpause one in the UI (toggle) or with: .venv/bin/airflow dags unpause churn_scoring"
	AIRFLOW__CORE__PARALLELISM=$${AIRFLOW__CORE__PARALLELISM:-4} bash scripts/airflow_ui.sh

mlflow-ui: venv ## open the MLflow UI on :5000 over the local store
	@# a moved or copied checkout: point the store's absolute artifact URIs at this checkout first
	@$(BIN)/python -c 'from pipelines.config import load_config; from pipelines.tracking import relocate_artifact_uris; relocate_artifact_uris(load_config())'
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db --port 5000

clean: ## remove local state (warehouse, MLflow store, reports, Airflow home); keeps .venv
	rm -rf data/*.duckdb data/datasets data/models reports/* mlflow/mlflow.db mlflow/artifacts .airflow gx/uncommitted
