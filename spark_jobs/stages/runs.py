"""What every writing stage does around its work: find the source, create the tables, hold the lock, recover."""

import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from pyspark.sql import DataFrame, SparkSession

from spark_jobs.config import SummaryConfig
from spark_jobs.core.mapping import map_records
from spark_jobs.errors import SourceDataError, UsageError
from spark_jobs.faults import crash_point
from spark_jobs.report import RunReport
from spark_jobs.storage import publish
from spark_jobs.storage.runlock import RunLock
from spark_jobs.storage.tables import ensure_pipeline_tables, require_owned, table_exists
from spark_jobs.storage.writers import commit_staged, pending_run_ids


class NoLock:
    """Stands in for the run lock in a dry run, which commits nothing."""

    token: str | None = None

    def check(self) -> None:
        pass

    def clear_at_release(self, *keys: str) -> None:
        pass

    def set_at_release(self, properties: Mapping[str, str]) -> None:
        pass


def source_table(spark: SparkSession, cfg: SummaryConfig) -> DataFrame:
    if not table_exists(spark, cfg.source_table):
        raise SourceDataError(f"source table {cfg.source_table} does not exist; load files with --mode ingest --path FILE first")
    return spark.table(cfg.source_table)


def prepare_tables(spark: SparkSession, cfg: SummaryConfig, source: DataFrame, dry_run: bool = False) -> None:
    """Create the pipeline's tables from the mapped source schema (a dry run only checks they exist)."""
    if dry_run:
        missing = [t for t in (cfg.summary_table, cfg.latest_table) if not table_exists(spark, t)]
        if missing:
            raise UsageError(f"--dry-run compares against existing tables, and {missing} do not exist yet")
        return
    ensure_pipeline_tables(spark, cfg, map_records(source.limit(0), cfg).schema)


@contextmanager
def time_limit(spark: SparkSession, seconds: float | None, what: str) -> Iterator[None]:
    """Cancel every Spark job started inside after ``seconds`` and raise UsageError naming ``what``.

    For work whose cost people choose (a backfill filter) while the run lock is held: it cannot keep the
    tables from every other run for longer than this. Nothing is committed by a cancelled job.
    """
    if not seconds:
        yield
        return
    context, group, expired = spark.sparkContext, f"summary-time-limit-{uuid.uuid4().hex[:8]}", threading.Event()
    context.setJobGroup(group, what, interruptOnCancel=True)

    def expire() -> None:
        expired.set()
        context.cancelJobGroup(group)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except Exception:
        if expired.is_set():
            raise UsageError(f"{what} did not finish within {seconds} s (--batch-time-limit); its jobs were cancelled") from None
        raise
    finally:
        timer.cancel()
        for key in ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"):
            context.setLocalProperty(key, None)  # type: ignore[arg-type]  # None removes it (SparkContext.setLocalProperty)


@contextmanager
def exclusive_run(
    spark: SparkSession, cfg: SummaryConfig, report: RunReport, lock_wait_seconds: float, dry_run: bool = False
) -> Iterator[RunLock | NoLock]:
    """Hold the run lock and first finish what a run that died left: a publication it decided, staged rows."""
    if dry_run:
        pending_runs = pending_run_ids(spark, cfg)
        if pending_runs:
            report.details["pending_runs"] = pending_runs
        yield NoLock()
        return
    # The lock is written into the control table and recovery deletes from (an earlier version's) staging table:
    # both must be this config's.
    for identifier, role in ((cfg.control_table, "control"), (cfg.staging_table, "staging")):
        if table_exists(spark, identifier):
            require_owned(spark, cfg, identifier, role)
    with RunLock(spark, cfg, report.run_id, wait_seconds=lock_wait_seconds) as lock:
        crash_point("after_lock", spark)
        report.recovered_runs += publish.recover(spark, cfg, lock.properties)
        for pending in pending_run_ids(spark, cfg):
            commit_staged(spark, cfg, pending, lock)
            report.recovered_runs.append(pending)
        yield lock
