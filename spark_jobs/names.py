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


def application_name(config_name: str, stage: str) -> str:
    """The Spark application's name (UI, history server, cluster manager): which config, which stage."""
    return f"summary-{config_name}-{stage}"


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

# --- defaults a stage's command line can override ----------------------------------------------
LOCK_WAIT_SECONDS = 600  # --lock-wait-seconds: how long a stage waits for the tables' run lock
BATCH_TIME_LIMIT_SECONDS = 1800  # --batch-time-limit: how long a filtered backfill or classify may hold the lock

# --- properties of the control table (<destination>_control) --------------------------------
PROPERTY_PREFIX = "summary-pipeline."
BACKFILL_MARK = "summary-pipeline.backfill.applied-source-snapshot"  # source snapshot every backfill applied up to
BACKFILL_PENDING = "summary-pipeline.backfill.pending."  # + run id -> source snapshot a classification read up to
MONTHS_SINCE_MAINTENANCE = "summary-pipeline.maintenance.forward-months-since"
LOCK_PREFIX = "summary-pipeline.lock."
PUBLISH_PREFIX = "summary-pipeline.publish."  # + a run's branch -> its run id: the run decided to publish (storage/publish.py)

# --- properties of each source snapshot an ingest appends: the file it read and its SHA-256 (read once) ---
INGESTED_FILE_PROPERTY = "summary-pipeline.file"
INGESTED_SHA_PROPERTY = "summary-pipeline.file-sha256"

# --- environment variables -----------------------------------------------------------------
WAREHOUSE_ENV = "SUMMARY_WAREHOUSE"
CATALOGS_ENV = "SUMMARY_CATALOGS"
CONFIGS_DIR_ENV = "SUMMARY_CONFIGS_DIR"
REPORTS_DIR_ENV = "SUMMARY_REPORTS_DIR"
SPARK_CONN_ENV = "SUMMARY_SPARK_CONN_ID"
# The Spark jobs: the session (storage/session.py), the jar cache (storage/jars.py), ingest (ingest_paths.py).
SPARK_MASTER_ENV = "SUMMARY_SPARK_MASTER"  # the master outside spark-submit (default local[*])
SPARK_LOG_LEVEL_ENV = "SUMMARY_SPARK_LOG_LEVEL"  # the SparkContext's log level (default WARN)
JARS_DIR_ENV = "SUMMARY_JARS_DIR"  # the jar cache (default .jars/ of the project)
MAVEN_REPO_ENV = "SUMMARY_MAVEN_REPO"  # where missing jars are fetched from (default Maven Central), read at import
CLASS_ARCHIVE_ENV = "SUMMARY_CLASS_ARCHIVE"  # the driver JVM's class-data-sharing archive: a file, or "off"
EXTRA_PACKAGES_ENV = "SUMMARY_EXTRA_PACKAGES"  # more jars by Maven coordinates, comma-separated group:artifact:version
INGEST_ROOTS_ENV = "SUMMARY_INGEST_ROOTS"  # the command line's ingest roots besides landing_dir (os.pathsep-separated)
ALERT_URL_ENV_PREFIX = "SUMMARY_ALERT_"  # airflow.alerts.webhook.url_env may only name variables that start so
# The Airflow side: Spark event logs of its stage tasks, and the bounded catalog reads of the triggerer and api-server.
SPARK_EVENT_LOG_DIR_ENV = "SUMMARY_SPARK_EVENT_LOG_DIR"  # a path or URI; "off" turns event logs off
SPARK_HISTORY_URL_ENV = "SUMMARY_SPARK_HISTORY_URL"  # the Spark history server over those logs, for the task link
CATALOG_TIMEOUT_ENV = "SUMMARY_CATALOG_TIMEOUT_SECONDS"  # each catalog and object-store request (default 10)
PAGE_TIMEOUT_ENV = "SUMMARY_PAGE_TIMEOUT_SECONDS"  # one config's reads for the page, queueing included (default 20)
PAGE_CACHE_ENV = "SUMMARY_PAGE_CACHE_SECONDS"  # how long a config's page figures are served again (default 30; 0: never)
EXTRA_CONFIG_FUNCTIONS_ENV = "SUMMARY_EXTRA_CONFIG_FUNCTIONS"  # SQL functions a config's expressions may also call
CRASH_ENV = "SUMMARY_PIPELINE_CRASH_AT"  # the fault tier: the named crash point at which a stage kills itself

# --- properties every table the pipeline creates carries: which config's which table it is ------------
TABLE_ROLE = "summary-pipeline.role"  # summary, latest_summary, staging, rejects, backfill, control, source
TABLE_OWNER = "summary-pipeline.destination"  # the normalized destination_table of the config that created it
TABLE_CONFIG = "summary-pipeline.config"  # the name of that config: two configs with one destination are told apart
CREATED_BY_VERSION = "summary-pipeline.created-by-version"  # the package version that created the table
LAST_RUN_VERSION = "summary-pipeline.last-run-version"  # control table: the version of the last run that took the lock

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
CASE = "__case"  # 1, 2, 3: an account's Case I, II, III (core/classify.py; CASES[CASE - 1]), kept in _backfill rows
FIRST_CHANGED = "__first_changed_month"  # an account's earliest changed month number
CHANGED_MONTHS = "__changed_months"
LATEST_MONTH = "__latest_month"  # the month number of the account's latest_summary row
