"""Apply a batch of source records to the summary tables: the one engine behind every mode.

Forward month, initial range, re-run of an old month and backfill differ only
in which source records form the batch. For any batch:

1. map, reject and pick each (key, month)'s winner (``mapping``);
2. keep the winners that beat what ``summary`` holds for that key and month:
   same record -> unchanged, older version -> stale, so re-runs change nothing;
3. classify the changed accounts against ``latest_summary`` (``classify``);
4. read only the context each case needs, as scalar columns: the stored rows
   from a history array's reach before the first changed month on, plus the
   row before them however old (found through ``_previous_month``);
5. recompute the affected rows (``timeline``) and write only those that change,
   on the run's branches of both tables (``storage.writers``), published
   together (``storage.publish``).

A forward month after every stored month (the scheduled run) needs none of
steps 2-4: ``stages.scheduled_month`` makes it one pass over ``latest_summary``
(``forward`` chooses between the two).
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, cast

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.core.classify import CASE_NAMES, classify_accounts, is_single_new_month, records_of_case
from spark_jobs.core.mapping import map_records, rejected_records, valid_records, winners
from spark_jobs.core.month_columns import month_number_col
from spark_jobs.core.timeline import (
    EARLIER,
    STORED,
    build_timeline,
    new_rows,
    recompute,
    replaced_values,
    shifted,
    stored_rows,
)
from spark_jobs.faults import crash_point
from spark_jobs.names import (
    AS_SOURCE_STANDS,
    CASE,
    FIRST_CHANGED,
    INSERT,
    LATEST_MONTH,
    MONTH_NUMBER,
    RECORD_DIGEST,
    REJECT_REASON,
    REMOVED,
    VERSION_CONFLICT,
)
from spark_jobs.report import BatchCounts
from spark_jobs.stages.partitioning import configure_shuffle_partitions
from spark_jobs.stages.stored_reads import (
    ALL_MONTHS,
    latest_months,
    previous_rows_out_of_reach,
    rows_gone_from_source,
    stored_in_reach,
)
from spark_jobs.storage.runlock import HeldLock
from spark_jobs.storage.writers import BROADCAST_KEYS_MAX, rows_stats, write_rejects, write_rows

VERDICT = "__verdict"
SMALL_BATCH_RECORDS = 500_000  # records of a batch below which its intermediate results are checkpointed


class PhaseClock:
    """Seconds spent per phase of a batch, for the report (and the benchmark)."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into
        self.last = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.into[phase] = round(self.into.get(phase, 0.0) + now - self.last, 3)
        self.last = now


def judge_against_stored(cfg: SummaryConfig, batch_winners: DataFrame, stored: DataFrame | None) -> DataFrame:
    """Each winner with a verdict: new, newer (replaces the stored winner), same (already applied), stale, or
    removed (a ``REMOVED`` marker of a stored row the source no longer holds).

    A winner of a month judged as the source stands (``AS_SOURCE_STANDS``) is the source's winner now, so it
    replaces a stored row of a higher version too: that version's record is gone from the source.
    ``stored``: every stored row a winner can share its key and month with (``stored_reads.stored_in_reach``).
    """
    key, month, version = cfg.key_column, cfg.month_column, cfg.version_column
    if stored is None:
        judged = batch_winners.withColumn("__stored_version", F.lit(None)).withColumn("__stored_digest", F.lit(None))
    else:
        versions = stored.select(
            key, month, F.col(version).alias("__stored_version"), F.col(RECORD_DIGEST).alias("__stored_digest")
        )
        judged = batch_winners.join(versions, [key, month], "left")
    v, sv, d, sd = F.col(version), F.col("__stored_version"), F.col(RECORD_DIGEST), F.col("__stored_digest")
    verdict = (
        F.when(F.col(REMOVED), F.when(sv.isNull(), F.lit("same")).otherwise(F.lit("removed")))
        .when(sv.isNull(), F.lit("new"))
        .when((v == sv) & (d == sd), F.lit("same"))
        .when(F.col(AS_SOURCE_STANDS) | (v > sv) | ((v == sv) & (d > sd)), F.lit("newer"))
        .otherwise(F.lit("stale"))
    )
    conflict = F.col(VERSION_CONFLICT) | F.coalesce(sv.isNotNull() & (v == sv) & (d != sd), F.lit(False))
    return judged.withColumn(VERDICT, verdict).withColumn(VERSION_CONFLICT, conflict)


