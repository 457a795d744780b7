"""``--mode maintenance``: Iceberg housekeeping of the pipeline's tables, never alongside a writer.

For ``summary`` and ``latest_summary``: compact data files (applying the
merge-on-read delete files of corrections), compact position deletes, expire
snapshots older than ``performance.snapshot_retention_days`` (keeping at least
one), remove orphan files older than that, and rewrite manifests. The small
tables (staging, backfill, rejects, control) get their snapshots expired: the
run lock adds two snapshots to the control table per run.

It takes the run lock like every writer: ``rewrite_data_files`` committing
alongside a MERGE on the same table is a classic source of failed commits.
Forward runs count the months applied since the last maintenance in the
control table; the report says ``maintenance_due`` once the count reaches v4's
``performance.snapshot_interval``, and maintenance resets it.
"""

import datetime as dt

from spark_jobs.config import SummaryConfig
from spark_jobs.forward import exclusive_run
from spark_jobs.iceberg import swap_properties, table_properties
from spark_jobs.tables import sql_string, table_exists

MONTHS_SINCE = "summary-pipeline.maintenance.forward-months-since"


def _procedure_target(identifier, spark):
    parts = identifier.split(".")
    catalog = parts[0] if len(parts) == 3 else spark.conf.get("spark.sql.defaultCatalog")
    return catalog, ".".join(parts[-2:])


def _call(spark, identifier, procedure, **arguments):
    catalog, table = _procedure_target(identifier, spark)
    args = ", ".join([f"table => {sql_string(table)}"] + [f"{k} => {v}" for k, v in arguments.items()])
    rows = spark.sql(f"CALL {catalog}.system.{procedure}({args})").collect()
    return {k: v for k, v in rows[0].asDict().items() if isinstance(v, (int, float))} if rows else {}


def maintain(spark, cfg: SummaryConfig, report, lock_wait_seconds=600):
    retention_days = cfg.performance.snapshot_retention_days
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=retention_days)
    older_than = f"TIMESTAMP {sql_string(cutoff.strftime('%Y-%m-%d %H:%M:%S'))}"
    # Orphans younger than a day may belong to a commit in flight elsewhere (another catalog client).
    orphan_cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=max(1, retention_days))
    orphan_older_than = f"TIMESTAMP {sql_string(orphan_cutoff.strftime('%Y-%m-%d %H:%M:%S'))}"
    target_size = cfg.performance.max_file_size_mb * 1024 * 1024
    # delete-file-threshold 1: a data file with any merge-on-read delete is rewritten with the deletes applied.
    compaction_options = f"map('target-file-size-bytes', '{target_size}', 'min-input-files', '2', 'delete-file-threshold', '1')"
    results = {}
    with exclusive_run(spark, cfg, report, lock_wait_seconds) as lock:
        for identifier in (cfg.destination_table, cfg.latest_history_table):
            if not table_exists(spark, identifier):
                continue
            lock.check()
            done = {
                "rewrite_data_files": _call(
                    spark,
                    identifier,
                    "rewrite_data_files",
                    options=compaction_options,
                ),
                "rewrite_position_delete_files": _call(spark, identifier, "rewrite_position_delete_files"),
                "expire_snapshots": _call(spark, identifier, "expire_snapshots", older_than=older_than, retain_last=1),
                "remove_orphan_files": _call(spark, identifier, "remove_orphan_files", older_than=orphan_older_than),
                "rewrite_manifests": _call(spark, identifier, "rewrite_manifests"),
            }
            results[identifier] = done
        for identifier in (cfg.staging_table, cfg.backfill_table, cfg.rejects_table, cfg.control_table):
            if table_exists(spark, identifier):
                lock.check()
                expired = _call(spark, identifier, "expire_snapshots", older_than=older_than, retain_last=1)
                results[identifier] = {"expire_snapshots": expired}
        lock.check()
        swap_properties(spark, cfg.control_table, lambda p: {MONTHS_SINCE: "0"})
    report.details["maintenance"] = results


def count_forward_months(spark, cfg: SummaryConfig, months_applied):
    """Add to the months-since-maintenance counter; return whether maintenance is due."""
    state = {}

    def add(properties):
        state["count"] = int(properties.get(MONTHS_SINCE, "0") or 0) + months_applied
        return {MONTHS_SINCE: str(state["count"])}

    for _ in range(5):
        committed, _ = swap_properties(spark, cfg.control_table, add)
        if committed:
            break
    return state.get("count", 0) >= cfg.performance.snapshot_interval


def months_since_maintenance(spark, cfg):
    return int(table_properties(spark, cfg.control_table).get(MONTHS_SINCE, "0") or 0)
