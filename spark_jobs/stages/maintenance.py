"""``--mode maintenance``: Iceberg housekeeping of the pipeline's tables, never alongside a writer.

For ``summary`` and ``latest_summary``: compact data files (applying the
merge-on-read delete files of corrections), compact position deletes, rewrite
manifests, expire snapshots older than ``performance.snapshot_retention_days``
(keeping at least one), and remove orphan files older than that (at least a
day, so no other writer's in-flight files are touched). The small
tables (staging, backfill, rejects, control) get their snapshots expired: the
run lock adds two snapshots to the control table per run.

It takes the run lock like every writer: ``rewrite_data_files`` committing
alongside a MERGE on the same table is a classic source of failed commits.
Forward runs count the months applied since the last maintenance in the
control table; the report says ``maintenance_due`` once the count reaches v4's
``performance.snapshot_interval``, and maintenance resets it.
"""

import datetime as dt

from pyspark.sql import Row, SparkSession

from spark_jobs.catalogs import split_identifier
from spark_jobs.config import SummaryConfig
from spark_jobs.names import LOCK_WAIT_SECONDS
from spark_jobs.report import RunReport
from spark_jobs.stages.runs import exclusive_run
from spark_jobs.storage.iceberg import default_catalog, java_table
from spark_jobs.storage.publish import remove_branches
from spark_jobs.storage.tables import (
    reset_forward_months,
    sql_string,
    table_exists,
)


def _days_ago(days: float) -> str:
    """A timestamp literal ``days`` before now (taken when called: the rewrites just before add snapshots)."""
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
    return f"TIMESTAMP {sql_string(cutoff.strftime('%Y-%m-%d %H:%M:%S.%f'))}"


def _call_rows(spark: SparkSession, identifier: str, procedure: str, **arguments: object) -> list[Row]:
    catalog, _ = split_identifier(identifier, lambda: default_catalog(spark))
    # The full identifier: a two-part name would first be looked up as catalog.table (and logged as not found).
    args = ", ".join([f"table => {sql_string(identifier)}"] + [f"{k} => {v}" for k, v in arguments.items()])
    return spark.sql(f"CALL {catalog}.system.{procedure}({args})").collect()


def _call(spark: SparkSession, identifier: str, procedure: str, **arguments: object) -> dict[str, int | float]:
    """A procedure that answers one row of figures: those figures."""
    rows = _call_rows(spark, identifier, procedure, **arguments)
    return {k: v for k, v in rows[0].asDict().items() if isinstance(v, (int, float))} if rows else {}


# Locations Hadoop's FileSystem lists (distributed over the executors); any other scheme is an object
# store whose files only the table's FileIO can list (S3FileIO, GCSFileIO, ADLSFileIO: prefix listing).
HADOOP_LISTED_SCHEMES = ("", "file", "hdfs", "viewfs")


def lists_through_file_io(location: str) -> bool:
    scheme = location.split("://", 1)[0].lower() if "://" in location else ""
    return scheme not in HADOOP_LISTED_SCHEMES


def maintain(spark: SparkSession, cfg: SummaryConfig, report: RunReport, lock_wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
    retention_days = cfg.performance.snapshot_retention_days
    target_size = cfg.performance.max_file_size_mb * 1024 * 1024
    # delete-file-threshold 1: a data file with any merge-on-read delete is rewritten with the deletes applied.
    compaction = {
        "target-file-size-bytes": target_size,
        "min-input-files": 2,
        "delete-file-threshold": 1,
        "remove-dangling-deletes": "true",
    }
    compaction_options = "map(" + ", ".join(f"'{k}', '{v}'" for k, v in compaction.items()) + ")"

    def expire(identifier: str) -> dict[str, int | float]:
        return _call(spark, identifier, "expire_snapshots", older_than=_days_ago(retention_days), retain_last=1)

    def remove_orphans(identifier: str) -> dict[str, int | float]:
        # Files younger than a day may belong to a commit in flight from another catalog client.
        arguments: dict[str, object] = {"older_than": _days_ago(max(1, retention_days))}
        if lists_through_file_io(java_table(spark, identifier).location()):
            arguments["prefix_listing"] = "true"
        removed = _call_rows(spark, identifier, "remove_orphan_files", **arguments)  # one row per file removed
        return {"removed_files_count": len(removed)}

    results = {}
    with exclusive_run(spark, cfg, report, lock_wait_seconds) as lock:
        for identifier in (cfg.summary_table, cfg.latest_table):
            if not table_exists(spark, identifier):
                continue
            lock.check()
            results[identifier] = {
                # branches of runs that died before deciding to publish (invisible, but they pin old files)
                "removed_run_branches": len(remove_branches(spark, [identifier], lambda name: True)),
                "rewrite_data_files": _call(spark, identifier, "rewrite_data_files", options=compaction_options),
                "rewrite_position_delete_files": _call(spark, identifier, "rewrite_position_delete_files"),
                "rewrite_manifests": _call(spark, identifier, "rewrite_manifests"),
                "expire_snapshots": expire(identifier),
                "remove_orphan_files": remove_orphans(identifier),
            }
        for identifier in (cfg.staging_table, cfg.backfill_table, cfg.rejects_table, cfg.control_table):
            if table_exists(spark, identifier):
                lock.check()
                results[identifier] = {"expire_snapshots": expire(identifier)}
        lock.check()
        reset_forward_months(spark, cfg)
    report.details["maintenance"] = results
