"""The floor under each speed target: the same rows, with nothing but the reads and writes no algorithm avoids.

Each floor runs in the scenario's process, right after ours and v4's step, on
the same data, so the three share the machine's noise. A floor is a lower
bound of any implementation on this storage layout and this machine: when the
floor alone is slower than a target, the target is out of reach here.

- forward: read every column of the month's source records (one per account,
  any one) and ``latest_summary``'s whole rows once, join them on the key, keep
  the result in memory, write it once to a summary-shaped table (a new
  partition) and once to a latest-shaped table (one overwrite). No mapping,
  winner rule, shift, grid or bookkeeping.
- Case III: read the scalar columns (never the history arrays) of every month
  from each corrected account's month on, keep the corrected accounts' rows,
  and append as many rows as ours rewrote, with full-length arrays, to a
  summary-shaped table, and one row per account to a latest-shaped one; then
  delete the replaced rows from the real ``summary`` (the rows just read) and
  the accounts' rows from the real ``latest_summary``, each with Spark's
  cheapest Iceberg delete (a MERGE that only deletes: a scan of the key and
  month columns, a merge-on-read delete file), and roll both tables back to
  where they were. No computation: a lower bound.
"""

import time

from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.storage.iceberg import java_table


def _empty_like(spark, table, copy, partition=None):
    spark.sql(f"DROP TABLE IF EXISTS {copy}")
    partitioned = f"PARTITIONED BY (`{partition}`)" if partition else ""
    spark.sql(
        f"CREATE TABLE {copy} USING iceberg {partitioned} TBLPROPERTIES ('format-version'='2') "
        f"AS SELECT * FROM {table} WHERE false"
    )


def _seconds(action):
    started = time.monotonic()
    action()
    return round(time.monotonic() - started, 2)


def forward_floor_rows(spark, cfg: SummaryConfig, month: str, columns: list[str]):
    """One summary-shaped row per account of ``month``: the values of one of its records (any one: no winner
    rule) and ``latest_summary``'s other columns (history arrays, grids, bookkeeping), in ``columns``' order.

    The month's values exist only in its records, so every column of them is read; the rest of a row is what
    a forward month carries over from ``latest_summary``.
    """
    key, part = cfg.key_column, cfg.month_column
    types = {f.name: f.dataType for f in spark.table(cfg.summary_table).schema.fields}
    taken = {src: dst for src, dst in cfg.columns.items() if dst in types and dst != part}
    records = spark.table(cfg.source_table).where(F.col(cfg.source_column(part)) == month)
    records = records.select(*[F.col(f"`{src}`").cast(types[dst]).alias(dst) for src, dst in taken.items()])
    latest = spark.table(cfg.latest_table).drop(part, *[dst for dst in taken.values() if dst != key])
    return records.dropDuplicates([key]).join(latest, key, "left").withColumn(part, F.lit(month)).select(*columns)


def forward_floor(spark, cfg: SummaryConfig, month: str) -> dict:
    """Seconds of the unavoidable reads and writes of one forward month (see the module docstring)."""
    summary_copy, latest_copy = f"{cfg.summary_table}_floor", f"{cfg.latest_table}_floor"
    _empty_like(spark, cfg.summary_table, summary_copy, cfg.month_column)
    _empty_like(spark, cfg.latest_table, latest_copy)
    rows = forward_floor_rows(spark, cfg, month, spark.table(summary_copy).columns)
    parts = {}
    cached = rows.cache()
    parts["read_and_join"] = _seconds(cached.count)
    parts["write_summary"] = _seconds(lambda: cached.writeTo(summary_copy).option("distribution-mode", "none").append())
    parts["write_latest"] = _seconds(lambda: cached.writeTo(latest_copy).overwrite(F.lit(True)))
    cached.unpersist()
    for table in (summary_copy, latest_copy):
        spark.sql(f"DROP TABLE IF EXISTS {table}")
    return {"floor_s": round(sum(parts.values()), 2), "floor_parts": parts}


