"""``--mode check``: verify the tables against the table contract's rules that they can prove on their own.

For an operator after an incident, a restore or a hand edit: every check is a
query over ``summary`` and ``latest_summary`` (no source needed) that counts the
rows breaking one rule and names a few of their keys. Nothing is written and
no lock is taken, so it runs next to the pipeline.

With the source present, one more rule sets summary beside it: each
account-month's winner as the source stands now must be the summary row (same
version and record digest), and no summary row may lack a valid source record.
A difference the pipeline has not had its turn at yet (records written after
the backfill mark, or no backfill run yet) is reported as pending, not as a
violation; any other difference is a divergence (docs/table-contract.md,
"Summary follows the source").
"""

from collections.abc import Callable, Iterable
from typing import Any, cast

from pyspark.sql import Column, DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F

from spark_jobs.config import RollingColumn, SummaryConfig
from spark_jobs.core.history import grid
from spark_jobs.core.mapping import map_records, valid_records, winners
from spark_jobs.core.month_columns import month_number_col
from spark_jobs.errors import RuleViolations
from spark_jobs.months import add_months
from spark_jobs.names import BACKFILL_MARK, MONTH_NUMBER, PREVIOUS_MONTH, RECORD_DIGEST
from spark_jobs.report import RunReport
from spark_jobs.storage.iceberg import current_snapshot, table_properties
from spark_jobs.storage.source_changes import FULL_TABLE, changes_between
from spark_jobs.storage.tables import table_exists
from spark_jobs.storage.writers import newest_per_account

EXAMPLES = 5
PREVIOUS = "__previous_"
GAP = "__gap"
OLDER_MONTH = "__older_month"
PENDING = "__pending"


def _q(name: str) -> str:
    return f"`{name}`"


def with_previous_row(
    summary: DataFrame, cfg: SummaryConfig, columns: Iterable[str], older: DataFrame | None = None
) -> DataFrame:
    """Each summary row with ``columns`` of the account's previous row (by month) and the gap in months.

    ``summary`` may hold only the months of a window (a scoped check); ``older`` then gives each account's
    newest month before it (key and ``OLDER_MONTH``): a row whose previous row lies there takes its month,
    hence the gap, from it; the previous row's other columns stay NULL, so only the rules that need nothing
    but the gap and the previous month judge it.
    """
    key, month = cfg.key_column, cfg.month_column
    by_month = Window.partitionBy(key).orderBy(MONTH_NUMBER)
    rows = summary.withColumn(MONTH_NUMBER, month_number_col(month))
    for column in columns:
        rows = rows.withColumn(PREVIOUS + column, F.lag(column).over(by_month))
    previous_month = F.lag(month).over(by_month)
    if older is not None:
        rows = rows.join(older, key, "left")
        previous_month = F.coalesce(previous_month, F.col(OLDER_MONTH))
    rows = rows.withColumn(PREVIOUS + month, previous_month)
    return rows.withColumn(GAP, F.col(MONTH_NUMBER) - month_number_col(PREVIOUS + month))


def shift_broken(rolling: RollingColumn, gap: Column) -> F.Column:
    """This row's array does not continue the previous row's: a first row must have only element 0; after a gap
    of g months, elements 1..g-1 are NULL and elements g.. are the previous row's elements 0.."""
    n, current, previous = rolling.num_cols, F.col(rolling.history_column), F.col(PREVIOUS + rolling.history_column)
    tail_nulls = lambda start, count: F.forall(F.slice(current, start, count), lambda x: x.isNull())  # noqa: E731
    first_row = gap.isNull() & ~tail_nulls(F.lit(2), F.lit(max(n - 1, 1)))
    gap_not_null = (gap > 1) & ~tail_nulls(F.lit(2), F.greatest(F.least(gap - 1, F.lit(n - 1)), F.lit(0)))
    kept = F.greatest(F.lit(n) - gap, F.lit(0))
    moved = (gap < n) & ~F.slice(current, gap + 1, kept).eqNullSafe(F.slice(previous, F.lit(1), kept))
    return F.coalesce(first_row | (gap.isNotNull() & (gap_not_null | moved)), F.lit(False))