def with_judging_flags(batch_winners: DataFrame, as_source_stands: Column | None = None) -> DataFrame:
    """``batch_winners`` with the ``REMOVED`` and ``AS_SOURCE_STANDS`` flags judging reads (False unless set)."""
    flags = {}
    if REMOVED not in batch_winners.columns:
        flags[REMOVED] = F.lit(False)
    if as_source_stands is not None:
        flags[AS_SOURCE_STANDS] = as_source_stands
    elif AS_SOURCE_STANDS not in batch_winners.columns:
        flags[AS_SOURCE_STANDS] = F.lit(False)
    return batch_winners.withColumns(flags) if flags else batch_winners


class BatchRun:
    """The steps of applying one batch, usable one by one (the backfill stages persist between them)."""

    def __init__(
        self,
        spark: SparkSession,
        cfg: SummaryConfig,
        run_id: str,
        lock: HeldLock,
        months: Iterable[str] = (),
        dry_run: bool = False,
        judge_only: bool = False,
    ) -> None:
        self.spark, self.cfg, self.run_id, self.lock, self.dry_run = spark, cfg, run_id, lock, dry_run
        self.judge_only = judge_only  # a classification: stops after classify, so reads only what judging needs
        self.counts = BatchCounts(months=list(months))
        self.clock = PhaseClock(self.counts.seconds)
        self._persisted: list[DataFrame] = []
        self.records = 0  # records in the batch (winners, for a case stage): sizes the plans below
        self.small = False  # few records: intermediate results are checkpointed (set once the records are counted)
        # Read once by changed_winners: (key, LATEST_MONTH) and the stored rows in reach (scalar columns).
        self.latest: DataFrame | None = None
        self.stored: DataFrame | None = None
        self.reach = 0  # the month number self.stored starts at

    def __enter__(self) -> "BatchRun":
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        for df in self._persisted:
            df.unpersist()
        return False

    def keep(self, df: DataFrame, computed_now: bool | None = None) -> DataFrame:
        """``df``, kept for the rest of the batch: computed now with its lineage cut when the batch is small
        (later plans stay small, which is most of a small batch's time), else persisted (columnar, compressed).
        """
        if computed_now if computed_now is not None else self.small:
            kept = df.localCheckpoint(eager=True)
            self._persisted.append(kept)
            return kept
        self._persisted.append(df.persist())
        return df

    def sized(self, records: int) -> None:
        """The batch holds ``records`` records: small batches checkpoint their intermediate results."""
        self.records, self.small = records, records <= SMALL_BATCH_RECORDS

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
        self.sized(counts.records_read)
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

    def changed_winners(self, batch_winners: DataFrame, *, as_source_stands: tuple[str, ...] | str = ()) -> DataFrame | None:
        """The winners that beat what summary holds (None when there are none), with the verdicts counted.

        ``as_source_stands``: months (``ALL_MONTHS``: every month) whose records the batch holds whole, as the
        source stands now: their winners replace whatever summary holds, and summary rows with no winner
        there are removed (``REMOVED`` markers). Reads, once, what the rest of the batch needs too: the
        accounts' latest months and stored rows.
        """
        spark, cfg, counts = self.spark, self.cfg, self.counts
        if as_source_stands:
            judged_whole = F.lit(True) if as_source_stands == ALL_MONTHS else F.col(cfg.month_column).isin(*as_source_stands)
            batch_winners = with_judging_flags(batch_winners, judged_whole)
            gone = rows_gone_from_source(spark, cfg, batch_winners, as_source_stands)
            batch_winners = batch_winners.unionByName(gone, allowMissingColumns=True)
        else:
            batch_winners = with_judging_flags(batch_winners)
        few = 0 < self.records <= BROADCAST_KEYS_MAX
        batch_winners = self.keep(batch_winners)
        keys = batch_winners.select(cfg.key_column).distinct() if few else None
        self.latest = self.keep(latest_months(spark, cfg, keys))
        in_reach = stored_in_reach(spark, cfg, batch_winners, self.latest, few, self.judge_only)
        if in_reach is not None:  # (few rows from many scan tasks: kept in fewer partitions)
            self.stored, self.reach = self.keep(in_reach[0].coalesce(_small_partitions(spark))), in_reach[1]
        judged = self.keep(judge_against_stored(cfg, batch_winners, self.stored))
        verdicts = judged.groupBy(VERDICT).agg(
            F.count(F.lit(1)).alias("n"),
            F.count(F.when(F.col(VERSION_CONFLICT), 1)).alias("conflicts"),
            F.count(F.when(F.col(REMOVED), 1)).alias("markers"),
        )
        rows = verdicts.collect()
        if counts.records_read:  # records that lost to another record of the same key and month in this batch
            counts.superseded_records = counts.records_read - counts.records_rejected - sum(r.n - r.markers for r in rows)
        for row in rows:
            counts.version_conflicts += row.conflicts
            if row[VERDICT] == "same":
                counts.unchanged_records += row.n - row.markers
            elif row[VERDICT] == "stale":
                counts.stale_records += row.n
            elif row[VERDICT] == "removed":
                counts.removed_rows += row.n
            else:
                counts.changed_records += row.n
        self.clock.lap("judge")
        if counts.changed_records == 0 and counts.removed_rows == 0:
            return None
        return (
            judged.where(F.col(VERDICT).isin("new", "newer", "removed"))
            .withColumn(INSERT, F.col(VERDICT) == "new")
            .drop(VERDICT, VERSION_CONFLICT, "__stored_version", "__stored_digest")
        )

    def classify(self, changes: DataFrame) -> "Classified":
        """The changed accounts with their cases (and the per-case counts): what ``apply`` needs."""
        cfg = self.cfg
        if self.latest is None:
            raise RuntimeError("classify() needs changed_winners() first: it reads the accounts' latest months")
        accounts = self.keep(classify_accounts(changes, self.latest, cfg.key_column))
        shape = _count_cases(self.counts, accounts)
        self.clock.lap("classify")
        return Classified(changes, accounts, shape)

    def apply(self, classified: "Classified") -> None:
        """Recompute the affected rows and write them to both tables (a dry run only counts them).

        Takes what ``classify`` returned, so it cannot run on changes that were not classified.
        """
        spark, cfg, counts = self.spark, self.cfg, self.counts
        if self.judge_only:
            raise RuntimeError("apply() on a judge-only batch: it read the stored rows judging needs, not recomputing")
        rows = self._recomputed_rows(classified)
        if self.dry_run:
            summary = cast(
                Row, rows.agg(F.count(F.lit(1)).alias("rows"), F.collect_set(cfg.month_column).alias("months")).first()
            )
            counts.rows_written = {"summary": summary.rows, "latest_summary": None}
            counts.months = sorted(summary.months)
            self.clock.lap("recompute")
            return
        computed = self.keep(rows, computed_now=False)  # persisted: a MERGE then knows its size and broadcasts it
        stats = rows_stats(cfg, computed)  # (computes them)
        self.clock.lap("recompute")
        counts.rows_written.update(write_rows(spark, cfg, computed, self.run_id, self.lock, self.clock, stats=stats))

    def _recomputed_rows(self, classified: "Classified") -> DataFrame:
        """One join for accounts with a single new month after their latest row; a timeline for the rest."""
        spark, cfg, key = self.spark, self.cfg, self.cfg.key_column
        changes, accounts, shape = classified.changes, classified.accounts, classified.shape
        parts = []
        if shape.single_new_month:
            simple = accounts.where(is_single_new_month()).select(key, CASE)
            new = new_rows(changes.join(simple.select(key), key), cfg)
            latest = spark.table(cfg.latest_table).withColumn(MONTH_NUMBER, month_number_col(cfg.month_column))
            anchors = latest.join(simple.where(F.col(CASE) == 2).select(key), key)
            parts.append(shifted(new, anchors, cfg))
        if shape.other:
            others = accounts.where(~is_single_new_month())
            few = shape.other <= BROADCAST_KEYS_MAX
            timeline = _timeline_parts(spark, cfg, changes.join(others.select(key), key), others, self.stored, self.reach, few)
            parts.append(recompute(build_timeline(timeline), cfg))
        return build_timeline(parts)


