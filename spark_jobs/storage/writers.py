"""Every write to the summary tables: stage, commit, recover (v4 defect 4 in docs/v4-defects.md must not exist).

Iceberg commits one table at a time, so a run that updates ``summary`` and
``latest_summary`` makes them recoverable instead of atomic:

1. the rows the run computed go to ``<summary>_staging`` under its run id (one
   atomic append: before it nothing has changed, after it the run is decided);
2. write the staged rows into ``summary``: rows whose key and month have no
   stored row are appended, the others MERGEd;
3. put each account's newest staged row into ``latest_summary`` (MERGE, or one
   rewrite when the run touches a large share of it);
4. delete the run's staged rows.

Steps 3-4 are idempotent, and so is step 2 when it MERGEs every row, which is
how a run that died is finished: whoever takes the run lock next finds the staged
rows of a run that died after step 1 and finishes steps 2-4 before anything
else, so the tables never stay in disagreement and no later run builds on a
half-applied one.
"""

from collections.abc import Sequence
from typing import Protocol, cast

from pyspark.sql import DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.faults import crash_point
from spark_jobs.names import INSERT, RUN_ID
from spark_jobs.storage.iceberg import current_snapshot
from spark_jobs.storage.runlock import HeldLock
from spark_jobs.storage.tables import sql_string


def _q(name: str) -> str:
    return f"`{name}`"


def write_rejects(spark: SparkSession, cfg: SummaryConfig, rejects: DataFrame) -> None:
    """Add rejected records not already in the rejects table (the same record rejected twice is kept once).

    A DataFrame MERGE, not SQL over a temp view: on Spark 4.1 a MERGE whose source is a temp view over an
    Iceberg table can fail in planning ("No plan for TableReference", SPARK-57539, fixed in 4.2).
    """
    target = cfg.rejects_table
    on = (F.col(f"{target}._record_digest") == F.col("s._record_digest")) & (F.col(f"{target}.reason") == F.col("s.reason"))
    rejects.dropDuplicates(["_record_digest", "reason"]).alias("s").mergeInto(target, on).whenNotMatched().insertAll().merge()


def stage(cfg: SummaryConfig, rows: DataFrame, run_id: str) -> None:
    # One run id is one partition value: Iceberg's default (hash) distribution would send every row to one task.
    staged = rows.select(*cfg.summary_columns, INSERT).withColumn(RUN_ID, F.lit(run_id))
    staged.writeTo(cfg.staging_table).option("distribution-mode", "none").append()


def pending_run_ids(spark: SparkSession, cfg: SummaryConfig) -> list[str]:
    """Runs whose staged rows were not (fully) committed, oldest first."""
    _, summary = current_snapshot(spark, cfg.staging_table)
    if int(summary.get("total-records", 0)) == 0:
        return []  # the usual case, known from metadata alone
    rows = spark.sql(f"SELECT partition.{RUN_ID} AS run_id FROM {cfg.staging_table}.partitions").collect()
    return sorted(r.run_id for r in rows)