def rule_checks(cfg: SummaryConfig) -> list[tuple[str, str, Column]]:
    """(name, what it means, condition over a summary row with its previous row) for the per-row rules."""
    checks = []
    for rolling in cfg.rolling_columns:
        h = rolling.history_column
        checks += [
            (
                f"{h}.length",
                f"{h} does not have {rolling.num_cols} elements",
                F.coalesce(F.size(h) != rolling.num_cols, F.lit(True)),
            ),
            (
                f"{h}.element_0",
                f"element 0 of {h} is not this row's {rolling.mapper_column}",
                ~F.element_at(h, 1).eqNullSafe(F.col(rolling.mapper_column)),
            ),
            (
                f"{h}.shift",
                f"{h} does not continue the previous row's array (docs/table-contract.md §4)",
                shift_broken(rolling, F.col(GAP)),
            ),
        ]
    for g in cfg.grid_columns:
        rolling = cfg.rolling_by_name(g.mapper_rolling_column)
        checks.append(
            (
                f"{g.name}.grid",
                f"{g.name} is not the grid of {rolling.history_column}",
                ~F.col(g.name).eqNullSafe(grid(g, rolling.history_column)),
            )
        )
    date = cfg.primary_date_column
    if date and date not in cfg.date_col_list:  # a legacy date (year < 1000) there is cleaned to NULL, legitimately
        checks.append((date + ".null", f"{date} is NULL (it defaults to the first day of the month)", F.col(date).isNull()))
    for column in cfg.carry_columns:
        if column not in cfg.date_col_list:  # a cleaned legacy date may legitimately turn NULL
            checks.append(
                (
                    f"{column}.carried",
                    f"{column} is NULL although the previous row has a value to carry forward",
                    F.col(column).isNull() & F.col(PREVIOUS + column).isNotNull(),
                )
            )
    checks.append(
        (
            f"{PREVIOUS_MONTH}.pointer",
            f"{PREVIOUS_MONTH} does not name the previous row's month",
            ~F.col(PREVIOUS_MONTH).eqNullSafe(F.col(PREVIOUS + cfg.month_column)),
        )
    )
    return checks


