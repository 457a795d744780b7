"""``--mode initial`` and ``--mode forward``: build the tables from the source, month by month.

Both go through the batch engine (``apply``), so a month that was already
processed, even after later months exist, is simply applied again: nothing
changes when nothing new arrived, and later rows are corrected when something
did (v4 defects 1 and 9 of docs/v4-defects.md do not exist). ``initial`` applies its whole month range
as one batch (one pass over the data, the fastest way to load history);
``forward`` applies one month at a time, in order.
"""

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.report import RunReport
from spark_jobs.stages.batch import apply_batch
from spark_jobs.stages.maintenance import count_forward_months
from spark_jobs.stages.runs import exclusive_run, prepare_tables, source_table
from spark_jobs.storage.runlock import RunLock


def run_months(
    spark: SparkSession,
    cfg: SummaryConfig,
    months: list[str],
    report: RunReport,
    one_batch: bool,
    dry_run: bool = False,
    lock_wait_seconds: float = 600,
) -> None:
    source = source_table(spark, cfg)
    prepare_tables(spark, cfg, source, dry_run)
    month_column = F.col(f"`{cfg.source_column(cfg.month_column)}`")
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
        if isinstance(lock, RunLock):  # (not a dry run)
            report.details["maintenance_due"] = count_forward_months(lock, cfg, len(months))
