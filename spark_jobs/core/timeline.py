"""Recompute an account's summary rows from its timeline (docs/table-contract.md §4), from scalar columns only.

A timeline holds, per account, ordered by month:

* **earlier** rows (role 0): stored rows before the account's first changed
  month, as far back as a history array reaches, plus the newest stored row
  before it however old (the previous row: it seeds the carry-forward);
* **stored** rows (role 1) at or after the first changed month that the batch
  does not replace (Case III only);
* **new** rows (role 2): the batch's winners that beat what is stored, and
  ``REMOVED`` markers of stored rows the source no longer holds: a marker
  takes no part in any later row (no value, no carried value, not a previous
  month) but changes every row its month is within an array's reach of.

A history array never needs to be read: element ``i`` of the row of month M is
the rolling value of the account's row of month M - i, which ``summary``
stores as a scalar column of that row. So timelines are built from scalar
columns (Iceberg reads those vectorized, while whole rows with their arrays
decode row by row), and one pass of window functions yields every row's
arrays, carried-forward values and previous-month pointer, for Case I, II and
III alike. The arrays a stored row holds now are rebuilt the same way from the
values before the batch, so only rows whose values change come out.
"""

from collections.abc import Iterable
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.config import SummaryConfig
from spark_jobs.core.history import (
    carried,
    carried_names,
    first_history,
    grids,
    history,
    month_segment,
    shifted_history,
    stored_value,
)
from spark_jobs.names import CARRIED_COLUMNS, INSERT, MONTH_NUMBER, PREVIOUS_MONTH, RECORD_DIGEST, REMOVED

ROLE = "__role"
EARLIER, STORED, NEW = 0, 1, 2
CARRIED = "__carried"
OLD = "__old"  # a stored row's scalar values as stored
REPLACED = "__replaced"  # a new row that replaces a stored row: that row's rolling values (else NULL)


def _empty_names() -> Column:
    return F.array().cast("array<string>")


def rolling_values(cfg: SummaryConfig) -> Column:
    """The struct of a row's rolling mapper values: what its month contributes to every history array."""
    if not cfg.rolling_columns:
        return F.lit(0)
    return F.struct(*[F.col(r.mapper_column).alias(r.mapper_column) for r in cfg.rolling_columns])


def scalar_columns(cfg: SummaryConfig) -> list[str]:
    """The summary columns a timeline reads: every column but the history arrays and grids."""
    return [*cfg.mapped_columns, RECORD_DIGEST, PREVIOUS_MONTH, CARRIED_COLUMNS]


def new_rows(changes: DataFrame, cfg: SummaryConfig) -> DataFrame:
    """Winners -> timeline rows: cleaned values, which carry columns the winner left NULL.

    ``changes`` may have ``REPLACED`` (the replaced stored row's rolling values, from ``replaced_values``).
    """
    month = F.col(cfg.month_column)
    values = [stored_value(cfg, column, F.col(column), month).alias(column) for column in cfg.mapped_columns]
    return changes.select(
        *values,
        F.col(RECORD_DIGEST),
        F.col(MONTH_NUMBER),
        carried_names(cfg, F.col).alias(CARRIED),
        F.lit(NEW).alias(ROLE),
        F.lit(None).alias(OLD),
        (F.col(REPLACED) if REPLACED in changes.columns else F.lit(None).cast(_rolling_type(cfg))).alias(REPLACED),
        (F.col(INSERT) if INSERT in changes.columns else F.lit(False)).alias(INSERT),
        (F.coalesce(F.col(REMOVED), F.lit(False)) if REMOVED in changes.columns else F.lit(False)).alias(REMOVED),
    )


def _rolling_type(cfg: SummaryConfig) -> str:
    if not cfg.rolling_columns:
        return "int"
    return "struct<" + ",".join(f"`{r.mapper_column}`:{r.sql_type}" for r in cfg.rolling_columns) + ">"


def stored_rows(stored: DataFrame, cfg: SummaryConfig, role: int) -> DataFrame:
    """Stored summary rows (scalar columns and a month number) -> timeline rows of ``role`` (EARLIER or STORED).

    A stored row keeps its values as stored (``OLD``) to tell whether it changes; an earlier row seeds every
    carried value with its own (its stored values are already carried forward).
    """
    old = F.struct(*[F.col(c) for c in scalar_columns(cfg)]) if role == STORED else F.lit(None)
    carried = F.coalesce(F.col(CARRIED_COLUMNS), _empty_names()) if role == STORED else _empty_names()
    return stored.select(
        *[F.col(c) for c in cfg.mapped_columns],
        F.col(RECORD_DIGEST),
        F.col(MONTH_NUMBER),
        carried.alias(CARRIED),
        F.lit(role).alias(ROLE),
        old.alias(OLD),
        F.lit(None).cast(_rolling_type(cfg)).alias(REPLACED),
        F.lit(False).alias(INSERT),
        F.lit(False).alias(REMOVED),
    )