def check_tables(
    spark: SparkSession,
    cfg: SummaryConfig,
    report: RunReport,
    sample: int = EXAMPLES,
    start_month: str | None = None,
    end_month: str | None = None,
) -> None:
    """Run every check; fill ``report.details``; raise RuleViolations when any rule is broken.

    With ``start_month`` (and ``end_month``, else through the newest month) only the rows of those months are
    judged: the quality gate after a run checks what the run touched, reading the months before them only as
    far back as a history array reaches.
    """
    for table in (cfg.summary_table, cfg.latest_table):
        if not table_exists(spark, table):
            raise RuleViolations(f"table {table} does not exist: nothing to check (run initial or forward first)")
    key, month = cfg.key_column, cfg.month_column
    summary = spark.table(cfg.summary_table)
    latest = spark.table(cfg.latest_table)
    in_scope = _in_months(month, start_month, end_month)
    results: dict[str, dict[str, Any]] = {}

    def record(name: str, meaning: str, offending: DataFrame, describe_key: Callable[[Row], str]) -> None:
        count = offending.count()
        examples = [describe_key(r) for r in offending.limit(sample).collect()] if count else []
        results[name] = {"violations": count, "rule": meaning, "examples": examples}

    pair = lambda r: f"{r[key]} {r[month]}"  # noqa: E731
    record(
        "summary.unique",
        f"more than one summary row for one {key} and {month}",
        summary.where(in_scope).groupBy(key, month).count().where("count > 1"),
        pair,
    )
    record(
        "latest_summary.unique",
        f"more than one latest_summary row for one {key}",
        latest.groupBy(key).count().where("count > 1"),
        lambda r: str(r[key]),
    )

    carried = [c for c in cfg.carry_columns if c not in cfg.date_col_list]
    window_start = add_months(start_month, -cfg.max_history_length) if start_month else None
    judged = summary.where(_in_months(month, window_start, end_month))
    older = None
    if window_start:  # each account's newest month before the window: key and month columns only
        older = summary.where(F.col(month) < F.lit(window_start)).groupBy(key).agg(F.max(month).alias(OLDER_MONTH))
    rows = with_previous_row(judged, cfg, [*cfg.history_columns, *carried], older).where(in_scope).cache()
    try:
        checks = rule_checks(cfg)
        flags = rows.select(key, month, *[c.alias(f"__c{i}") for i, (_, _, c) in enumerate(checks)])
        counts = cast(
            Row, flags.agg(*[F.count(F.when(F.col(f"__c{i}"), 1)).alias(f"__c{i}") for i in range(len(checks))]).first()
        )
        for i, (name, meaning, _) in enumerate(checks):
            offending = flags.where(F.col(f"__c{i}")) if counts[f"__c{i}"] else flags.limit(0)
            record(name, meaning, offending, pair)
    finally:
        rows.unpersist()

    expected_latest = _newest_rows(summary, cfg, start_month, end_month)
    actual_latest = latest.where(in_scope).select(*cfg.summary_columns)
    record(
        "latest_summary.missing_or_stale",
        "an account's newest summary row is not its latest_summary row",
        expected_latest.exceptAll(actual_latest),
        pair,
    )
    record(
        "latest_summary.unexpected",
        "a latest_summary row that is not its account's newest summary row",
        actual_latest.exceptAll(expected_latest),
        pair,
    )

    if table_exists(spark, cfg.source_table):
        differing, reason = with_pending(spark, cfg, source_differences(spark, cfg, start_month, end_month))
        differing = differing.cache()
        try:
            record(
                "summary.follows_source",
                "an account-month where summary is not the source's winner (or the source holds no valid record) "
                "and no backfill is due to apply it",
                differing.where(~F.col(PENDING)),
                lambda r: f"{r[key]} {r[month]} ({r['difference']})",
            )
            waiting = differing.where(F.col(PENDING))
            count = waiting.count()
            report.details["source_pending"] = {
                "account_months": count,
                "reason": reason,
                "examples": [f"{r[key]} {r[month]} ({r['difference']})" for r in waiting.limit(sample).collect()]
                if count
                else [],
            }
        finally:
            differing.unpersist()

    violations = sum(r["violations"] for r in results.values())
    report.details["checks"] = results
    report.details["violations"] = violations
    report.details["scope"] = {"start_month": start_month, "end_month": end_month}
    report.details["months"] = month_counts(spark, cfg, start_month, end_month)
    if violations:
        raise RuleViolations(violations_message(results))


def source_differences(spark: SparkSession, cfg: SummaryConfig, start: str | None, end: str | None) -> DataFrame:
    """(key, month, difference) of each account-month in the months checked where summary and the source's
    winner as it stands now disagree."""
    key, month, version = cfg.key_column, cfg.month_column, cfg.version_column
    source = spark.table(cfg.source_table).where(_in_months(cfg.source_column(month), start, end))
    won = winners(valid_records(map_records(source, cfg), cfg), cfg).select(
        key, month, F.col(version).alias("__source_version"), F.col(RECORD_DIGEST).alias("__source_digest")
    )
    stored = spark.table(cfg.summary_table).where(_in_months(month, start, end)).select(key, month, version, RECORD_DIGEST)
    joined = won.join(stored, [key, month], "full_outer")
    difference = (
        F.when(F.col(version).isNull() & F.col(RECORD_DIGEST).isNull(), F.lit("missing from summary"))
        .when(F.col("__source_digest").isNull(), F.lit("no valid source record"))
        .when(
            ~F.col("__source_version").eqNullSafe(F.col(version)) | ~F.col("__source_digest").eqNullSafe(F.col(RECORD_DIGEST)),
            F.lit("not the source's winner"),
        )
    )
    return joined.select(key, month, difference.alias("difference")).where(F.col("difference").isNotNull())


