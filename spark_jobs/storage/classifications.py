"""The backfill's own state: the classifications in ``<summary>_backfill`` and the mark in the control table.

A classification (``--mode classify``) persists its changed winners, each
labelled with its account's case, under its run id, and records in the
control table's properties that it is pending, with the source snapshot it
read up to (``BACKFILL_PENDING`` + run id; ``filter`` for a filtered or
month-limited batch, which must not move the mark). Each case stage reads its
rows and deletes them once applied; the stage that leaves nothing pending
moves the mark (``BACKFILL_MARK``): the source snapshot every backfill has
applied up to. Each of these is one Iceberg commit on one table, made while
the run lock is held; the summary tables themselves are written through
``publish.RunBranches`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.core.month_columns import month_number_col
from spark_jobs.names import (
    AS_SOURCE_STANDS,
    BACKFILL_MARK,
    BACKFILL_PENDING,
    CASE,
    MONTH_NUMBER,
    REMOVED,
    RUN_ID,
    VERSION_CONFLICT,
)
from spark_jobs.storage.iceberg import table_properties, update_properties
from spark_jobs.storage.tables import create_table, small_table_properties, sql_string

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from spark_jobs.config import SummaryConfig

FILTERED = "filter"  # the pending value of a classification whose batch must not move the mark
JUDGING_FLAGS = (REMOVED, AS_SOURCE_STANDS)


def applied_mark(spark: SparkSession, cfg: SummaryConfig) -> str | None:
    """The source snapshot every backfill has applied up to (None: no backfill finished yet)."""
    return table_properties(spark, cfg.control_table).get(BACKFILL_MARK)


def move_mark(spark: SparkSession, cfg: SummaryConfig, run_id: str, end_snapshot: int | None) -> None:
    """Record that every source record up to ``end_snapshot`` is applied; forget the finished classification."""

    def update(properties: dict[str, str]) -> dict[str, str] | None:
        changes = {BACKFILL_PENDING + run_id: ""} if BACKFILL_PENDING + run_id in properties else {}
        if end_snapshot is not None:
            changes[BACKFILL_MARK] = str(end_snapshot)
        return changes or None

    update_properties(spark, cfg.control_table, update)


def ensure_table(spark: SparkSession, cfg: SummaryConfig, winners_schema: T.StructType) -> None:
    """The table a classification persists its changed winners in, with the judging flags the case stages
    need (added to a table created by an earlier version)."""
    flags = [T.StructField(flag, T.BooleanType()) for flag in JUDGING_FLAGS]
    skipped = (VERSION_CONFLICT, MONTH_NUMBER, *JUDGING_FLAGS)
    fields = [f for f in winners_schema.fields if f.name not in skipped]
    schema = T.StructType([*fields, *flags, T.StructField(CASE, T.IntegerType()), T.StructField(RUN_ID, T.StringType())])
    if not create_table(spark, cfg, "backfill", cfg.backfill_table, schema, small_table_properties(cfg), (RUN_ID,)):
        present = set(spark.table(cfg.backfill_table).columns)
        missing = [f for f in flags if f.name not in present]
        if missing:
            columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in missing)
            spark.sql(f"ALTER TABLE {cfg.backfill_table} ADD COLUMNS ({columns})")


def supersede_unfinished(spark: SparkSession, cfg: SummaryConfig) -> None:
    """Forget every unfinished classification (a new one re-reads their records: the mark has not moved)."""
    spark.sql(f"DELETE FROM {cfg.backfill_table} WHERE true")
    update_properties(spark, cfg.control_table, lambda p: {k: "" for k in p if k.startswith(BACKFILL_PENDING)} or None)


def save(spark: SparkSession, cfg: SummaryConfig, run_id: str, labelled: DataFrame, end_snapshot: int | None) -> None:
    """Persist a classification's changed winners (with ``CASE``) and mark it pending up to ``end_snapshot``
    (None: a filtered or month-limited batch, which must not move the mark when it is done)."""
    columns = [f.name for f in spark.table(cfg.backfill_table).schema.fields if f.name != RUN_ID]
    labelled.select(*columns).withColumn(RUN_ID, F.lit(run_id)).writeTo(cfg.backfill_table).append()
    pending = FILTERED if end_snapshot is None else str(end_snapshot)
    key = BACKFILL_PENDING + run_id
    update_properties(spark, cfg.control_table, lambda p: None if p.get(key) == pending else {key: pending})


def pending(spark: SparkSession, cfg: SummaryConfig, run_id: str) -> tuple[bool, int | None]:
    """(whether classification ``run_id`` is pending, the source snapshot it moves the mark to when done)."""
    value = table_properties(spark, cfg.control_table).get(BACKFILL_PENDING + run_id)
    if value is None:
        return False, None
    return True, None if value == FILTERED else int(value)


def case_winners(spark: SparkSession, cfg: SummaryConfig, run_id: str, case: int) -> DataFrame:
    """The changed winners of one case of a classification, shaped as the batch engine's winners."""
    rows = spark.table(cfg.backfill_table).where((F.col(RUN_ID) == run_id) & (F.col(CASE) == case))
    return (
        rows.drop(RUN_ID, CASE)
        .withColumn(VERSION_CONFLICT, F.lit(False))
        .withColumns({flag: F.coalesce(F.col(flag), F.lit(False)) for flag in JUDGING_FLAGS})
        .withColumn(MONTH_NUMBER, month_number_col(cfg.month_column))
    )


def finish_case(spark: SparkSession, cfg: SummaryConfig, run_id: str, case: int) -> bool:
    """Delete one case's rows of a classification once applied; returns whether none of it remains."""
    spark.sql(f"DELETE FROM {cfg.backfill_table} WHERE {RUN_ID} = {sql_string(run_id)} AND {CASE} = {case}")
    return spark.table(cfg.backfill_table).where(F.col(RUN_ID) == run_id).limit(1).count() == 0
