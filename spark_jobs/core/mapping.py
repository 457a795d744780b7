"""Source records -> mapped records, rejects and winners (docs/table-contract.md §1-§3).

Everything here is a pure ``DataFrame -> DataFrame`` or ``Column`` function: no
table is read or written, so each rule is testable on hand-made rows.
"""

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.core.month_columns import is_month_col, month_number_col
from spark_jobs.names import MONTH_NUMBER, RECORD_DIGEST, REJECT_REASON, RUN_ID, SOURCE_RECORD, VERSION_CONFLICT

DIGEST_SEPARATOR = "\u001f"
DIGEST_NULL = "\u0000"


def record_digest(values: Sequence[Column]) -> Column:
    """Deterministic 60-bit digest of a record's values: the tie-break between equal versions.

    sha-256 of the values cast to string, in config order, joined by U+001F
    (NULL written as U+0000); the first 15 hex digits as a BIGINT. Documented in
    docs/operations.md so that anyone can recompute which of two tied records won.
    """
    canonical = F.concat_ws(DIGEST_SEPARATOR, *[F.coalesce(v.cast("string"), F.lit(DIGEST_NULL)) for v in values])
    return F.conv(F.substring(F.sha2(canonical, 256), 1, 15), 16, 10).cast("bigint")


def shown_value(value: Column, limit: int = 40) -> Column:
    """A string value as a reason shows it: JSON-quoted (line breaks visible), cut to ``limit`` characters."""
    quoted = F.regexp_replace(F.to_json(F.array(F.substring(value, 1, limit))), r"^\[|\]$", "")
    cut = F.concat(quoted, F.lit("... ("), F.length(value), F.lit(" characters)"))
    return F.when(value.isNull(), F.lit(None)).when(F.length(value) > limit, cut).otherwise(quoted)


def reject_reason(cfg: SummaryConfig) -> Column:
    """Why a mapped record is rejected (docs/table-contract.md §2), or '' when it is valid."""
    month = F.col(cfg.month_column).cast("string")
    return F.concat_ws(
        "; ",
        F.when(F.col(cfg.key_column).isNull(), F.lit(f"NULL {cfg.key_column} (primary_column)")),
        F.when(F.col(cfg.version_column).isNull(), F.lit(f"NULL {cfg.version_column} (max_identifier_column)")),
        F.when(
            month.isNull() | ~is_month_col(month),
            F.concat(
                F.lit(f"{cfg.month_column} (partition_column) is not a YYYY-MM month: "),
                F.coalesce(shown_value(month), F.lit("NULL")),
            ),
        ),
    )


def map_records(source: DataFrame, cfg: SummaryConfig) -> DataFrame:
    """§1: rename, column_transformations, inferred_columns, rolling mappers (cast to their type).

    Adds the record digest (of the renamed record), the reject reason and, for
    rejected records only, the original record as JSON (kept for the rejects
    table; building it for every record cost a JSON string per valid record).
    """
    originals = [f"__as_sent_{i}" for i in range(len(cfg.columns))]
    as_sent = [F.col(f"`{src}`") for src in cfg.columns]
    renamed = source.select(
        *[value.alias(dst) for value, dst in zip(as_sent, cfg.columns.values(), strict=True)],
        *[value.alias(original) for value, original in zip(as_sent, originals, strict=True)],
        record_digest(as_sent).alias(RECORD_DIGEST),  # the renamed record's values are the sent ones
    )
    steps = [(d.name, d.mapper_expr, F.expr(d.mapper_expr)) for d in (*cfg.column_transformations, *cfg.inferred_columns)]
    steps += [(r.mapper_column, r.mapper_expr, F.expr(r.mapper_expr).cast(r.sql_type)) for r in cfg.rolling_columns]
    mapped = with_steps(renamed, steps)
    reason = reject_reason(cfg)
    sent = F.struct(*[F.col(original).alias(src) for src, original in zip(cfg.columns, originals, strict=True)])
    record = F.when(reason != "", F.to_json(sent, {"ignoreNullFields": "false"}))
    kept = [F.col("`" + c.replace("`", "``") + "`") for c in mapped.columns if c not in originals]
    return mapped.select(*kept, reason.alias(REJECT_REASON), record.alias(SOURCE_RECORD))


def with_steps(frame: DataFrame, steps: Sequence[tuple[str, str, Column]]) -> DataFrame:
    """``frame`` with each (name, expression text, column) added in order, as ``withColumn`` one by one would.

    Steps go in groups, one ``withColumns`` each: a step starts a new group when its text mentions a name
    the current group defines (it must see that value) or redefines one. Each plan node is analysed when
    it is added, and one per step was a second or more of every run's planning on a cold JVM.
    """
    group: dict[str, Column] = {}
    for name, text, column in steps:
        lowered = text.lower()
        if any(n.lower() == name.lower() or n.lower() in lowered or n.replace("`", "``").lower() in lowered for n in group):
            frame, group = frame.withColumns(group), {}
        group[name] = column
    return frame.withColumns(group) if group else frame


def valid_records(mapped: DataFrame, cfg: SummaryConfig) -> DataFrame:
    return (
        mapped.where(F.col(REJECT_REASON) == "")
        .drop(REJECT_REASON, SOURCE_RECORD)
        .withColumn(MONTH_NUMBER, month_number_col(cfg.month_column))
    )


def rejected_records(mapped: DataFrame, cfg: SummaryConfig, run_id: str) -> DataFrame:
    """Rows for the rejects table: the original record, why, and which run saw it."""
    return mapped.where(F.col(REJECT_REASON) != "").select(
        F.lit(run_id).alias(RUN_ID),
        F.current_timestamp().alias("rejected_at"),
        F.col(REJECT_REASON).alias("reason"),
        F.col(cfg.key_column).cast("string").alias("record_key"),
        F.col(cfg.month_column).cast("string").alias("record_month"),
        F.col(cfg.version_column).cast("string").alias("record_version"),
        F.col(SOURCE_RECORD).alias("record"),
        F.col(RECORD_DIGEST),
    )


def winners(valid: DataFrame, cfg: SummaryConfig) -> DataFrame:
    """§3: one row per (key, month): greatest version, ties broken by the greatest digest.

    Flags the winners whose version is shared by a record with different
    content (a data error that is counted, not hidden).
    """
    same_key_month = Window.partitionBy(cfg.key_column, MONTH_NUMBER)
    ordered = same_key_month.orderBy(F.col(cfg.version_column).desc(), F.col(RECORD_DIGEST).desc())
    version = F.col(cfg.version_column)
    digest_at_top_version = F.when(version == F.col("__top_version"), F.col(RECORD_DIGEST))
    return (
        valid.withColumn("__rank", F.row_number().over(ordered))
        .withColumn("__top_version", F.max(version).over(same_key_month))
        .withColumn("__lowest_top_digest", F.min(digest_at_top_version).over(same_key_month))
        .where(F.col("__rank") == 1)
        .withColumn(VERSION_CONFLICT, F.col("__lowest_top_digest") != F.col(RECORD_DIGEST))
        .drop("__rank", "__top_version", "__lowest_top_digest")
    )
