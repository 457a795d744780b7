"""``--mode describe``: a short, human-readable account of what the tables hold."""

from typing import Any, cast

from pyspark.sql import Row, SparkSession
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.storage.tables import table_exists

SAMPLE_ACCOUNTS = 3
SHOWN_ELEMENTS = 12


def describe(spark: SparkSession, cfg: SummaryConfig, sample_accounts: int = SAMPLE_ACCOUNTS) -> tuple[str, dict[str, Any]]:
    """Return (text, facts): row, account and month counts, and a few accounts' arrays and grids."""
    if not table_exists(spark, cfg.summary_table):
        return f"{cfg.summary_table} does not exist yet", {}
    key, month = cfg.key_column, cfg.month_column
    summary = spark.table(cfg.summary_table)
    stats = cast(
        Row,
        summary.agg(
            F.count(F.lit(1)).alias("rows"),
            F.countDistinct(key).alias("accounts"),
            F.countDistinct(month).alias("months"),
            F.min(month).alias("first"),
            F.max(month).alias("last"),
        ).first(),
    )
    latest_rows = spark.table(cfg.latest_table).count()
    rejects = spark.table(cfg.rejects_table).count() if table_exists(spark, cfg.rejects_table) else 0
    facts = {
        "summary_rows": stats.rows,
        "accounts": stats.accounts,
        "months": stats.months,
        "first_month": stats.first,
        "last_month": stats.last,
        "latest_summary_rows": latest_rows,
        "rejects_rows": rejects,
    }
    lines = [
        f"{cfg.summary_table}: {stats.rows} rows, {stats.accounts} accounts, "
        f"{stats.months} months ({stats.first} .. {stats.last})",
        f"{cfg.latest_table}: {latest_rows} rows (one per account)",
        f"{cfg.rejects_table}: {rejects} rejected source records",
    ]
    per_month = summary.groupBy(month).count().orderBy(month).collect()
    lines.append("rows per month: " + ", ".join(f"{r[month]}={r['count']}" for r in per_month))

    shown = [r.history_column for r in cfg.rolling_columns[:2]]
    sample = (
        spark.table(cfg.latest_table)
        .orderBy(F.size(F.filter(F.col(shown[0]), lambda x: x.isNotNull())).desc(), key)
        .limit(sample_accounts)
        .select(key, month, *shown, *cfg.grid_names)
        .collect()
        if shown
        else []
    )
    for row in sample:
        lines.append(f"account {row[key]} (latest month {row[month]}):")
        for column in shown:
            values = ["." if v is None else str(v) for v in row[column][:SHOWN_ELEMENTS]]
            lines.append(f"  {column}[0..{SHOWN_ELEMENTS - 1}] = [{', '.join(values)}]")
        for grid_name in cfg.grid_names:
            lines.append(f"  {grid_name} = {row[grid_name]}")
    return "\n".join(lines), facts
