"""Every write to the summary tables (v4 defect 4 in docs/v4-defects.md must not exist).

A batch's rows reach both tables through ``write_rows``: on the run's branches
of ``summary`` and ``latest_summary``, published together (``publish.py``), so
a run that dies anywhere leaves either nothing or both tables changed (after
the next run's metadata-only recovery):

1. ``summary``: rows whose key and month have no stored row are appended; the
   others MERGEd (merge-on-read: delete files, not rewritten data files),
   ``REMOVED`` markers deleted;
2. ``latest_summary``: each account's newest row replaces its latest row
   unless a newer month is stored (MERGE, or one rewrite when the batch
   touches a large share of it); an account whose latest row was removed
   falls back to its newest remaining row, or leaves the table;
3. publish (leaving the ``RunBranches`` block).

The scheduled month's fast path (``stages.batch``) writes through the same
block with ``append_new_month`` and ``replace_latest``. One-table writes that
are one commit each (the rejects, ``rebuild-latest``'s ``overwrite_unless_changed``)
need no branches.

Tables written by versions before the branches staged their rows in
``<summary>_staging`` first; a run that died after staging is finished by
``commit_staged`` when the next run takes the lock.
"""

from collections.abc import Sequence
from typing import cast

from pyspark.sql import Column, DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.faults import crash_point
from spark_jobs.names import INSERT, REMOVED, RUN_ID
from spark_jobs.storage.iceberg import current_snapshot
from spark_jobs.storage.publish import Clock, RunBranches
from spark_jobs.storage.runlock import HeldLock
from spark_jobs.storage.tables import sql_string

# Rows already clustered by key within each task need no shuffle before a write (the tables' hash distribution on
# one month value would send a whole month to one task).
PARALLEL_WRITE = {"distribution-mode": "none"}
LATEST_REWRITE_SHARE = 0.2  # rows per latest_summary row from which rewriting it beats a MERGE
BROADCAST_KEYS_MAX = 2_000_000  # keys the rewrite ships to every task instead of shuffling whole rows


def _lap(clock: Clock | None, phase: str) -> None:
    if clock is not None:
        clock.lap(phase)


def write_rejects(spark: SparkSession, cfg: SummaryConfig, rejects: DataFrame) -> None:
    """Add rejected records not already in the rejects table (the same record rejected twice is kept once).

    A DataFrame MERGE, not SQL over a temp view: on Spark 4.1 a MERGE whose source is a temp view over an
    Iceberg table can fail in planning ("No plan for TableReference", SPARK-57539, fixed in 4.2).
    """
    target = cfg.rejects_table
    on = (F.col(f"{target}._record_digest") == F.col("s._record_digest")) & (F.col(f"{target}.reason") == F.col("s.reason"))
    rejects.dropDuplicates(["_record_digest", "reason"]).alias("s").mergeInto(target, on).whenNotMatched().insertAll().merge()


def append_source(cfg: SummaryConfig, records: DataFrame, snapshot_properties: dict[str, str]) -> None:
    """Append ingested records to the source table in one commit whose snapshot carries ``snapshot_properties``."""
    writer = records.writeTo(cfg.source_table)
    for key, value in snapshot_properties.items():
        writer = writer.option(f"snapshot-property.{key}", value)
    writer.append()


def write_rows(
    spark: SparkSession,
    cfg: SummaryConfig,
    rows: DataFrame,
    run_id: str,
    lock: HeldLock,
    clock: Clock | None = None,
    others_stored: bool = True,
    stats: Row | None = None,
) -> dict[str, int]:
    """Write a batch's rows (summary columns and ``INSERT``) to both tables and publish them; rows written per table.

    ``rows`` is read several times: the caller keeps it computed. ``INSERT`` rows have no stored row
    (appended); each of the others replaces one (``others_stored``), or may (MERGEd with inserts too).
    ``stats``: ``rows_stats`` of ``rows`` when the caller has them.
    """
    stats = stats or rows_stats(cfg, rows)
    written = {"summary": 0, "latest_summary": 0}
    if not stats.rows:
        return written
    with RunBranches(spark, cfg, run_id, lock, clock) as branches:
        summary = branches.target(cfg.summary_table)
        if stats.inserts:
            # One month: the rows are clustered by key within each task already. Several: one task per month.
            append = rows.where(F.col(INSERT)).select(*cfg.summary_columns).writeTo(summary)
            (append.options(**PARALLEL_WRITE) if stats.months == 1 else append).append()
        if stats.merge_months:
            updates = rows.where(~F.col(INSERT))
            merge_summary(
                cfg,
                updates,
                summary,
                sorted(stats.merge_months),
                replaces_only=others_stored,
                few=stats.rows <= BROADCAST_KEYS_MAX,
                removes=stats.removed > 0,
            )
        written["summary"] = stats.rows
        crash_point("after_summary_written", spark)
        _lap(clock, "write_summary")
        kept_rows = rows.where(~F.col(REMOVED)) if stats.removed else rows
        written["latest_summary"] = merge_latest(spark, cfg, kept_rows, branches, stats.rows, one_month=stats.months == 1)
        if stats.removed:
            written["latest_summary"] += latest_after_removals(spark, cfg, rows, branches)
        crash_point("after_latest_written", spark)
        _lap(clock, "write_latest")
    return written