def apply_batch(
    spark: SparkSession,
    cfg: SummaryConfig,
    source: DataFrame,
    run_id: str,
    lock: HeldLock,
    months: Iterable[str] = (),
    dry_run: bool = False,
) -> BatchCounts:
    """Apply the source records in ``source`` (any months, any accounts) and return what happened.

    ``months``: the months ``source`` was limited to, for the report (found from the records when empty).
    """
    with BatchRun(spark, cfg, run_id, lock, months, dry_run) as batch:
        batch_winners, _ = batch.winners_from_source(source)
        if batch_winners is None:
            return batch.counts
        changes = batch.changed_winners(batch_winners)
        if changes is None:
            return batch.counts
        batch.apply(batch.classify(changes))
        return batch.counts


def _small_partitions(spark: SparkSession) -> int:
    """Partitions for rows a batch selected from a large scan: the shuffle partitions, at least two per core."""
    return max(int(spark.conf.get("spark.sql.shuffle.partitions") or 1), 2 * spark.sparkContext.defaultParallelism)


@dataclass(frozen=True)
class BatchShape:
    """What the recomputation needs to know about the changed accounts, from one aggregation."""

    single_new_month: int  # accounts whose one new month follows their latest row (or is their first)
    other: int  # accounts that need a timeline


@dataclass(frozen=True)
class Classified:
    """A batch's changed winners and their accounts with cases: the only input ``BatchRun.apply`` takes."""

    changes: DataFrame
    accounts: DataFrame  # one row per changed account, with CASE and FIRST_CHANGED
    shape: BatchShape


