# Every target a newcomer needs; README.md documents the same names.
VENV     ?= .venv
PY       := $(CURDIR)/$(VENV)/bin/python
STAMP    := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
CONFIG   ?= include/configs/summary_config.json
DEMO_DIR ?= demo_data
DEMO_ENV := SUMMARY_WAREHOUSE=$(CURDIR)/$(DEMO_DIR)/warehouse SUMMARY_REPORTS_DIR=$(CURDIR)/$(DEMO_DIR)/reports \
            AIRFLOW_HOME=$(CURDIR)/$(DEMO_DIR)/airflow_home \
            SPARK_SUBMIT_OPTS=-Dlog4j2.configurationFile=$(CURDIR)/conf/log4j2.properties
SUBMIT   := $(DEMO_ENV) $(CURDIR)/$(VENV)/bin/spark-submit spark_jobs/summary_pipeline.py --config $(CONFIG)
AIRFLOW  := $(DEMO_ENV) $(CURDIR)/bin/airflow
DAG_RUN  := $(DEMO_ENV) $(CURDIR)/bin/dag-run
PYTEST_ARGS ?=

# spark-submit finds its Spark home through the venv's python: the venv must come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup help jars class-archive cluster-jars test test-cluster test-extended test-fast test-faults test-airflow-live lint format \
        demo demo-cli airflow-ui bench clean
# `make` alone sets up; `make help` lists every target with the text after its `## `.
.DEFAULT_GOAL := setup

setup: $(STAMP) jars class-archive ## the venv with requirements-dev.txt (the runtime's pins and the tools) and the project (pip install -e .), the jars, the class archive; idempotent

help: ## list the targets and what each does
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(firstword $(MAKEFILE_LIST)) | awk 'BEGIN {FS = ":.*?## "}; {printf "%-18s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

jars: $(STAMP) ## fetch the Iceberg and SQLite JDBC jars into .jars/ (SUMMARY_JARS_DIR) once
	$(PY) -m spark_jobs.storage.jars

# The driver JVM's class-data-sharing archive (spark_jobs/storage/class_archive.py): once per JDK, Spark and jars.
class-archive: jars ## build the driver's class archive once (about 2 minutes; SUMMARY_CLASS_ARCHIVE=off skips it)
	$(PY) -m spark_jobs.storage.class_archive

test: setup ## the whole suite but the extended and cluster tiers (what CI runs, after make lint)
	$(PY) -m pytest -m "not extended and not cluster" $(PYTEST_ARGS)

# What make test leaves out: the DAGs end to end through `airflow dags test` (the live tier covers them under real services).
test-extended: setup ## the DAGs end to end in-process (airflow dags test), as make demo runs them
	$(PY) -m pytest -m extended $(PYTEST_ARGS)

test-fast: setup ## everything but the slow tests (spark-submit, randomized sequences, end-to-end runs)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# The full fault tier: 20 timed kill points per stage plus every named crash point (make test runs a reduced set).
test-faults: setup ## the full fault tier: kills at every commit boundary, races, bad input (60-80 min)
	SUMMARY_FAULT_FULL=1 $(PY) -m pytest -m faults $(PYTEST_ARGS)

# The DAGs under real Airflow services on PostgreSQL, driven through the REST API (make test runs a reduced scenario).
test-airflow-live: setup ## the DAGs under real Airflow services on PostgreSQL, through the REST API
	SUMMARY_LIVE_FULL=1 $(PY) -m pytest -m live $(PYTEST_ARGS)

# Scale-out: the jobs and the DAGs on a Spark standalone cluster, Iceberg's REST catalog (its server resolved by
# Maven into cluster/rest-catalog/.jars) and an S3 object store, all on loopback (not part of make test: 6-15 minutes).
cluster-jars: $(STAMP) ## resolve the REST catalog server's jars with Maven (for make test-cluster)
	$(PY) -m tests.cluster.services

test-cluster: setup cluster-jars ## the jobs and DAGs on a Spark cluster, a REST catalog and S3, on loopback
	$(PY) -m pytest -m cluster $(PYTEST_ARGS)