def with_pending(spark: SparkSession, cfg: SummaryConfig, differing: DataFrame) -> tuple[DataFrame, str]:
    """``differing`` with a ``PENDING`` flag on each difference a backfill is due to apply (what the source
    snapshots after the backfill mark wrote), and why."""
    key, month = cfg.key_column, cfg.month_column
    mark = table_properties(spark, cfg.control_table).get(BACKFILL_MARK) if table_exists(spark, cfg.control_table) else None
    head, _ = current_snapshot(spark, cfg.source_table)
    if mark is None:
        return differing.withColumn(PENDING, F.lit(True)), "no backfill has run yet: the first reads the whole source"
    if head is None or str(head) == mark:
        return differing.withColumn(PENDING, F.lit(False)), "the last backfill read the source's current snapshot"
    changes = changes_between(spark, cfg.source_table, int(mark), head, cfg.source_column(month))
    if changes.path == FULL_TABLE:
        return differing.withColumn(PENDING, F.lit(True)), f"the next backfill judges the whole source: {changes.reason}"
    incremental = spark.read.format("iceberg").option("start-snapshot-id", mark).option("end-snapshot-id", head)
    appended = map_records(incremental.load(cfg.source_table), cfg).select(key, month).distinct()
    flagged = differing.join(appended.withColumn("__appended", F.lit(True)), [key, month], "left")
    touched = F.col(month).isin(*changes.touched_months) if changes.touched_months else F.lit(False)
    pending = F.coalesce(F.col("__appended"), F.lit(False)) | touched
    reason = f"source snapshots after the backfill mark {mark} are not applied yet ({changes.path}: {changes.reason})"
    return flagged.withColumn(PENDING, pending).drop("__appended"), reason


def violations_message(results: dict[str, dict[str, Any]], examples: int = 3) -> str:
    """One line naming every broken rule with its count and a few example keys (for the log and the task's error)."""
    broken = [
        f"{name} ({r['violations']}; e.g. {', '.join(r['examples'][:examples])})"
        for name, r in results.items()
        if r["violations"]
    ]
    total = sum(r["violations"] for r in results.values())
    return f"{total} violation(s) of the table rules: {'; '.join(broken)}; see details.checks in the report"


def _in_months(month: str, start: str | None, end: str | None) -> Column:
    condition = F.lit(True)
    if start:
        condition &= F.col(month) >= F.lit(start)
    if end:
        condition &= F.col(month) <= F.lit(end)
    return condition


def _newest_rows(summary: DataFrame, cfg: SummaryConfig, start: str | None, end: str | None) -> DataFrame:
    """Each account's newest summary row, for the accounts whose newest row lies in the months checked.

    An account's newest month is found on the narrow key and month columns; whole rows are read only there.
    """
    if start is None and end is None:
        return newest_per_account(summary, cfg)
    key, month = cfg.key_column, cfg.month_column
    newest = summary.where(_in_months(month, start, None)).groupBy(key).agg(F.max(month).alias(month))
    newest = newest.where(_in_months(month, start, end))
    return summary.where(_in_months(month, start, end)).join(newest, [key, month]).select(*cfg.summary_columns)


def month_counts(
    spark: SparkSession, cfg: SummaryConfig, start: str | None = None, end: str | None = None
) -> dict[str, dict[str, int]]:
    """Rows per month in summary next to valid account-months in the source (a month still to be run shows up here)."""
    month = cfg.month_column
    summary = spark.table(cfg.summary_table).where(_in_months(month, start, end))
    in_summary = {r[0]: r[1] for r in summary.groupBy(month).count().collect()}
    in_source = {}
    if table_exists(spark, cfg.source_table):
        source = spark.table(cfg.source_table).where(_in_months(cfg.source_column(month), start, end))
        valid = valid_records(map_records(source, cfg), cfg)
        in_source = {r[0]: r[1] for r in valid.select(cfg.key_column, month).distinct().groupBy(month).count().collect()}
    return {
        m: {"summary_rows": in_summary.get(m, 0), "source_account_months": in_source.get(m, 0)}
        for m in sorted(set(in_summary) | set(in_source))
    }
