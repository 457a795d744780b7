"""The scheduled forward month: a month after every stored month, in one pass over ``latest_summary``.

Every winner of such a month is new (summary holds nothing at or after it), so
each is Case I or Case II, and one join of the winners with latest_summary
gives summary's new rows and the whole next latest_summary
(``core.next_month``): none of the general engine's judging, classifying or
reading of stored rows (``stages.batch``). ``forward`` picks this path when
the batch is one month and ``follows_every_stored_month`` says it is next.

Two Spark jobs: the summary append computes (and keeps) everything, its counts
observed on the way; the latest_summary overwrite reads what was kept. Both go
to the run's branches and are published together (``storage.publish``).
"""

from typing import cast

from pyspark.sql import DataFrame, Observation, Row, SparkSession
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.core.mapping import map_records, rejected_records, valid_records, winners
from spark_jobs.core.next_month import FIRST_ROW, FOLLOWS_LATEST, IS_NEW, ROW_KIND, next_month_rows
from spark_jobs.faults import crash_point
from spark_jobs.names import REJECT_REASON, VERSION_CONFLICT
from spark_jobs.report import BatchCounts
from spark_jobs.stages.batch import PhaseClock
from spark_jobs.stages.partitioning import configure_shuffle_partitions
from spark_jobs.storage.iceberg import current_snapshot, has_rows_from, record_count
from spark_jobs.storage.publish import RunBranches
from spark_jobs.storage.runlock import HeldLock
from spark_jobs.storage.writers import append_new_month, replace_latest, write_rejects

BROADCAST_WINNERS_MAX = 2_000_000  # winners of one month shipped to every task instead of shuffling latest_summary...
BROADCAST_WINNERS_SHARE = 0.1  # ...when they are at most this share of its rows (bench/RESULTS.md: a full month shuffles)


def follows_every_stored_month(spark: SparkSession, cfg: SummaryConfig, month: str) -> bool:
    """Whether summary holds no row at or after ``month`` and latest_summary has been written (metadata only)."""
    if current_snapshot(spark, cfg.latest_table)[0] is None:
        return False
    return not has_rows_from(spark, cfg.summary_table, cfg.month_column, month)


def apply_next_month(
    spark: SparkSession, cfg: SummaryConfig, source: DataFrame, month: str, run_id: str, lock: HeldLock
) -> BatchCounts:
    """Apply ``source``'s records of ``month`` (``follows_every_stored_month``) and return what happened."""
    counts = BatchCounts(months=[month])
    clock = PhaseClock(counts.seconds)
    expected = record_count(spark, cfg.source_table, cfg.source_column(cfg.month_column), month)
    if expected == 0:  # no data file holds the month (known from metadata)
        return counts
    partitions = configure_shuffle_partitions(spark, expected, cfg.performance)
    read, picked, kinds = (Observation(f"{what}-{run_id}") for what in ("mapping", "winners", "cases"))
    valid = F.col(REJECT_REASON) == ""
    # Spread the month's records by key first: mapping (the digest) then runs in every task, not in the
    # few that read the month's files, and picking winners needs no second shuffle.
    spread = source.repartition(partitions, F.col(f"`{cfg.source_column(cfg.key_column)}`"))
    mapped = map_records(spread, cfg).observe(read, F.count(F.lit(1)).alias("read"), F.count(F.when(~valid, 1)).alias("rejected"))
    month_winners = winners(valid_records(mapped, cfg), cfg).observe(
        picked, F.count(F.lit(1)).alias("winners"), F.count(F.when(F.col(VERSION_CONFLICT), 1)).alias("conflicts")
    )
    broadcast = broadcasts_winners(expected, _latest_rows(spark, cfg))
    kept: list[DataFrame] = []
    if broadcast:  # (read twice: by the join and by the new accounts' anti-join)
        month_winners = month_winners.persist()
        kept.append(month_winners)
    joined = next_month_rows(month_winners, spark.table(cfg.latest_table), cfg, broadcast)
    rows = joined.observe(
        kinds,
        F.count(F.when(F.col(ROW_KIND) == FIRST_ROW, 1)).alias("first"),
        F.count(F.when(F.col(ROW_KIND) == FOLLOWS_LATEST, 1)).alias("follows"),
    ).persist()
    kept.append(rows)
    try:
        with RunBranches(spark, cfg, run_id, lock, clock) as branches:
            append_new_month(branches, cfg, rows.where(F.col(IS_NEW)))
            _count_observed(counts, read, picked, kinds, mapped)
            crash_point("after_summary_written", spark)
            clock.lap("write_summary")
            if counts.records_rejected:
                lock.check()
                write_rejects(spark, cfg, rejected_records(map_records(source, cfg), cfg, run_id))
                counts.rows_written["rejects"] = counts.records_rejected
                crash_point("after_rejects", spark)
                clock.lap("rejects")
            if counts.changed_records == 0:
                branches.abandon()
                return counts
            replace_latest(branches, cfg, rows)
            crash_point("after_latest_written", spark)
            clock.lap("write_latest")
    finally:
        for df in kept:
            df.unpersist()
    counts.rows_written.update({"summary": counts.changed_records, "latest_summary": counts.changed_records})
    return counts


def broadcasts_winners(winners: int, latest_rows: int) -> bool:
    """Whether a next-month batch ships its winners to every task rather than shuffling latest_summary.

    Broadcasting saves shuffling latest_summary's wide rows, but builds the winners' table in the driver and
    needs a second join for the new accounts: measured at 100k and 1M accounts, a month in which most accounts
    report is faster shuffled; a month of a few accounts against a large latest_summary is not.
    """
    return winners <= BROADCAST_WINNERS_MAX and winners <= BROADCAST_WINNERS_SHARE * latest_rows


def _latest_rows(spark: SparkSession, cfg: SummaryConfig) -> int:
    """latest_summary's rows as its current snapshot counts them (data files' records: an upper bound)."""
    summary = current_snapshot(spark, cfg.latest_table)[1]
    return int(summary.get("total-records", 0)) - int(summary.get("total-position-deletes", 0))


def _count_observed(counts: BatchCounts, read: Observation, picked: Observation, kinds: Observation, mapped: DataFrame) -> None:
    """The counts the batch observed while its rows were computed."""
    counts.records_read, counts.records_rejected = _observed_counts(read, mapped)
    winners_seen, kind_counts = _observed(picked), _observed(kinds)
    counts.changed_records, counts.version_conflicts = winners_seen.get("winners", 0), winners_seen.get("conflicts", 0)
    counts.superseded_records = counts.records_read - counts.records_rejected - counts.changed_records
    for case, n in (("I", kind_counts.get("first", 0)), ("II", kind_counts.get("follows", 0))):
        counts.accounts_by_case[case] = counts.records_by_case[case] = n


def _observed(observed: Observation) -> dict[str, int]:
    """What an observation saw; nothing (no rows went past it) when Spark left no observation behind."""
    try:
        return dict(observed.get)
    except Exception:  # (a plan that read no row can leave none)
        return {}


def _observed_counts(observed: Observation, mapped: DataFrame) -> tuple[int, int]:
    """(records read, rejected) as observed while the winners were picked; counted again if Spark observed nothing."""
    try:
        metrics = observed.get
        return metrics["read"], metrics["rejected"]
    except Exception:  # (an empty scan can leave no observation behind)
        row = cast(Row, mapped.agg(F.count(F.lit(1)), F.count(F.when(F.col(REJECT_REASON) != "", 1))).first())
        return row[0], row[1]