def replaced_values(changes: DataFrame, stored: DataFrame, cfg: SummaryConfig) -> DataFrame:
    """``changes`` with ``REPLACED``: the rolling values of the stored row each change replaces (NULL: none).

    ``stored``: stored rows (key, month and the rolling mapper columns) that may be replaced.
    """
    key, month = cfg.key_column, cfg.month_column
    old = stored.select(key, month, rolling_values(cfg).alias(REPLACED))
    return changes.join(old, [key, month], "left")


def build_timeline(parts: Iterable[DataFrame]) -> DataFrame:
    """Union of new, stored and earlier timeline rows (all built by the functions above)."""
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), parts)


def recompute(timeline: DataFrame, cfg: SummaryConfig) -> DataFrame:
    """Every new row and every stored row whose values change, as summary rows (+ month number, role).

    Two passes of window functions per account, in month order, with no per-element lookups: the first
    carries values forward, links each row to the previous one and flags the months whose rolling values
    the batch changes; the second gathers each row's history arrays from the segments of the rows before
    it (``history.month_segment``). A stored row changes when a changed month is within reach of one of its
    arrays, or when one of its scalar values (carried ones included) or its previous-month pointer changes.
    """
    key = cfg.key_column
    has_stored = isinstance(timeline.schema[OLD].dataType, T.StructType)  # else nothing stored to compare with
    in_order = Window.partitionBy(key).orderBy(MONTH_NUMBER)
    so_far = in_order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    before = in_order.rowsBetween(Window.unboundedPreceding, -1)
    is_new = F.col(ROLE) == NEW
    present = ~F.col(REMOVED)  # a REMOVED marker is no row: later rows skip it

    carried_values = {
        c: F.last(F.when(present & ~F.array_contains(F.col(CARRIED), c), F.struct(F.col(c).alias("v"))), ignorenulls=True)
        .over(so_far)
        .getField("v")
        for c in cfg.carry_columns
    }
    previous_month = F.last(F.when(present, F.col(cfg.month_column)), ignorenulls=True).over(before)
    previous_number = F.last(F.when(present, F.col(MONTH_NUMBER)), ignorenulls=True).over(before)
    first_pass = [
        *[carried_values.get(c, F.col(c)).alias(c) for c in cfg.mapped_columns],
        F.col(RECORD_DIGEST),
        previous_month.alias(PREVIOUS_MONTH),
        F.col(CARRIED).alias(CARRIED_COLUMNS),
        F.col(MONTH_NUMBER),
        (F.col(MONTH_NUMBER) - previous_number).alias("__gap"),
        F.col(ROLE),
        F.col(OLD),
        F.col(INSERT),
        F.col(REMOVED),
    ]
    if has_stored:  # a month whose rolling values the batch changes reaches every array within its length
        for r in cfg.rolling_columns:
            replaced = F.col(REPLACED).getField(r.mapper_column)
            changed = is_new & (F.col(REMOVED) | ~F.col(r.mapper_column).cast(r.sql_type).eqNullSafe(replaced))
            reach = in_order.rangeBetween(-(r.num_cols - 1), 0)
            first_pass.append((F.max(changed.cast("int")).over(reach) > 0).alias(f"__reached_{r.name}"))
    rows = timeline.select(*first_pass)

    gap = F.col("__gap")
    histories = {
        r.history_column: history(
            r,
            F.collect_list(F.when(present, month_segment(r, F.col(r.mapper_column), gap))).over(
                in_order.rowsBetween(-(r.num_cols - 1), 0)
            ),
        )
        for r in cfg.rolling_columns
    }
    rows = rows.select("*", *[h.alias(name) for name, h in histories.items()]).where(F.col(ROLE) != EARLIER)
    if has_stored:
        stored_values = F.struct(*[F.col(f"{OLD}.{c}").alias(c) for c in scalar_columns(cfg)])
        scalars_changed = ~F.struct(*[F.col(c) for c in scalar_columns(cfg)]).eqNullSafe(stored_values)
        arrays_changed = reduce(lambda a, b: a | b, [F.col(f"__reached_{r.name}") for r in cfg.rolling_columns], F.lit(False))
        rows = rows.where(is_new | scalars_changed | arrays_changed)
    rows = rows.withColumns(grids(cfg))
    return rows.select(*cfg.summary_columns, MONTH_NUMBER, ROLE, INSERT, REMOVED)


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
    values = {c: carried(F.col(c), F.col(f"__anchor.{c}"), F.array_contains(F.col(CARRIED), c)) for c in cfg.carry_columns}
    for r in cfg.rolling_columns:
        value = F.col(r.mapper_column)
        after_anchor = shifted_history(r, value, gap, F.col(f"__anchor.{r.history_column}"))
        values[r.history_column] = F.when(has_anchor, after_anchor).otherwise(first_history(r, value))
    values[PREVIOUS_MONTH] = F.col(f"__anchor.{cfg.month_column}")
    values[CARRIED_COLUMNS] = F.col(CARRIED)
    rows = joined.withColumns(values).withColumns(grids(cfg))
    return rows.select(*cfg.summary_columns, MONTH_NUMBER, ROLE, INSERT, REMOVED)