def commit_staged(
    spark: SparkSession, cfg: SummaryConfig, run_id: str, lock: HeldLock, fresh: bool = False, clock: "Clock | None" = None
) -> dict[str, int]:
    """Steps 2-4 for ``run_id``; returns rows written per table.

    ``fresh``: the run that staged the rows commits them, so rows with no stored row yet are appended
    (no join with summary). Finishing another run's rows MERGEs them all: some may be committed already.
    """
    staged = spark.table(cfg.staging_table).where(F.col(RUN_ID) == run_id)
    merged = ~F.col(INSERT) if fresh else F.lit(True)
    stats = cast(
        Row,
        staged.agg(
            F.count(F.lit(1)).alias("rows"),
            F.count(F.when(F.col(INSERT), 1)).alias("inserts"),
            F.collect_set(F.when(merged, F.col(cfg.month_column))).alias("merge_months"),
            F.count_distinct(F.col(cfg.month_column)).alias("months"),
        ).first(),
    )
    written = {"summary": 0, "latest_summary": 0}
    if stats.rows:
        lock.check()
        if fresh and stats.inserts:
            # Sorted by (month, key) within each task, so no shuffle is needed: with the table's hash
            # distribution a one-month append would run in one task.
            inserts = staged.where(F.col(INSERT)).select(*cfg.summary_columns)
            inserts.writeTo(cfg.summary_table).option("distribution-mode", "none").append()
        if stats.merge_months:
            merge_summary(spark, cfg, run_id, sorted(stats.merge_months), only_updates=fresh)
        written["summary"] = stats.rows
        _lap(clock, "commit_summary")
        crash_point("after_summary_merge", spark)
        lock.check()
        written["latest_summary"] = merge_latest(spark, cfg, run_id, stats.rows, one_month=stats.months == 1)
        _lap(clock, "commit_latest")
        crash_point("after_latest_merge", spark)
    lock.check()
    spark.sql(f"DELETE FROM {cfg.staging_table} WHERE {RUN_ID} = {sql_string(run_id)}")
    _lap(clock, "commit_clear_staging")
    crash_point("after_staging_cleared", spark)
    return written


class Clock(Protocol):
    """Takes the time of each phase (``stages.batch.PhaseClock``)."""

    def lap(self, phase: str) -> None: ...


def _lap(clock: Clock | None, phase: str) -> None:
    if clock is not None:
        clock.lap(phase)


def _set_and_insert(columns: Sequence[str]) -> tuple[str, str]:
    assignments = ", ".join(f"t.{_q(c)} = s.{_q(c)}" for c in columns)
    names = ", ".join(_q(c) for c in columns)
    values = ", ".join(f"s.{_q(c)}" for c in columns)
    return f"UPDATE SET {assignments}", f"INSERT ({names}) VALUES ({values})"


def merge_summary(
    spark: SparkSession, cfg: SummaryConfig, run_id: str, months: Sequence[str], only_updates: bool = False
) -> None:
    key, month = _q(cfg.key_column), _q(cfg.month_column)
    update, insert = _set_and_insert(cfg.summary_columns)
    month_list = ", ".join(sql_string(m) for m in months)
    source = f"SELECT * FROM {cfg.staging_table} WHERE {RUN_ID} = {sql_string(run_id)}"
    if only_updates:
        source += f" AND NOT {INSERT}"
    # The month list in ON lets Iceberg prune the target to the partitions the run touches.
    spark.sql(
        f"MERGE INTO {cfg.summary_table} t USING ({source}) s "
        f"ON t.{key} = s.{key} AND t.{month} = s.{month} AND t.{month} IN ({month_list}) "
        f"WHEN MATCHED THEN {update} WHEN NOT MATCHED THEN {insert}"
    )


def merge_latest(spark: SparkSession, cfg: SummaryConfig, run_id: str, staged_rows: int, one_month: bool) -> int:
    """Each account's newest staged row replaces its latest row unless a newer month is stored.

    ``one_month``: the staged rows are of one month, so one per account (no ranking needed). When they
    are a large share of ``latest_summary`` (every forward month), the table is rewritten in one pass
    without shuffling whole rows; a MERGE would shuffle both sides to join them and, copy-on-write,
    rewrite every file anyway. Smaller batches MERGE. Both are idempotent: a retry writes the same rows.
    """
    target = cfg.latest_table
    before, summary = current_snapshot(spark, target)
    newest = _newest_staged(spark, cfg, run_id, one_month)
    if staged_rows >= LATEST_REWRITE_SHARE * int(summary.get("total-records", 0)):
        return _rewrite_latest(spark, cfg, newest, before)
    key, month = _q(cfg.key_column), _q(cfg.month_column)
    on = F.col(f"{target}.{key}") == F.col(f"s.{key}")
    newer = F.col(f"s.{month}") >= F.col(f"{target}.{month}")
    newest.alias("s").mergeInto(target, on).whenMatched(newer).updateAll().whenNotMatched().insertAll().merge()
    return merged_rows(spark, target, before)


