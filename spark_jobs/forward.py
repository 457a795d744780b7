"""``--mode initial`` and ``--mode forward``: build the tables from the source, month by month.

Both go through the batch engine (``apply``), so a month that was already
processed, even after later months exist, is simply applied again: nothing
changes when nothing new arrived, and later rows are corrected when something
did (v4 defects 1 and 9 do not exist). ``initial`` applies its whole month range
as one batch (one pass over the data, the fastest way to load history);
``forward`` applies one month at a time, in order.
"""

from contextlib import contextmanager

from pyspark.sql import functions as F

from spark_jobs.apply import apply_batch
from spark_jobs.config import SummaryConfig
from spark_jobs.errors import SourceDataError, UsageError
from spark_jobs.faults import crash_point
from spark_jobs.mapping import map_records
from spark_jobs.runlock import RunLock
from spark_jobs.tables import ensure_pipeline_tables, table_exists
from spark_jobs.writers import commit_staged, pending_run_ids


class NoLock:
    """Stands in for the run lock in a dry run, which commits nothing."""

    def check(self):
        pass


def source_table(spark, cfg: SummaryConfig):
    if not table_exists(spark, cfg.source_table):
        raise SourceDataError(f"source table {cfg.source_table} does not exist; load files with --mode ingest --path FILE first")
    return spark.table(cfg.source_table)


def prepare_tables(spark, cfg: SummaryConfig, source, dry_run=False):
    """Create the pipeline's tables from the mapped source schema (a dry run only checks they exist)."""
    if dry_run:
        missing = [t for t in (cfg.destination_table, cfg.latest_history_table, cfg.staging_table) if not table_exists(spark, t)]
        if missing:
            raise UsageError(f"--dry-run compares against existing tables, and {missing} do not exist yet")
        return
    ensure_pipeline_tables(spark, cfg, map_records(source.limit(0), cfg).schema)


@contextmanager
def exclusive_run(spark, cfg: SummaryConfig, report, lock_wait_seconds, dry_run=False):
    """Hold the run lock and first finish any run that died after staging its rows."""
    if dry_run:
        pending = pending_run_ids(spark, cfg)
        if pending:
            report.details["pending_runs"] = pending
        yield NoLock()
        return
    with RunLock(spark, cfg, report.run_id, wait_seconds=lock_wait_seconds) as lock:
        crash_point("after_lock", spark)
        for pending in pending_run_ids(spark, cfg):
            commit_staged(spark, cfg, pending, lock)
            report.recovered_runs.append(pending)
        yield lock


def run_months(spark, cfg: SummaryConfig, months, report, one_batch, dry_run=False, lock_wait_seconds=600):
    source = source_table(spark, cfg)
    prepare_tables(spark, cfg, source, dry_run)
    month_column = F.col(f"`{cfg.source_column(cfg.partition_column)}`")
    batches = [months] if one_batch else [[m] for m in months]
    per_batch = report.details.setdefault("batches", [])
    with exclusive_run(spark, cfg, report, lock_wait_seconds, dry_run) as lock:
        for batch_months in batches:
            batch_id = f"{report.run_id}-{batch_months[0]}"
            counts = apply_batch(spark, cfg, source.where(month_column.isin(batch_months)), batch_id, lock, batch_months, dry_run)
            report.add(counts)
            per_batch.append(
                {
                    "months": [batch_months[0], batch_months[-1]] if len(batch_months) > 1 else batch_months,
                    "records_read": counts.records_read,
                    "changed_records": counts.changed_records,
                    "rows_written": counts.rows_written,
                    "seconds": counts.seconds,
                }
            )