def append_new_month(branches: RunBranches, cfg: SummaryConfig, rows: DataFrame) -> None:
    """Append a month's rows (one per account, none stored yet) to summary's branch, clustered as they are."""
    rows.select(*cfg.summary_columns).writeTo(branches.target(cfg.summary_table)).options(**PARALLEL_WRITE).append()


def replace_latest(branches: RunBranches, cfg: SummaryConfig, rows: DataFrame) -> None:
    """Replace every row of latest_summary's branch with ``rows`` (the whole next latest_summary)."""
    rows.select(*cfg.summary_columns).writeTo(branches.target(cfg.latest_table)).options(**PARALLEL_WRITE).overwrite(F.lit(True))


def rows_stats(cfg: SummaryConfig, rows: DataFrame) -> Row:
    """What ``write_rows`` needs to know of its rows, in one aggregation (the first pass over persisted rows)."""
    return cast(
        Row,
        rows.agg(
            F.count(F.lit(1)).alias("rows"),
            F.count(F.when(F.col(INSERT), 1)).alias("inserts"),
            F.count(F.when(F.col(REMOVED), 1)).alias("removed") if REMOVED in rows.columns else F.lit(0).alias("removed"),
            F.collect_set(F.when(~F.col(INSERT), F.col(cfg.month_column))).alias("merge_months"),
            F.count_distinct(F.col(cfg.month_column)).alias("months"),
        ).first(),
    )


def merge_summary(
    cfg: SummaryConfig,
    rows: DataFrame,
    target: str,
    months: Sequence[str],
    replaces_only: bool = False,
    few: bool = False,
    removes: bool = False,
) -> None:
    """MERGE ``rows`` into ``target`` (summary or its branch) on key and month.

    ``replaces_only``: every row replaces a stored row, so the MERGE needs no insert clause; it is then an
    inner join, and with ``few`` rows they are shipped to every task that reads the target (no shuffle of
    the target's keys). ``removes``: some rows are ``REMOVED`` markers, whose stored rows are deleted.
    """
    key, month = cfg.key_column, cfg.month_column

    def target_col(name: str) -> Column:
        return F.col(f"{target}.`{name}`")

    # The month list lets Iceberg prune the target to the partitions the rows touch.
    on = (target_col(key) == F.col(f"s.`{key}`")) & (target_col(month) == F.col(f"s.`{month}`")) & target_col(month).isin(*months)
    source = rows.select(*cfg.summary_columns, *([REMOVED] if removes else []))
    merge = (F.broadcast(source) if few and replaces_only else source).alias("s").mergeInto(target, on)
    if removes:
        merge = merge.whenMatched(F.col(f"s.{REMOVED}")).delete()
        updates = {c: F.col(f"s.`{c}`") for c in cfg.summary_columns}
        merge = merge.whenMatched().update(updates)
        if not replaces_only:
            merge = merge.whenNotMatched(~F.col(f"s.{REMOVED}")).insert(updates)
        merge.merge()
        return
    merge = merge.whenMatched().updateAll()
    (merge if replaces_only else merge.whenNotMatched().insertAll()).merge()


def merge_latest(
    spark: SparkSession, cfg: SummaryConfig, rows: DataFrame, branches: RunBranches, row_count: int, one_month: bool
) -> int:
    """Each account's newest row replaces its latest row unless a newer month is stored; returns rows that won.

    ``one_month``: the rows are of one month, so one per account (no ranking needed). When they are a
    large share of ``latest_summary`` (every forward month), the table is rewritten in one pass without
    shuffling whole rows; a MERGE would shuffle both sides to join them. Smaller batches MERGE.
    """
    target = branches.target(cfg.latest_table)
    newest = rows.select(*cfg.summary_columns) if one_month else newest_per_account(rows, cfg)
    _, summary = current_snapshot(spark, cfg.latest_table)
    if row_count >= LATEST_REWRITE_SHARE * int(summary.get("total-records", 0)):
        return _rewrite_latest(spark, cfg, newest, target)
    key, month = cfg.key_column, cfg.month_column
    on = F.col(f"{target}.`{key}`") == F.col(f"s.`{key}`")
    newer = F.col(f"s.`{month}`") >= F.col(f"{target}.`{month}`")
    newest.alias("s").mergeInto(target, on).whenMatched(newer).updateAll().whenNotMatched().insertAll().merge()
    wrote = branches.wrote(cfg.latest_table)
    return sum(int(wrote.get(f"spark.merge-into.num-target-rows-{k}", 0)) for k in ("updated", "inserted")) if wrote else 0