def _count_cases(counts: BatchCounts, accounts: DataFrame) -> BatchShape:
    """Fill accounts and records per case; return the batch's shape (one aggregation)."""
    simple = is_single_new_month()
    per_case = cast(
        Row,
        accounts.agg(
            *[F.count(F.when(F.col(CASE) == number, 1)).alias(name) for number, name in CASE_NAMES.items()],
            *[F.sum(records_of_case(number)).alias(f"records_{name}") for number, name in CASE_NAMES.items()],
            F.count(F.when(simple, 1)).alias("single"),
        ).first(),
    )
    for name in CASE_NAMES.values():
        counts.accounts_by_case[name] = per_case[name]
        counts.records_by_case[name] = per_case[f"records_{name}"] or 0
    total = sum(per_case[name] for name in CASE_NAMES.values())
    return BatchShape(per_case.single, total - per_case.single)


def _timeline_parts(
    spark: SparkSession,
    cfg: SummaryConfig,
    changes: DataFrame,
    accounts: DataFrame,
    stored: DataFrame | None,
    reach: int,
    few: bool,
) -> list[DataFrame]:
    """New rows, plus the stored rows (scalar columns, from ``reach`` on) that accounts with stored rows need."""
    key, month = cfg.key_column, cfg.month_column
    if stored is None:
        return [new_rows(changes, cfg)]
    with_rows = accounts.select(key, FIRST_CHANGED, LATEST_MONTH)
    with_rows = F.broadcast(with_rows) if few else with_rows
    rows = stored.join(with_rows, key)
    at_or_after = rows.where(F.col(MONTH_NUMBER) >= F.col(FIRST_CHANGED))
    changes = replaced_values(changes, at_or_after, cfg)
    kept = at_or_after.join(changes.select(key, month), [key, month], "left_anti")
    before = rows.where(F.col(MONTH_NUMBER) < F.col(FIRST_CHANGED))
    parts = [new_rows(changes, cfg), stored_rows(kept, cfg, STORED), stored_rows(before, cfg, EARLIER)]
    older = previous_rows_out_of_reach(spark, cfg, rows, accounts, reach)
    if older is not None:
        parts.append(stored_rows(older, cfg, EARLIER))
    return parts