def case_iii_floor(spark, cfg: SummaryConfig, corrected, rows_to_write: int) -> dict:
    """Seconds of the unavoidable reads and writes of a Case III batch (see the module docstring).

    ``corrected``: the corrected source records (key and month columns in source names).
    """
    key, part = cfg.key_column, cfg.month_column
    first_month = corrected.groupBy(F.col(cfg.source_column(key)).alias(key)).agg(F.min(cfg.source_column(part)).alias("__first"))
    first_month = F.broadcast(first_month.cache())
    earliest = first_month.agg(F.min("__first")).first()[0]
    arrays = set(cfg.history_columns) | set(cfg.grid_names)
    scalars = [c for c in spark.table(cfg.summary_table).columns if c not in arrays]
    summary_copy, latest_copy = f"{cfg.summary_table}_floor", f"{cfg.latest_table}_floor"
    _empty_like(spark, cfg.summary_table, summary_copy, part)
    _empty_like(spark, cfg.latest_table, latest_copy)
    stored = spark.table(cfg.summary_table).select(*scalars).where(F.col(part) >= earliest)
    rows = stored.join(first_month, key).where(F.col(part) >= F.col("__first")).drop("__first")
    parts = {}
    cached = rows.cache()
    parts["read_scalars"] = _seconds(cached.count)
    # Rows as wide as ours: every history array at full length (its values do not matter to the write).
    filled = cached
    for rolling in cfg.rolling_columns:
        filled = filled.withColumn(rolling.history_column, F.array_repeat(F.col(rolling.mapper_column), rolling.num_cols))
    for grid_name in cfg.grid_names:
        filled = filled.withColumn(grid_name, F.lit("0" * cfg.history_length))
    filled = filled.select(*spark.table(summary_copy).columns).limit(rows_to_write)
    parts["write_summary"] = _seconds(lambda: filled.writeTo(summary_copy).option("distribution-mode", "none").append())
    newest = filled.groupBy(key).agg(F.max(part).alias(part)).join(filled, [key, part])
    parts["write_latest"] = _seconds(lambda: newest.select(*spark.table(latest_copy).columns).writeTo(latest_copy).append())
    replaced = cached.select(key, part)
    parts["delete_summary"] = _seconds(lambda: _delete_then_roll_back(spark, cfg.summary_table, replaced, [key, part]))
    accounts = replaced.select(key).distinct()
    parts["delete_latest"] = _seconds(lambda: _delete_then_roll_back(spark, cfg.latest_table, accounts, [key]))
    cached.unpersist()
    for table in (summary_copy, latest_copy):
        spark.sql(f"DROP TABLE IF EXISTS {table}")
    return {"floor_s": round(sum(parts.values()), 2), "floor_parts": parts}


def _delete_then_roll_back(spark, table, rows, on):
    """Delete ``rows`` (matched on ``on``) from ``table`` in one commit, then restore the snapshot before it."""
    before = java_table(spark, table).currentSnapshot().snapshotId()
    rows.createOrReplaceTempView("__floor_deleted")
    condition = " AND ".join(f"t.`{c}` = d.`{c}`" for c in on)
    spark.sql(f"MERGE INTO {table} t USING __floor_deleted d ON {condition} WHEN MATCHED THEN DELETE")
    java_table(spark, table).manageSnapshots().rollbackTo(before).commit()


def classifier_column_share(spark, table: str, columns: list[str]) -> float:
    """The share of ``table``'s data-file bytes that hold ``columns`` (Iceberg's per-column sizes of every file)."""
    measured = spark.table(f"{table}.files").schema["readable_metrics"].dataType.fieldNames()
    missing = [c for c in columns if c not in measured]
    if missing:  # a nested column (a history array) has no one size: then say nothing rather than a wrong share
        raise ValueError(f"no per-column size for {missing} in {table}.files")
    sizes = ", ".join(f"sum(readable_metrics.`{c}`.column_size)" for c in columns)
    row = spark.sql(f"SELECT sum(file_size_in_bytes), {sizes} FROM {table}.files").first()
    total = row[0] or 0
    return round(sum(v or 0 for v in row[1:]) / total, 4) if total else 0.0
