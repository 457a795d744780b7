"""Recompute an account's summary rows from its timeline (docs/table-contract.md §4).

A timeline holds, per account, ordered by month:

* the **anchor** (role 0): the stored row just before the first changed month,
  if any. Its history arrays give every value older than the changed months and
  its scalar values seed the carry-forward;
* **stored** rows (role 1) at or after the first changed month that the batch
  does not replace (Case III only);
* **new** rows (role 2): the batch's winners that beat what is stored.

One pass of window functions over the timeline yields every row's arrays,
carried-forward values and previous-month pointer, so Case I, II and III (and
several months of one account in one batch) are the same computation. Only new
rows and stored rows whose values change come out.
"""

from collections.abc import Iterable
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.config import SummaryConfig
from spark_jobs.core.history import clean_date, grid, history_array
from spark_jobs.core.month_columns import first_day_col
from spark_jobs.names import CARRIED_COLUMNS, INSERT, MONTH_NUMBER, PREVIOUS_MONTH, RECORD_DIGEST

ROLE = "__role"
ANCHOR, STORED, NEW = 0, 1, 2
CARRIED = "__carried"
OLD = "__old"


def _empty_names() -> Column:
    return F.array().cast("array<string>")


def new_rows(changes: DataFrame, cfg: SummaryConfig) -> DataFrame:
    """Winners -> timeline rows: cleaned values, which carry columns the winner left NULL."""
    carried = (
        F.filter(F.array(*[F.when(F.col(c).isNull(), F.lit(c)) for c in cfg.carry_columns]), lambda x: x.isNotNull())
        if cfg.carry_columns
        else _empty_names()
    )
    values = []
    for column in cfg.mapped_columns:
        value = F.col(column)
        if column == cfg.primary_date_column:
            value = F.coalesce(value, first_day_col(cfg.month_column))
        if column in cfg.date_col_list:
            value = clean_date(value)
        values.append(value.alias(column))
    return changes.select(
        *values,
        *[F.lit(None).cast(f"array<{r.sql_type}>").alias(r.history_column) for r in cfg.rolling_columns],
        F.col(RECORD_DIGEST),
        F.col(MONTH_NUMBER),
        carried.alias(CARRIED),
        F.lit(NEW).alias(ROLE),
        F.lit(None).alias(OLD),
        (F.col(INSERT) if INSERT in changes.columns else F.lit(False)).alias(INSERT),
    )


def stored_rows(stored: DataFrame, cfg: SummaryConfig, role: int) -> DataFrame:
    """Stored summary rows -> timeline rows; stored rows keep their old values to detect changes."""
    old = F.struct(*[F.col(c) for c in cfg.summary_columns]) if role == STORED else F.lit(None)
    carried = F.col(CARRIED_COLUMNS) if role == STORED else _empty_names()  # an anchor seeds every carried value
    return stored.select(
        *[F.col(c) for c in cfg.mapped_columns],
        *[F.col(r.history_column) for r in cfg.rolling_columns],
        F.col(RECORD_DIGEST),
        F.col(MONTH_NUMBER),
        F.coalesce(carried, _empty_names()).alias(CARRIED),
        F.lit(role).alias(ROLE),
        old.alias(OLD),
        F.lit(False).alias(INSERT),
    )


def build_timeline(parts: Iterable[DataFrame]) -> DataFrame:
    """Union of new, stored and anchor timeline rows (all built by the functions above)."""
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), parts)


