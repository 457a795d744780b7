# Every target a newcomer needs; README.md documents the same names.
VENV     ?= .venv
PY       := $(CURDIR)/$(VENV)/bin/python
STAMP    := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
CONFIG   ?= include/configs/summary_config.json
DEMO_DIR ?= demo_data
SUBMIT   := SUMMARY_WAREHOUSE=$(CURDIR)/$(DEMO_DIR)/warehouse $(CURDIR)/$(VENV)/bin/spark-submit spark_jobs/summary_pipeline.py --config $(CONFIG)
PYTEST_ARGS ?=

# spark-submit finds its Spark home through the venv's python: the venv must come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup jars test test-fast lint demo clean

setup: $(STAMP) jars

$(STAMP): requirements.txt
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

jars: $(STAMP)
	$(PY) -m spark_jobs.jars

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

demo: setup
	rm -rf $(DEMO_DIR)
	$(PY) -m spark_jobs.sample_data --out $(DEMO_DIR)/source --accounts 2000 --start 2024-01 --months 12
	$(SUBMIT) --mode ingest --path $(DEMO_DIR)/source
	$(SUBMIT) --mode initial --start-month 2024-01 --end-month 2024-06
	$(SUBMIT) --mode forward --start-month 2024-07 --end-month 2024-12
	$(SUBMIT) --mode backfill
	$(PY) -m spark_jobs.sample_data --out $(DEMO_DIR)/late --accounts 2000 --start 2024-01 --months 12 --late
	$(SUBMIT) --mode ingest --path $(DEMO_DIR)/late
	$(SUBMIT) --mode backfill --dry-run --report-file $(DEMO_DIR)/backfill-dry-run.json
	$(SUBMIT) --mode backfill --report-file $(DEMO_DIR)/backfill.json
	$(SUBMIT) --mode describe
	$(PY) -m spark_jobs.report $(DEMO_DIR)/backfill.json

clean:
	rm -rf $(DEMO_DIR) warehouse .pytest_cache .ruff_cache