# Lint and type-check: needs the venv only, no network and no jars.
lint: $(STAMP) ## ruff check, ruff format --check, mypy and summary-validate of the shipped configs (what .pre-commit-config.yaml runs); no network
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/summary-validate include/configs include/examples

# What lint checks, fixed where a tool can: ruff's fixes first, then the formatting (ruff's own order).
format: $(STAMP) ## ruff check --fix and ruff format: fix what make lint would refuse, where ruff can
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The whole product on a laptop: sample feed -> Airflow DAGs (real spark-submit tasks) -> report.
demo: setup ## sample feed -> Airflow DAGs (real spark-submit tasks) -> what the tables hold
	rm -rf $(DEMO_DIR)
	$(PY) -m spark_jobs.sample_data --out $(DEMO_DIR)/source --accounts 2000 --start 2024-01 --months 12
	$(SUBMIT) --mode ingest --path $(DEMO_DIR)/source
	@echo "== forward DAG: first run = initial load 2024-01..2024-06 (chained tasks) + 2024-07"
	$(DAG_RUN) $(DEMO_DIR)/forward-2024-08-01.log summary_forward 2024-08-01
	@for date in 2024-09-01 2024-10-01 2024-11-01 2024-12-01 2025-01-01; do \
	  echo "== forward DAG, run of $$date"; $(DAG_RUN) $(DEMO_DIR)/forward-$$date.log summary_forward $$date || exit 1; done
	$(PY) -m spark_jobs.sample_data --out $(DEMO_DIR)/late --accounts 2000 --start 2024-01 --months 12 --late
	$(SUBMIT) --mode ingest --path $(DEMO_DIR)/late
	@echo "== backfill DAG: the sensor sees the late records, classify branches to the cases"
	$(DAG_RUN) $(DEMO_DIR)/backfill.log summary_backfill 2025-01-02
	$(SUBMIT) --mode describe
	$(PY) -m spark_jobs.report $(DEMO_DIR)/reports/summary_backfill.classify.*.json $(DEMO_DIR)/reports/summary_backfill.case_*.json
	@echo "== the pipeline page over these tables: run 'make airflow-ui', log in, then Browse > Summary pipeline"
	@echo "   (the page itself: http://localhost:8080/summary-pipeline/page)"

# The same without Airflow: the v4 command line only.
demo-cli: setup ## the same demo through the v4 command line only, no Airflow
	rm -rf $(DEMO_DIR)
	$(PY) -m spark_jobs.sample_data --out $(DEMO_DIR)/source --accounts 2000 --start 2024-01 --months 12
	$(SUBMIT) --mode ingest --path $(DEMO_DIR)/source
	$(SUBMIT) --mode initial --start-month 2024-01 --end-month 2024-06
	$(SUBMIT) --mode forward --start-month 2024-07 --end-month 2024-12
	$(PY) -m spark_jobs.sample_data --out $(DEMO_DIR)/late --accounts 2000 --start 2024-01 --months 12 --late
	$(SUBMIT) --mode ingest --path $(DEMO_DIR)/late
	$(SUBMIT) --mode backfill --dry-run
	$(SUBMIT) --mode backfill --report-file $(DEMO_DIR)/backfill.json
	$(SUBMIT) --mode describe
	$(PY) -m spark_jobs.report $(DEMO_DIR)/backfill.json

# The Airflow UI on http://localhost:8080 over the demo's tables (login: admin, password printed at start).
airflow-ui: setup ## airflow standalone on http://localhost:8080 over the demo's tables
	$(AIRFLOW) standalone

# Throughput, memory and growth, ours vs the v4 algorithms (not part of make test). ARGS=--small for a quick run.
bench: setup ## throughput and memory, ours vs v4, into bench/RESULTS.md (ARGS=--small: a quick run)
	$(PY) -m bench.run $(ARGS)

clean: ## remove the demo's data, the local warehouse, airflow_home and the tools' caches
	rm -rf $(DEMO_DIR) warehouse airflow_home .pytest_cache .ruff_cache
