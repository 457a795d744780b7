"""Backfill: apply late and corrected records, as one process or as classify + Case I/II/III stages.

What a backfill reads:

* with ``--backfill-filter``: the source records matching that expression
  (``filters``), optionally limited to a month range;
* otherwise every record appended to the source table since the last applied
  backfill, whatever its version: an Iceberg incremental read between the
  source snapshot recorded in the control table's properties (the mark) and the
  current one. v4's version high-water mark missed late records stamped with
  an old version; snapshots do not. The mark moves only once the whole batch
  is applied (never for a filtered or month-limited batch). The first backfill
  reads the whole table (already-applied records are recognised and skipped).

The stages, each its own process so Airflow can branch between them:

* ``classify`` judges the batch against the tables, classifies each changed
  account (Case I/II/III, ``classify``) and persists the changed winners in
  ``<summary>_backfill`` under a new run id, with per-case counts in its report.
  A classification supersedes any unfinished earlier one: it re-reads the same
  records anyway, since the mark has not moved.
* ``case-i|case-ii|case-iii --run-id ID`` applies that case's accounts with the
  batch engine (which re-judges them, so a forward run in between cannot be
  undone by a stale record), then deletes them; the stage that leaves nothing
  pending moves the mark.
* ``backfill`` does all of it in one process.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.core import mapping
from spark_jobs.core.filters import checked_filter
from spark_jobs.errors import UsageError
from spark_jobs.names import BATCH_TIME_LIMIT_SECONDS, CASE, CASE_STAGES, CASES, LOCK_WAIT_SECONDS
from spark_jobs.report import RunReport
from spark_jobs.stages.batch import BatchRun
from spark_jobs.stages.runs import exclusive_run, prepare_tables, source_table, time_limit
from spark_jobs.stages.stored_reads import ALL_MONTHS
from spark_jobs.storage import classifications
from spark_jobs.storage.iceberg import current_snapshot
from spark_jobs.storage.source_changes import FULL_TABLE, INCREMENTAL, SourceChanges, changes_between
from spark_jobs.storage.tables import require_owned

CASE_NUMBERS = {stage: number for number, stage in enumerate(CASE_STAGES.values(), start=1)}  # case-i -> 1 (classify.CASE)


@dataclass(frozen=True)
class SelectedBatch:
    """The records a backfill applies, the source snapshot they reach (None: the mark must not move), what they
    are, and the months judged as the source stands (``ALL_MONTHS``: every month; empty: none)."""

    records: DataFrame
    end: int | None
    what: str
    as_source_stands: tuple[str, ...] | str = ()
    read_path: dict[str, object] | None = None


def select_batch(
    spark: SparkSession,
    cfg: SummaryConfig,
    backfill_filter: tuple[str, Column] | None = None,
    months: list[str] | None = None,
) -> SelectedBatch:
    """The batch a backfill applies: filtered records, or what the source snapshots since the mark changed.

    ``backfill_filter``: (text, Column) as ``filters.checked_filter`` accepted it, before the run lock.
    """
    source = source_table(spark, cfg)
    month_column = F.col(f"`{cfg.source_column(cfg.month_column)}`")
    if backfill_filter:
        text, condition = backfill_filter
        selected = SelectedBatch(source.where(condition), None, f"records matching {text!r}")
    else:
        selected = _since_mark(spark, cfg, source, month_column)
    if months:
        # Records of other months stay unapplied, so a month-limited batch must not move the mark.
        limited = [m for m in selected.as_source_stands if m in months] if selected.as_source_stands != ALL_MONTHS else months
        selected = replace(
            selected,
            records=selected.records.where(month_column.isin(months)),
            end=None,
            what=f"{selected.what}, months {months[0]}..{months[-1]} only",
            as_source_stands=tuple(limited),
        )
    return selected


def _since_mark(spark: SparkSession, cfg: SummaryConfig, source: DataFrame, month_column: Column) -> SelectedBatch:
    """Every change to the source between the mark and its current snapshot, read the way ``source_changes`` decides."""
    end, _ = current_snapshot(spark, cfg.source_table)
    start = classifications.applied_mark(spark, cfg)
    if end is None or str(end) == start:
        return SelectedBatch(source.limit(0), end, "no source snapshot since the last backfill")
    # (a DataFrameReader keeps its options: one each, or the time travel and the incremental read collide)
    at_end = spark.read.format("iceberg").option("versionAsOf", end).load(cfg.source_table)
    if start is None:
        path = SourceChanges(FULL_TABLE, "first backfill: the mark does not exist yet")
    else:
        path = changes_between(spark, cfg.source_table, int(start), end, cfg.source_column(cfg.month_column))
    read_path = path.describe()
    if path.path == FULL_TABLE:
        what = f"every source record at snapshot {end}, judged as the source stands ({path.reason})"
        return SelectedBatch(at_end, end, what, ALL_MONTHS, read_path)
    incremental = spark.read.format("iceberg").option("start-snapshot-id", start).option("end-snapshot-id", end)
    appended = incremental.load(cfg.source_table)
    if path.path == INCREMENTAL:
        return SelectedBatch(appended, end, f"records appended after source snapshot {start} up to {end}", (), read_path)
    touched = list(path.touched_months)
    # Records appended to a touched month are read with the rest of it (an append read could return records
    # a later snapshot removed).
    records = appended.where(~month_column.isin(touched)).unionByName(at_end.where(month_column.isin(touched)))
    what = (
        f"records appended after source snapshot {start} up to {end}, and months {', '.join(touched)} whole "
        "(rewritten by a MERGE, overwrite or delete)"
    )
    return SelectedBatch(records, end, what, tuple(touched), read_path)


@contextmanager
def judged_batch(
    spark: SparkSession,
    cfg: SummaryConfig,
    report: RunReport,
    backfill_filter: str | None,
    months: list[str] | None,
    dry_run: bool,
    lock_wait_seconds: float,
    batch_time_limit: float | None = None,
    judge_only: bool = False,
) -> Iterator[tuple[BatchRun, DataFrame | None, DataFrame | None, int | None]]:
    """Hold the lock (after recovery), select the batch, map it and judge it against the tables.

    Yields the BatchRun, its winners and the changed winners (None when nothing changes) and the source
    snapshot the batch reaches; the caller applies or persists them while the lock is still held.
    """
    source = source_table(spark, cfg)
    checked = (backfill_filter, checked_filter(spark, source, backfill_filter)) if backfill_filter is not None else None
    prepare_tables(spark, cfg, source, dry_run)
    with exclusive_run(spark, cfg, report, lock_wait_seconds, dry_run) as lock:
        selected = select_batch(spark, cfg, checked, months)
        report.details["batch"] = selected.what
        if selected.read_path is not None:
            report.details["source_read"] = selected.read_path
        end = selected.end
        with BatchRun(spark, cfg, report.run_id, lock, dry_run=dry_run, judge_only=judge_only) as batch:
            limit = batch_time_limit if backfill_filter is not None else None
            with time_limit(spark, limit, f"selecting and judging the records of --backfill-filter {backfill_filter!r}"):
                winners, _ = batch.winners_from_source(selected.records)
                if winners is None and selected.as_source_stands:  # (records removed, none added: still a change)
                    winners = _empty_winners(spark, cfg)
                changes = None
                if winners is not None:
                    changes = batch.changed_winners(winners, as_source_stands=selected.as_source_stands)
            yield batch, winners, changes, end
            report.add(batch.counts)


def run_backfill(spark: SparkSession, cfg: SummaryConfig, report: RunReport, backfill_filter: str | None = None,
                 months: list[str] | None = None, dry_run: bool = False, lock_wait_seconds: float = LOCK_WAIT_SECONDS,
                 batch_time_limit: float | None = BATCH_TIME_LIMIT_SECONDS) -> None:  # fmt: skip
    """``--mode backfill``: classify and apply every case in this process."""
    judged = judged_batch(spark, cfg, report, backfill_filter, months, dry_run, lock_wait_seconds, batch_time_limit)
    with judged as (batch, _, changes, end):
        if changes is not None:
            batch.apply(batch.classify(changes))
        if not dry_run:
            classifications.move_mark(spark, cfg, report.run_id, end)


def run_classify(spark: SparkSession, cfg: SummaryConfig, report: RunReport, backfill_filter: str | None = None,
                 months: list[str] | None = None, dry_run: bool = False, lock_wait_seconds: float = LOCK_WAIT_SECONDS,
                 batch_time_limit: float | None = BATCH_TIME_LIMIT_SECONDS) -> None:  # fmt: skip
    """``--mode classify``: persist the changed winners per case under a new run id."""
    judged = judged_batch(
        spark, cfg, report, backfill_filter, months, dry_run, lock_wait_seconds, batch_time_limit, judge_only=True
    )
    with judged as (batch, winners, changes, end):
        classified = batch.classify(changes) if changes is not None else None
        if not dry_run:
            classifications.ensure_table(spark, cfg, (winners if winners is not None else _empty_winners(spark, cfg)).schema)
            classifications.supersede_unfinished(spark, cfg)
            if classified is not None:
                batch.lock.check()
                labelled = changes.join(classified.accounts.select(cfg.key_column, CASE), cfg.key_column)  # type: ignore[union-attr]
                classifications.save(spark, cfg, report.run_id, labelled, end)
            else:
                classifications.move_mark(spark, cfg, report.run_id, end)  # nothing to apply: the batch is done
    report.details["stages_to_run"] = [CASE_STAGES[c] for c in CASES if report.accounts_by_case[c]]


def run_case(
    spark: SparkSession,
    cfg: SummaryConfig,
    report: RunReport,
    mode: str,
    run_id: str | None,
    lock_wait_seconds: float = LOCK_WAIT_SECONDS,
) -> None:
    """``--mode case-i|case-ii|case-iii --run-id ID``: apply one case of a classification."""
    if not run_id:
        raise UsageError(f"--mode {mode} needs --run-id (printed by --mode classify)")
    case = CASE_NUMBERS[mode]
    source = source_table(spark, cfg)
    prepare_tables(spark, cfg, source)
    if not spark.catalog.tableExists(cfg.backfill_table):
        raise UsageError(f"no classification exists for {cfg.summary_table}: run --mode classify first")
    require_owned(spark, cfg, cfg.backfill_table, "backfill")
    report.details["classification"] = run_id
    with exclusive_run(spark, cfg, report, lock_wait_seconds) as lock:
        pending, end_snapshot = classifications.pending(spark, cfg, run_id)
        winners_of_case = classifications.case_winners(spark, cfg, run_id, case)
        stage_id = f"{report.run_id}-{run_id}"
        with BatchRun(spark, cfg, stage_id, lock) as batch:
            found = winners_of_case.agg(F.count(F.lit(1)).alias("n"), F.collect_set(cfg.month_column).alias("months")).first()
            months = sorted(found["months"]) if found else []
            batch.sized(found["n"] if found else 0)
            if months:
                changes = batch.changed_winners(batch.keep(winners_of_case))
                if changes is not None:
                    batch.apply(batch.classify(changes))
                batch.counts.months = months
            report.add(batch.counts)
        lock.check()
        done = classifications.finish_case(spark, cfg, run_id, case)
        if pending and done:
            classifications.move_mark(spark, cfg, run_id, end_snapshot)
            report.details["backfill_complete"] = True
        elif not pending and not months:
            report.details["note"] = f"classification {run_id} is finished or was superseded: nothing to apply"


def _empty_winners(spark: SparkSession, cfg: SummaryConfig) -> DataFrame:
    no_records = source_table(spark, cfg).limit(0)
    return mapping.winners(mapping.valid_records(mapping.map_records(no_records, cfg), cfg), cfg)