LATEST_REWRITE_SHARE = 0.2  # staged rows per latest_summary row from which rewriting beats a MERGE
BROADCAST_KEYS_MAX = 2_000_000  # keys the rewrite ships to every task instead of shuffling whole rows


def newest_per_account(rows: DataFrame, cfg: SummaryConfig) -> DataFrame:
    """Each account's row of the greatest month, as summary columns (what latest_summary holds)."""
    newest_first = Window.partitionBy(cfg.key_column).orderBy(F.col(cfg.month_column).desc())
    ranked = rows.withColumn("__rank", F.row_number().over(newest_first))
    return ranked.where(F.col("__rank") == 1).select(*cfg.summary_columns)


def _newest_staged(spark: SparkSession, cfg: SummaryConfig, run_id: str, one_month: bool) -> DataFrame:
    staged = spark.table(cfg.staging_table).where(F.col(RUN_ID) == run_id)
    return staged.select(*cfg.summary_columns) if one_month else newest_per_account(staged, cfg)


def overwrite_unless_changed(rows: DataFrame, table: str, decided_on_snapshot: int | None) -> None:
    """Replace every row of ``table`` with ``rows``, unless someone committed to it after ``decided_on_snapshot``.

    The new rows were computed from that snapshot; Iceberg refuses the commit (serializable isolation,
    validated from that snapshot) if data was added or deleted since, instead of silently dropping it.
    """
    writer = rows.writeTo(table).option("isolation-level", "serializable")
    if decided_on_snapshot is not None:
        writer = writer.option("validate-from-snapshot-id", str(decided_on_snapshot))
    writer.overwrite(F.lit(True))


def _rewrite_latest(spark: SparkSession, cfg: SummaryConfig, newest: DataFrame, decided_on_snapshot: int | None) -> int:
    """latest_summary := its rows the staged rows do not replace, plus the staged rows that win.

    Which rows win is decided on keys and months alone (narrow, and read vectorized); whole rows are
    then read once on each side and written, with no shuffle of them.
    """
    key, month = cfg.key_column, cfg.month_column
    latest = spark.table(cfg.latest_table)
    winning = (
        newest.select(key, F.col(month).alias("__new"))
        .join(latest.select(key, F.col(month).alias("__old")), key, "left")
        .where(F.col("__old").isNull() | (F.col("__new") >= F.col("__old")))
        .persist()
    )
    try:
        counts = cast(Row, winning.agg(F.count(F.lit(1)).alias("wins"), F.count("__old").alias("replaces")).first())
        if counts.wins == 0:
            return 0
        replaced, winners = winning.where(F.col("__old").isNotNull()).select(key), winning.select(key)
        if counts.wins <= BROADCAST_KEYS_MAX:
            replaced, winners = F.broadcast(replaced), F.broadcast(winners)
        kept = latest.join(replaced, key, "left_anti") if counts.replaces else latest
        added = newest.join(winners, key, "left_semi")
        columns = cfg.summary_columns
        overwrite_unless_changed(kept.select(*columns).unionByName(added.select(*columns)), cfg.latest_table, decided_on_snapshot)
        return counts.wins
    finally:
        winning.unpersist()


def merged_rows(spark: SparkSession, table: str, snapshot_before: int | None) -> int:
    """Rows a MERGE updated or inserted, from the metrics Iceberg records in its snapshot (0 if it committed nothing)."""
    snapshot_id, summary = current_snapshot(spark, table)
    if snapshot_id == snapshot_before:
        return 0
    return sum(int(summary.get(f"spark.merge-into.num-target-rows-{k}", 0)) for k in ("updated", "inserted"))
