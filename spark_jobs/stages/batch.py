"""Apply a batch of source records to the summary tables: the one engine behind every mode.

Forward month, initial range, re-run of an old month and backfill differ only
in which source records form the batch. For any batch:

1. map, reject and pick each (key, month)'s winner (``mapping``);
2. keep the winners that beat what ``summary`` holds for that key and month:
   same record -> unchanged, older version -> stale, so re-runs change nothing;
3. classify the changed accounts against ``latest_summary`` (``classify``);
4. read only the context each case needs: Case II the latest row, Case III
   the stored rows from the first changed month on plus the row before them,
   found through its ``_previous_month`` pointer (no scan of older months);
5. recompute the affected rows (``timeline``) and stage + commit only those
   that change (``writers``).
"""

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, cast

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.core.classify import CASE_NAMES, classify_accounts, is_single_new_month, record_cases
from spark_jobs.core.mapping import map_records, rejected_records, valid_records, winners
from spark_jobs.core.month_columns import month_number_col
from spark_jobs.core.timeline import ANCHOR, STORED, build_timeline, new_rows, recompute, shifted, stored_rows
from spark_jobs.faults import crash_point
from spark_jobs.months import month_from_number
from spark_jobs.names import (
    CASE,
    FIRST_CHANGED,
    INSERT,
    LATEST_MONTH,
    MONTH_NUMBER,
    PREVIOUS_MONTH,
    RECORD_DIGEST,
    REJECT_REASON,
    VERSION_CONFLICT,
)
from spark_jobs.report import BatchCounts
from spark_jobs.stages.partitioning import configure_shuffle_partitions
from spark_jobs.storage.runlock import HeldLock
from spark_jobs.storage.writers import commit_staged, stage, write_rejects

VERDICT = "__verdict"
WANTED_AS = "__wanted_as"  # which role a stored row plays in its timeline