def latest_after_removals(spark: SparkSession, cfg: SummaryConfig, rows: DataFrame, branches: RunBranches) -> int:
    """Accounts whose latest_summary row is a removed one take their newest remaining summary row, or leave.

    Runs after both tables' rows are written on the branches; reads summary's branch for those accounts only
    (rare: the source lost an account's newest month). Returns the latest_summary rows changed.
    """
    key, month = cfg.key_column, cfg.month_column
    latest_target, summary_target = branches.target(cfg.latest_table), branches.target(cfg.summary_table)
    removed = rows.where(F.col(REMOVED)).select(key, month)
    lost = removed.join(spark.table(latest_target).select(key, month), [key, month]).select(key).distinct().persist()
    try:
        count = lost.count()
        if count == 0:
            return 0
        accounts = F.broadcast(lost) if count <= BROADCAST_KEYS_MAX else lost
        remaining = newest_per_account(spark.table(summary_target).join(accounts, key, "left_semi"), cfg)
        replacement = lost.join(remaining, key, "left").select(*cfg.summary_columns)
        on = F.col(f"{latest_target}.`{key}`") == F.col(f"s.`{key}`")
        merge = replacement.alias("s").mergeInto(latest_target, on)
        merge.whenMatched(F.col(f"s.`{month}`").isNull()).delete().whenMatched().updateAll().merge()
        return count
    finally:
        lost.unpersist()


def newest_per_account(rows: DataFrame, cfg: SummaryConfig) -> DataFrame:
    """Each account's row of the greatest month, as summary columns (what latest_summary holds)."""
    newest_first = Window.partitionBy(cfg.key_column).orderBy(F.col(cfg.month_column).desc())
    ranked = rows.withColumn("__rank", F.row_number().over(newest_first))
    return ranked.where(F.col("__rank") == 1).select(*cfg.summary_columns)


def overwrite_unless_changed(rows: DataFrame, table: str, decided_on_snapshot: int | None) -> None:
    """Replace every row of ``table`` with ``rows``, unless someone committed to it after ``decided_on_snapshot``.

    The new rows were computed from that snapshot; Iceberg refuses the commit (serializable isolation,
    validated from that snapshot) if data was added or deleted since, instead of silently dropping it.
    """
    writer = rows.writeTo(table).option("isolation-level", "serializable")
    if decided_on_snapshot is not None:
        writer = writer.option("validate-from-snapshot-id", str(decided_on_snapshot))
    writer.overwrite(F.lit(True))


def _rewrite_latest(spark: SparkSession, cfg: SummaryConfig, newest: DataFrame, target: str) -> int:
    """latest_summary := its rows the new rows do not replace, plus the new rows that win (written to ``target``).

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
        kept.select(*columns).unionByName(added.select(*columns)).writeTo(target).overwrite(F.lit(True))
        return counts.wins
    finally:
        winning.unpersist()


# --- tables written before the branches: rows a dead run left in <summary>_staging ------------------------


def pending_run_ids(spark: SparkSession, cfg: SummaryConfig) -> list[str]:
    """Runs (of an earlier version) whose staged rows were not (fully) committed, oldest first."""
    if not spark.catalog.tableExists(cfg.staging_table):
        return []
    _, summary = current_snapshot(spark, cfg.staging_table)
    if int(summary.get("total-records", 0)) == 0:
        return []  # the usual case, known from metadata alone
    rows = spark.sql(f"SELECT partition.{RUN_ID} AS run_id FROM {cfg.staging_table}.partitions").collect()
    return sorted(r.run_id for r in rows)


def commit_staged(spark: SparkSession, cfg: SummaryConfig, run_id: str, lock: HeldLock) -> dict[str, int]:
    """Finish a run that died after staging its rows: MERGE them all (some may be committed), then clear them."""
    staged = spark.table(cfg.staging_table).where(F.col(RUN_ID) == run_id)
    rows = staged.select(*cfg.summary_columns).withColumn(INSERT, F.lit(False)).persist()
    try:
        written = write_rows(spark, cfg, rows, f"staged-{run_id}", lock, others_stored=False)
    finally:
        rows.unpersist()
    lock.check()
    spark.sql(f"DELETE FROM {cfg.staging_table} WHERE {RUN_ID} = {sql_string(run_id)}")
    return written
