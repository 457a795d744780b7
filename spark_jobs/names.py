"""Names the Spark jobs and the Airflow side share, in one Spark-free module.

The DAG factory, the sensor's trigger and the Airflow UI import this without
starting (or even importing) Spark, so nothing here may import ``pyspark``.
"""

# --- stages: the --mode values a process accepts and the DAG factory schedules ---------------
INGEST = "ingest"
INITIAL = "initial"
FORWARD = "forward"
BACKFILL = "backfill"
CLASSIFY = "classify"
CASE_I = "case-i"
CASE_II = "case-ii"
CASE_III = "case-iii"
MAINTENANCE = "maintenance"
DESCRIBE = "describe"
CHECK = "check"
REBUILD_LATEST = "rebuild-latest"

STAGES = (INGEST, INITIAL, FORWARD, BACKFILL, CLASSIFY, CASE_I, CASE_II, CASE_III, MAINTENANCE, DESCRIBE, CHECK, REBUILD_LATEST)
MONTH_RANGE_STAGES = (INITIAL, FORWARD)
DRY_RUN_STAGES = (INITIAL, FORWARD, BACKFILL, CLASSIFY)
FILTER_STAGES = (BACKFILL, CLASSIFY)

# --- backfill cases: the report's keys, and the stage that applies each ----------------------
CASES = ("I", "II", "III")
CASE_STAGES = {"I": CASE_I, "II": CASE_II, "III": CASE_III}

# --- exit codes of every stage --------------------------------------------------------------
EXIT_OK = 0
EXIT_FAILED = 1  # anything unexpected: the traceback is in the log
EXIT_BAD_INPUT = 2  # a config, file, argument or filter was refused before anything changed
EXIT_RULES_BROKEN = 3  # --mode check found rows breaking the table rules
EXIT_LOCK_HELD = 4  # another run holds (or took) the tables' run lock: nothing changed, the same stage can be retried
# What a retry can fix: an unexpected failure (a lost node, a killed JVM) and a busy lock; not bad input, not broken rules.
RETRYABLE_EXIT_CODES = (EXIT_FAILED, EXIT_LOCK_HELD)

# --- properties of the control table (<destination>_control) --------------------------------
PROPERTY_PREFIX = "summary-pipeline."
BACKFILL_MARK = "summary-pipeline.backfill.applied-source-snapshot"  # source snapshot every backfill applied up to
BACKFILL_PENDING = "summary-pipeline.backfill.pending."  # + run id -> source snapshot a classification read up to
MONTHS_SINCE_MAINTENANCE = "summary-pipeline.maintenance.forward-months-since"
LOCK_PREFIX = "summary-pipeline.lock."
PUBLISH_PREFIX = "summary-pipeline.publish."  # + a run's branch -> its run id: the run decided to publish (storage/publish.py)

# --- environment variables -----------------------------------------------------------------
WAREHOUSE_ENV = "SUMMARY_WAREHOUSE"
CATALOGS_ENV = "SUMMARY_CATALOGS"
CONFIGS_DIR_ENV = "SUMMARY_CONFIGS_DIR"
REPORTS_DIR_ENV = "SUMMARY_REPORTS_DIR"
SPARK_CONN_ENV = "SUMMARY_SPARK_CONN_ID"

# --- properties every table the pipeline creates carries: which config's which table it is ------------
TABLE_ROLE = "summary-pipeline.role"  # summary, latest_summary, staging, rejects, backfill, control, source
TABLE_OWNER = "summary-pipeline.destination"  # the normalized destination_table of the config that created it
TABLE_CONFIG = "summary-pipeline.config"  # the name of that config: two configs with one destination are told apart

# --- columns ------------------------------------------------------------------------------------
# Bookkeeping columns every summary and latest_summary row carries (docs/table-contract.md).
RECORD_DIGEST = "_record_digest"  # the winning record's digest: same digest, same record, nothing to do
PREVIOUS_MONTH = "_previous_month"  # the account's previous row, so a correction finds it without a scan
CARRIED_COLUMNS = "_carried_columns"  # the columns whose value was carried forward because the winner had NULL
BOOKKEEPING_COLUMNS = (RECORD_DIGEST, PREVIOUS_MONTH, CARRIED_COLUMNS)
# Columns of the pipeline's own tables.
RUN_ID = "_run_id"  # staging and backfill rows: the run (or classification) they belong to
INSERT = "_insert"  # a staged row whose key and month have no row in summary yet
REMOVED = "__removed"  # a summary row whose key and month the source no longer holds a valid record of
AS_SOURCE_STANDS = "__as_source_stands"  # a winner of a month judged as the source stands (it may replace a newer version)
# Working columns that pass between modules within one run (never stored in summary).
MONTH_NUMBER = "__month_number"  # year * 12 + month
REJECT_REASON = "__reject_reason"  # '' for a valid record
SOURCE_RECORD = "__source_record"  # the original record as JSON, for the rejects table
VERSION_CONFLICT = "__version_conflict"  # the winner tied on version with a different record
CASE = "__case"  # 1, 2, 3: Case I, II, III (CASES[CASE - 1])
FIRST_CHANGED = "__first_changed_month"  # an account's earliest changed month number
CHANGED_MONTHS = "__changed_months"
LATEST_MONTH = "__latest_month"  # the month number of the account's latest_summary row