class PhaseClock:
    """Seconds spent per phase of a batch, for the report (and the benchmark)."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into
        self.last = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.into[phase] = round(self.into.get(phase, 0.0) + now - self.last, 3)
        self.last = now


def summary_with_month_number(spark: SparkSession, cfg: SummaryConfig) -> DataFrame:
    return spark.table(cfg.summary_table).withColumn(MONTH_NUMBER, month_number_col(cfg.month_column))


def judge_against_stored(spark: SparkSession, cfg: SummaryConfig, batch_winners: DataFrame, months: list[str]) -> DataFrame:
    """Each winner with a verdict: new, newer (replaces the stored winner), same (already applied) or stale."""
    key, month, version = cfg.key_column, cfg.month_column, cfg.version_column
    stored = (
        spark.table(cfg.summary_table)
        .where(F.col(month).isin(months))
        .select(key, month, F.col(version).alias("__stored_version"), F.col(RECORD_DIGEST).alias("__stored_digest"))
    )
    judged = batch_winners.join(stored, [key, month], "left")
    v, sv, d, sd = F.col(version), F.col("__stored_version"), F.col(RECORD_DIGEST), F.col("__stored_digest")
    verdict = (
        F.when(sv.isNull(), F.lit("new"))
        .when((v > sv) | ((v == sv) & (d > sd)), F.lit("newer"))
        .when((v == sv) & (d == sd), F.lit("same"))
        .otherwise(F.lit("stale"))
    )
    conflict = F.col(VERSION_CONFLICT) | (sv.isNotNull() & (v == sv) & (d != sd))
    return judged.withColumn(VERDICT, verdict).withColumn(VERSION_CONFLICT, conflict)


class BatchRun:
    """The steps of applying one batch, usable one by one (the backfill stages persist between them)."""

    def __init__(
        self,
        spark: SparkSession,
        cfg: SummaryConfig,
        run_id: str,
        lock: HeldLock,
        months_label: Iterable[str] = (),
        dry_run: bool = False,
    ) -> None:
        self.spark, self.cfg, self.run_id, self.lock, self.dry_run = spark, cfg, run_id, lock, dry_run
        self.counts = BatchCounts(months=list(months_label))
        self.clock = PhaseClock(self.counts.seconds)
        self._persisted: list[DataFrame] = []

    def __enter__(self) -> "BatchRun":
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        for df in self._persisted:
            df.unpersist()
        return False

    def keep(self, df: DataFrame) -> DataFrame:
        self._persisted.append(df.persist())
        return df

    def winners_from_source(self, source: DataFrame) -> tuple[DataFrame | None, list[str]]:
        """Map and count the records, write the rejects, pick winners. Returns (winners, months) or (None, [])."""
        spark, cfg, counts = self.spark, self.cfg, self.counts
        mapped = self.keep(map_records(source, cfg))
        valid = F.col(REJECT_REASON) == ""
        totals = cast(
            Row,
            mapped.agg(
                F.count(F.lit(1)).alias("read"),
                F.count(F.when(~valid, 1)).alias("rejected"),
                F.collect_set(F.when(valid, F.col(cfg.month_column))).alias("months"),
            ).first(),
        )
        counts.records_read, counts.records_rejected = totals.read, totals.rejected
        if counts.records_read == 0:
            return None, []
        configure_shuffle_partitions(spark, counts.records_read, cfg.performance)
        self.clock.lap("read")
        if counts.records_rejected and not self.dry_run:
            self.lock.check()
            write_rejects(spark, cfg, rejected_records(mapped, cfg, self.run_id))
            counts.rows_written["rejects"] = counts.records_rejected
            crash_point("after_rejects", spark)
            self.clock.lap("rejects")
        months = sorted(totals.months)
        counts.months = counts.months or months
        if not months:
            return None, []
        return winners(valid_records(mapped, cfg), cfg), months

    def changed_winners(self, batch_winners: DataFrame, months: list[str]) -> DataFrame | None:
        """The winners that beat what summary holds (None when there are none), with the verdicts counted."""
        counts = self.counts
        judged = self.keep(judge_against_stored(self.spark, self.cfg, batch_winners, months))
        verdicts = judged.groupBy(VERDICT).agg(
            F.count(F.lit(1)).alias("n"), F.count(F.when(F.col(VERSION_CONFLICT), 1)).alias("conflicts")
        )
        rows = verdicts.collect()
        if counts.records_read:  # records that lost to another record of the same key and month in this batch
            counts.superseded_records = counts.records_read - counts.records_rejected - sum(r.n for r in rows)
        for row in rows:
            counts.version_conflicts += row.conflicts
            if row[VERDICT] == "same":
                counts.unchanged_records += row.n
            elif row[VERDICT] == "stale":
                counts.stale_records += row.n
            else:
                counts.changed_records += row.n
        self.clock.lap("judge")
        if counts.changed_records == 0:
            return None
        return (
            judged.where(F.col(VERDICT).isin("new", "newer"))
            .withColumn(INSERT, F.col(VERDICT) == "new")
            .drop(VERDICT, VERSION_CONFLICT, "__stored_version", "__stored_digest")
        )

    def classify(self, changes: DataFrame) -> "Classified":
        """The changed accounts with their cases (and the per-case counts): what ``apply`` needs."""
        cfg = self.cfg
        latest_months = self.spark.table(cfg.latest_table).select(
            cfg.key_column, month_number_col(cfg.month_column).alias(LATEST_MONTH)
        )
        accounts = self.keep(classify_accounts(changes, latest_months, cfg.key_column))
        shape = _count_cases(self.counts, changes, accounts, cfg)
        self.clock.lap("classify")
        return Classified(changes, accounts, shape)

    def apply(self, classified: "Classified") -> None:
        """Recompute the affected rows; stage and commit them (a dry run only counts them).

        Takes what ``classify`` returned, so it cannot run on changes that were not classified.
        """
        spark, cfg, counts = self.spark, self.cfg, self.counts
        rows = self._recomputed_rows(classified)
        if self.dry_run:
            summary = cast(
                Row, rows.agg(F.count(F.lit(1)).alias("rows"), F.collect_set(cfg.month_column).alias("months")).first()
            )
            counts.rows_written = {"summary": summary.rows, "latest_summary": None}
            counts.months = sorted(summary.months)
            self.clock.lap("recompute")
            return
        self.lock.check()
        stage(cfg, rows, self.run_id)
        crash_point("after_staging", spark)
        self.clock.lap("stage")
        counts.rows_written.update(commit_staged(spark, cfg, self.run_id, self.lock, fresh=True, clock=self.clock))

    def _recomputed_rows(self, classified: "Classified") -> DataFrame:
        """One join for accounts with a single new month after their latest row; a timeline for the rest."""
        spark, cfg, key = self.spark, self.cfg, self.cfg.key_column
        changes, accounts, shape = classified.changes, classified.accounts, classified.shape
        parts = []
        if shape.single_new_month:
            simple = accounts.where(is_single_new_month()).select(key, CASE)
            new = new_rows(changes.join(simple.select(key), key), cfg)
            latest = spark.table(cfg.latest_table).withColumn(MONTH_NUMBER, month_number_col(cfg.month_column))
            anchors = stored_rows(latest.join(simple.where(F.col(CASE) == 2).select(key), key), cfg, ANCHOR)
            parts.append(shifted(new, anchors, cfg))
        if shape.other:
            others = accounts.where(~is_single_new_month())
            timeline = _timeline_parts(spark, cfg, changes.join(others.select(key), key), others, shape, self.keep)
            parts.append(recompute(build_timeline(timeline), cfg))
        return build_timeline(parts)


def apply_batch(
    spark: SparkSession,
    cfg: SummaryConfig,
    source: DataFrame,
    run_id: str,
    lock: HeldLock,
    months_label: Iterable[str] = (),
    dry_run: bool = False,
) -> BatchCounts:
    """Apply the source records in ``source`` (any months, any accounts) and return what happened."""
    with BatchRun(spark, cfg, run_id, lock, months_label, dry_run) as batch:
        batch_winners, months = batch.winners_from_source(source)
        if batch_winners is None:
            return batch.counts
        changes = batch.changed_winners(batch_winners, months)
        if changes is None:
            return batch.counts
        batch.apply(batch.classify(changes))
        return batch.counts


@dataclass(frozen=True)
class BatchShape:
    """What the recomputation needs to know about the changed accounts, from one aggregation."""

    single_new_month: int  # accounts whose one new month follows their latest row (or is their first)
    other: int  # accounts that need a timeline
    other_case_ii: int  # of those, Case II (several new months after the latest row)
    earliest_case_iii: int | None  # the earliest first-changed month number of Case III accounts (None: no Case III)


@dataclass(frozen=True)
class Classified:
    """A batch's changed winners and their accounts with cases: the only input ``BatchRun.apply`` takes."""

    changes: DataFrame
    accounts: DataFrame  # one row per changed account, with CASE and FIRST_CHANGED
    shape: BatchShape