def recompute(timeline: DataFrame, cfg: SummaryConfig) -> DataFrame:
    """Every new row and every stored row whose values change, as summary rows (+ month number, role)."""
    key = cfg.key_column
    by_account = Window.partitionBy(key)
    in_order = by_account.orderBy(MONTH_NUMBER)
    so_far = in_order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    within_window = in_order.rangeBetween(-(cfg.max_history_length - 1), 0)
    is_anchor = F.col(ROLE) == ANCHOR

    anchor = F.first(
        F.when(is_anchor, F.struct(F.col(MONTH_NUMBER).alias("month"), *[F.col(h) for h in cfg.history_columns])),
        ignorenulls=True,
    ).over(by_account)
    mapper_values = F.struct(*[F.col(r.mapper_column) for r in cfg.rolling_columns]) if cfg.rolling_columns else F.lit(0)
    recent = F.map_from_entries(
        F.collect_list(F.when(~is_anchor, F.struct(F.col(MONTH_NUMBER), mapper_values))).over(within_window)
    )
    carried_values = {
        c: F.last(F.when(~F.array_contains(F.col(CARRIED), c), F.struct(F.col(c).alias("v"))), ignorenulls=True)
        .over(so_far)
        .getField("v")
        for c in cfg.carry_columns
    }

    windowed = timeline.select(
        *[carried_values.get(c, F.col(c)).alias(c) for c in cfg.mapped_columns],
        F.col(RECORD_DIGEST),
        F.lag(cfg.month_column).over(in_order).alias(PREVIOUS_MONTH),
        F.col(CARRIED).alias(CARRIED_COLUMNS),
        F.col(MONTH_NUMBER),
        F.col(ROLE),
        F.col(OLD),
        F.col(INSERT),
        anchor.alias("__anchor"),
        recent.alias("__recent"),
    ).where(F.col(ROLE) != ANCHOR)

    month = F.col(MONTH_NUMBER)
    anchor_month = F.col("__anchor.month")
    histories = {
        r.history_column: history_array(r, month, F.col("__recent"), anchor_month, F.col(f"__anchor.{r.history_column}"))
        for r in cfg.rolling_columns
    }
    with_histories = windowed.withColumns(histories)
    rows = with_histories.withColumns(
        {g.name: grid(g, cfg.rolling_by_name(g.mapper_rolling_column).history_column) for g in cfg.grid_columns}
    )
    new_values = F.struct(*[F.col(c) for c in cfg.summary_columns])
    changed = (F.col(ROLE) == NEW) | ~new_values.eqNullSafe(F.col(OLD))
    return rows.where(changed).select(*cfg.summary_columns, MONTH_NUMBER, ROLE, INSERT)


def shifted(new: DataFrame, anchors: DataFrame, cfg: SummaryConfig) -> DataFrame:
    """The common case without a window: an account's one new month after its latest row, or its first row.

    ``new``: new timeline rows (one per account); ``anchors``: the latest rows of those that have one. Each
    array is the anchor's shifted by the gap (NULLs for skipped months) with the new value in front; each
    carried column takes the anchor's value where the winner has NULL. Same result as ``recompute``.
    """
    key = cfg.key_column
    anchor_fields = [cfg.month_column, MONTH_NUMBER, *cfg.history_columns, *cfg.carry_columns]
    anchor = anchors.select(key, F.struct(*[F.col(c) for c in anchor_fields]).alias("__anchor"))
    joined = new.join(anchor, key, "left")
    has_anchor = F.col("__anchor").isNotNull()
    gap = F.col(MONTH_NUMBER) - F.col(f"__anchor.{MONTH_NUMBER}")
    values = {}
    for c in cfg.carry_columns:
        values[c] = F.when(F.array_contains(F.col(CARRIED), c), F.col(f"__anchor.{c}")).otherwise(F.col(c))
    for r in cfg.rolling_columns:
        value = F.array(F.col(r.mapper_column).cast(r.sql_type))
        nulls = F.array_repeat(F.lit(None).cast(r.sql_type), (gap - 1).cast("int"))
        after_anchor = F.slice(F.concat(value, nulls, F.col(f"__anchor.{r.history_column}")), 1, r.num_cols)
        first_row = F.concat(value, F.array_repeat(F.lit(None).cast(r.sql_type), r.num_cols - 1))
        values[r.history_column] = F.when(has_anchor, after_anchor).otherwise(first_row)
    values[PREVIOUS_MONTH] = F.col(f"__anchor.{cfg.month_column}")
    values[CARRIED_COLUMNS] = F.col(CARRIED)
    rows = joined.withColumns(values)
    rows = rows.withColumns(
        {g.name: grid(g, cfg.rolling_by_name(g.mapper_rolling_column).history_column) for g in cfg.grid_columns}
    )
    return rows.select(*cfg.summary_columns, MONTH_NUMBER, ROLE, INSERT)
