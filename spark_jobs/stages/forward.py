"""``--mode initial`` and ``--mode forward``: build the tables from the source, month by month.

A month after every stored month (the scheduled run) takes the fast path,
``scheduled_month``: one pass over ``latest_summary``. Every other batch goes
through the general engine (``batch.apply_batch``), so a month that was
already processed, even after later months exist, is simply applied again:
nothing changes when nothing new arrived, and later rows are corrected when
something did (v4 defects 1 and 9 of docs/v4-defects.md do not exist).
``initial`` applies its whole month range as one batch (one pass over the
data, the fastest way to load history); ``forward`` applies one month at a
time, in order.
"""

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.names import LOCK_WAIT_SECONDS
from spark_jobs.report import BatchCounts, RunReport
from spark_jobs.stages.batch import apply_batch
from spark_jobs.stages.runs import exclusive_run, prepare_tables, source_table
from spark_jobs.stages.scheduled_month import apply_next_month, follows_every_stored_month
from spark_jobs.storage.runlock import HeldLock, RunLock
from spark_jobs.storage.tables import count_forward_months


def run_months(
    spark: SparkSession,
    cfg: SummaryConfig,
    months: list[str],
    report: RunReport,
    one_batch: bool,
    dry_run: bool = False,
    lock_wait_seconds: float = LOCK_WAIT_SECONDS,
) -> None:
    source = source_table(spark, cfg)
    prepare_tables(spark, cfg, source, dry_run)
    month_column = F.col(f"`{cfg.source_column(cfg.month_column)}`")
    batches = [months] if one_batch else [[m] for m in months]
    per_batch = report.details.setdefault("batches", [])
    with exclusive_run(spark, cfg, report, lock_wait_seconds, dry_run) as lock:
        for batch_months in batches:
            batch_id = f"{report.run_id}-{batch_months[0]}"
            records = source.where(month_column.isin(batch_months))
            counts = apply_months(spark, cfg, records, batch_id, lock, batch_months, dry_run)
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
        if isinstance(lock, RunLock):  # (not a dry run)
            report.details["maintenance_due"] = count_forward_months(lock, cfg, len(months))


def apply_months(
    spark: SparkSession,
    cfg: SummaryConfig,
    source: DataFrame,
    run_id: str,
    lock: HeldLock,
    months: list[str],
    dry_run: bool,
) -> BatchCounts:
    """Apply ``source``, the records of ``months``: the fast path when that is one month after every stored
    month (a dry run counts through the general engine, which writes nothing), else the general engine."""
    if len(months) == 1 and not dry_run and follows_every_stored_month(spark, cfg, months[0]):
        return apply_next_month(spark, cfg, source, months[0], run_id, lock)
    return apply_batch(spark, cfg, source, run_id, lock, months, dry_run)
