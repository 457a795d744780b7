"""``--mode rebuild-latest``: make ``latest_summary`` each account's newest ``summary`` row again.

``latest_summary`` is derived data (docs/table-contract.md §5), so when it is lost,
restored from an old snapshot or edited by hand, it can be rebuilt from
``summary`` in one pass. The run takes the lock and finishes any dead run
first, like every writing stage, and replaces the table in one commit.
"""

from pyspark.sql import DataFrame, SparkSession

from spark_jobs.config import SummaryConfig
from spark_jobs.errors import UsageError
from spark_jobs.names import LOCK_WAIT_SECONDS
from spark_jobs.report import RunReport
from spark_jobs.stages.runs import exclusive_run
from spark_jobs.storage.iceberg import current_snapshot
from spark_jobs.storage.tables import table_exists
from spark_jobs.storage.writers import newest_per_account, overwrite_unless_changed


def newest_summary_rows(spark: SparkSession, cfg: SummaryConfig) -> DataFrame:
    return newest_per_account(spark.table(cfg.summary_table), cfg)


def rebuild_latest(
    spark: SparkSession, cfg: SummaryConfig, report: RunReport, lock_wait_seconds: float = LOCK_WAIT_SECONDS
) -> None:
    for table in (cfg.summary_table, cfg.latest_table, cfg.control_table):
        if not table_exists(spark, table):
            raise UsageError(f"table {table} does not exist: run initial or forward before rebuilding latest_summary")
    with exclusive_run(spark, cfg, report, lock_wait_seconds) as lock:
        decided_on, _ = current_snapshot(spark, cfg.latest_table)
        expected = newest_summary_rows(spark, cfg).cache()
        try:
            actual = spark.table(cfg.latest_table).select(*cfg.summary_columns)
            report.details["rows_wrong_before"] = expected.exceptAll(actual).count()
            report.details["rows_unexpected_before"] = actual.exceptAll(expected).count()
            rows = expected.count()
            lock.check()
            overwrite_unless_changed(expected, cfg.latest_table, decided_on)
        finally:
            expected.unpersist()
        report.rows_written["latest_summary"] = rows
