"""What a batch needs from the stored tables, read once: each account's latest month, and its stored rows within reach.

Judging a winner needs the stored row of its key and month; recomputing an
account needs its stored rows from a history array's reach before its first
changed month on. Both come from one scan of ``summary``'s scalar columns (no
history array is read: ``core.timeline`` rebuilds them), limited to the
accounts that can have such rows: those whose batch reaches back to or before
their latest month (Case III, or a correction already applied), and those that
gain several months after it (their arrays reach back into stored months).
Every other winner follows its account's latest row, or is its first: no
stored row can share its month.
"""

from typing import cast

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.core.month_columns import month_number_col
from spark_jobs.core.timeline import scalar_columns
from spark_jobs.months import month_from_number
from spark_jobs.names import (
    AS_SOURCE_STANDS,
    FIRST_CHANGED,
    LATEST_MONTH,
    MONTH_NUMBER,
    PREVIOUS_MONTH,
    RECORD_DIGEST,
    REMOVED,
    VERSION_CONFLICT,
)

ALL_MONTHS = "all"  # a batch judged as the source stands in every month (backfill's full-table read)


def latest_months(spark: SparkSession, cfg: SummaryConfig, keys: DataFrame | None) -> DataFrame:
    """(key, LATEST_MONTH) of latest_summary, for ``keys`` only when given (few enough to ship to every task)."""
    key = cfg.key_column
    latest = spark.table(cfg.latest_table).select(key, month_number_col(cfg.month_column).alias(LATEST_MONTH))
    return latest if keys is None else latest.join(F.broadcast(keys), key, "left_semi")


def scalar_rows(spark: SparkSession, cfg: SummaryConfig) -> DataFrame:
    """summary's rows without their history arrays and grids, with a month number."""
    return spark.table(cfg.summary_table).select(*scalar_columns(cfg), month_number_col(cfg.month_column).alias(MONTH_NUMBER))


def stored_in_reach(
    spark: SparkSession, cfg: SummaryConfig, winners: DataFrame, latest: DataFrame, few: bool, judge_only: bool = False
) -> tuple[DataFrame, int] | None:
    """The stored rows (scalar columns) judging and recomputing ``winners`` may need, and the month number
    they start at (a history array's reach before the earliest winner of such an account); None: no account
    can have any. ``judge_only`` (a classification, which recomputes nothing): only the columns judging reads
    (key, month, version, digest), from the earliest winner's month on."""
    key = cfg.key_column
    per_account = (
        winners.select(key, MONTH_NUMBER)
        .join(latest, key)
        .groupBy(key)
        .agg(
            F.min(MONTH_NUMBER).alias("__earliest"),
            F.min(F.col(LATEST_MONTH)).alias("__latest"),
            F.count(F.when(F.col(MONTH_NUMBER) > F.col(LATEST_MONTH), 1)).alias("__after"),
        )
        .where((F.col("__earliest") <= F.col("__latest")) | (F.col("__after") > 1))
        .select(key, "__earliest")
    )
    earliest = cast(Row, per_account.agg(F.min("__earliest").alias("m"), F.count(F.lit(1)).alias("n")).first())
    if not earliest.n:
        return None
    reach = earliest.m if judge_only else earliest.m - (cfg.max_history_length - 1)
    accounts = per_account.select(key)
    if judge_only:
        stored = spark.table(cfg.summary_table).select(key, cfg.month_column, cfg.version_column, RECORD_DIGEST)
    else:
        stored = scalar_rows(spark, cfg)
    stored = stored.where(F.col(cfg.month_column) >= month_from_number(reach))
    return stored.join(F.broadcast(accounts) if few else accounts, key, "left_semi"), reach


def previous_rows_out_of_reach(
    spark: SparkSession, cfg: SummaryConfig, stored: DataFrame, accounts: DataFrame, reach: int
) -> DataFrame | None:
    """The stored row before an account's first changed month when it is older than ``reach`` (None: none is).

    ``stored``: the account's stored rows from ``reach`` on, with ``FIRST_CHANGED``; ``accounts``: key,
    ``FIRST_CHANGED``, ``LATEST_MONTH``. Only the carried values of such a row matter (no array reaches it).
    Case II: the latest row; Case III: the row the first stored row at or after the first changed month
    names in its ``_previous_month``.
    """
    key, month = cfg.key_column, cfg.month_column
    pointers = (
        stored.where(F.col(MONTH_NUMBER) >= F.col(FIRST_CHANGED))
        .groupBy(key)
        .agg(F.min_by(PREVIOUS_MONTH, MONTH_NUMBER).alias("__previous"))
        .select(key, month_number_col("__previous").alias("__previous"))
    )
    case_ii = accounts.where(F.col(LATEST_MONTH) < F.col(FIRST_CHANGED)).select(key, F.col(LATEST_MONTH).alias("__previous"))
    wanted = pointers.unionByName(case_ii).where(F.col("__previous") < reach)
    numbers = sorted(r[0] for r in wanted.select("__previous").distinct().collect())
    if not numbers:
        return None
    wanted_rows = wanted.select(key, F.col("__previous").alias(MONTH_NUMBER))
    months = [month_from_number(n) for n in numbers]
    return scalar_rows(spark, cfg).where(F.col(month).isin(months)).join(F.broadcast(wanted_rows), [key, MONTH_NUMBER])


def rows_gone_from_source(
    spark: SparkSession, cfg: SummaryConfig, winners: DataFrame, months: tuple[str, ...] | str
) -> DataFrame:
    """``REMOVED`` markers (key, month, month number) of the summary rows in ``months`` (``ALL_MONTHS``: every
    month) that no winner of the batch has: the batch holds those months whole, so the source no longer holds
    a valid record of them."""
    key, month = cfg.key_column, cfg.month_column
    stored = spark.table(cfg.summary_table).select(key, month)
    if months != ALL_MONTHS:
        stored = stored.where(F.col(month).isin(*months))
    gone = stored.join(winners.select(key, month), [key, month], "left_anti")
    return gone.withColumns(
        {
            MONTH_NUMBER: month_number_col(month),
            REMOVED: F.lit(True),
            AS_SOURCE_STANDS: F.lit(True),
            VERSION_CONFLICT: F.lit(False),
        }
    )