def _count_cases(counts: BatchCounts, changes: DataFrame, accounts: DataFrame, cfg: SummaryConfig) -> BatchShape:
    """Fill accounts and records per case; return the batch's shape."""
    simple = is_single_new_month()
    per_case = cast(
        Row,
        accounts.agg(
            *[F.count(F.when(F.col(CASE) == number, 1)).alias(name) for number, name in CASE_NAMES.items()],
            F.count(F.when(simple, 1)).alias("single"),
            F.count(F.when(~simple & (F.col(CASE) == 2), 1)).alias("other_ii"),
            F.min(F.when(F.col(CASE) == 3, F.col(FIRST_CHANGED))).alias("earliest_iii"),
        ).first(),
    )
    for name in CASE_NAMES.values():
        counts.accounts_by_case[name] = per_case[name]
    for row in record_cases(changes, accounts, cfg.key_column).groupBy(CASE).count().collect():
        counts.records_by_case[CASE_NAMES[row[CASE]]] = row["count"]
    total = sum(per_case[name] for name in CASE_NAMES.values())
    return BatchShape(per_case.single, total - per_case.single, per_case.other_ii, per_case.earliest_iii)


def _timeline_parts(
    spark: SparkSession,
    cfg: SummaryConfig,
    changes: DataFrame,
    accounts: DataFrame,
    shape: BatchShape,
    keep: Callable[[DataFrame], DataFrame],
) -> list[DataFrame]:
    """New rows, plus the anchors and stored rows Case II and Case III accounts need."""
    key, month = cfg.key_column, cfg.month_column
    earliest_case_iii = shape.earliest_case_iii
    parts = [new_rows(changes, cfg)]

    if shape.other_case_ii:
        case_ii = accounts.where(F.col(CASE) == 2).select(key)
        latest = spark.table(cfg.latest_table).withColumn(MONTH_NUMBER, month_number_col(month))
        parts.append(stored_rows(latest.join(case_ii, key), cfg, ANCHOR))

    if earliest_case_iii is not None:
        case_iii = accounts.where(F.col(CASE) == 3).select(key, FIRST_CHANGED)
        wanted = keep(_stored_rows_wanted(spark, cfg, case_iii, earliest_case_iii, keep))
        months = sorted(r[0] for r in wanted.select(month).distinct().collect())
        # Whole rows (history arrays included) in one scan of just the months that hold a wanted row.
        rows = keep(summary_with_month_number(spark, cfg).where(F.col(month).isin(months)).join(wanted, [key, month]))
        replaced = changes.select(key, month)
        stored = rows.where(F.col(WANTED_AS) == STORED).join(replaced, [key, month], "left_anti")
        parts.append(stored_rows(stored, cfg, STORED))
        parts.append(stored_rows(rows.where(F.col(WANTED_AS) == ANCHOR), cfg, ANCHOR))
    return parts


def _stored_rows_wanted(
    spark: SparkSession, cfg: SummaryConfig, case_iii: DataFrame, earliest_case_iii: int, keep: Callable[[DataFrame], DataFrame]
) -> DataFrame:
    """(key, month, role) of the stored rows Case III timelines need, from the key columns alone.

    Each account's rows at or after its first changed month (STORED) and the row before them (ANCHOR),
    which the first of them names in its ``_previous_month``. Only scalar columns are read here: Iceberg
    reads those vectorized, while a scan that includes the history arrays decodes row by row, so the
    whole rows are read once, afterwards, for just these keys and months.
    """
    key, month = cfg.key_column, cfg.month_column
    located = keep(
        summary_with_month_number(spark, cfg)
        .where(F.col(month) >= month_from_number(earliest_case_iii))
        .select(key, month, MONTH_NUMBER, PREVIOUS_MONTH)
        .join(case_iii, key)
        .where(F.col(MONTH_NUMBER) >= F.col(FIRST_CHANGED))
    )
    anchors = (
        located.groupBy(key)
        .agg(F.min_by(PREVIOUS_MONTH, MONTH_NUMBER).alias(month))
        .where(F.col(month).isNotNull())
        .withColumn(WANTED_AS, F.lit(ANCHOR))
    )
    return located.select(key, month, F.lit(STORED).alias(WANTED_AS)).unionByName(anchors)
