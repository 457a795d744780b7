"""The row rules of docs/table-contract.md §4, once: stored values, carry-forward, history arrays, grids.

Both ways of computing summary rows are built from these functions: the
general recompute over an account's timeline (``timeline``, window functions
over scalar columns) and the scheduled month's single join with
``latest_summary`` (``next_month``). A change to a rule is made here.

All functions return ``Column``s built from Spark SQL functions: no UDFs.
"""

from collections.abc import Callable

from pyspark.sql import Column
from pyspark.sql import functions as F

from spark_jobs.config import GridColumn, RollingColumn, SummaryConfig
from spark_jobs.core.month_columns import first_day_col

# --- a row's own values -----------------------------------------------------------------------------


def clean_date(col: str | Column) -> Column:
    """A date whose year is < 1000 (legacy ``0001-01-01``) becomes NULL; the column keeps its type."""
    col = F.col(col) if isinstance(col, str) else col
    return F.when(F.year(col) < 1000, F.lit(None)).otherwise(col)


def stored_value(cfg: SummaryConfig, column: str, value: Column, month: Column) -> Column:
    """A winner's own value of a mapped column as summary stores it: the primary date defaults to the first
    day of the row's ``month`` (a ``YYYY-MM`` column), and dates before the year 1000 are cleaned to NULL."""
    if column == cfg.primary_date_column:
        value = F.coalesce(value, first_day_col(month))
    if column in cfg.date_col_list:
        value = clean_date(value)
    return value


# --- carry-forward ----------------------------------------------------------------------------------


def carried_names(cfg: SummaryConfig, value: Callable[[str], Column]) -> Column:
    """The carry columns whose winner value (``value(column)``) is NULL, as ``array<string>``: those take the
    previous row's value, and the row records which they are (``_carried_columns``)."""
    if not cfg.carry_columns:
        return F.array().cast("array<string>")
    names = F.array(*[F.when(value(c).isNull(), F.lit(c)) for c in cfg.carry_columns])
    return F.array_compact(names)  # (not a lambda: compiled with the rest of the row)


def carried(own: Column, previous: Column, is_carried: Column) -> Column:
    """A carry column's value: the previous row's where the winner's own is carried (NULL), else its own."""
    return F.when(is_carried, previous).otherwise(own)


# --- history arrays ---------------------------------------------------------------------------------


def nulls(rolling: RollingColumn, count: Column | int) -> Column:
    """``count`` NULL elements of ``rolling``'s type (months without a row), never more than an array holds."""
    count = F.lit(count) if isinstance(count, int) else count
    return F.array_repeat(F.lit(None).cast(rolling.sql_type), F.least(count, F.lit(rolling.num_cols)).cast("int"))


def first_history(rolling: RollingColumn, value: Column) -> Column:
    """The history array of an account's first row: its value, then NULL for the months before it."""
    return F.concat(F.array(value.cast(rolling.sql_type)), nulls(rolling, rolling.num_cols - 1))


def shifted_history(rolling: RollingColumn, value: Column, gap: Column, previous: Column) -> Column:
    """The history array of a row ``gap`` months after the account's previous row, whose array is ``previous``:
    its value, NULL for each month in between, then the previous array, cut to ``num_cols`` elements."""
    this_month = F.array(value.cast(rolling.sql_type))
    return F.slice(F.concat(this_month, nulls(rolling, gap - 1), previous), 1, rolling.num_cols)


def month_segment(rolling: RollingColumn, value: Column, gap: Column) -> Column:
    """What a row adds to the history arrays of its own and later rows: its value, then NULL for each
    month between it and the account's previous row ``gap`` months before (NULL gap: no previous row).

    The segments of a row and of the rows before it, newest first, are its history array (``history``):
    ``shifted_history`` applied row after row, without reading the previous row's array.
    """
    this_month = F.array(value.cast(rolling.sql_type))
    return F.when(gap.isNull(), this_month).otherwise(F.concat(this_month, nulls(rolling, gap - 1)))


def history(rolling: RollingColumn, segments: Column) -> Column:
    """The ``num_cols`` values of ``rolling`` ending at a row (element 0 = its month), from the ``month_segment``
    of that row and the rows before it, oldest first (``num_cols`` rows are always enough: each adds one month
    or more). Months before the account's first row are NULL."""
    newest_first = F.flatten(F.reverse(segments))
    padded = F.concat(newest_first, nulls(rolling, rolling.num_cols))
    return F.slice(padded, 1, rolling.num_cols)


# --- grids ------------------------------------------------------------------------------------------


def grid(grid_column: GridColumn, history_column: str) -> Column:
    """``concat_ws(separator, [coalesce(cast(x as string), placeholder) for x in history])``."""
    return grid_of(grid_column, F.col(history_column))


def grid_of(grid_column: GridColumn, history: Column) -> Column:
    """``grid`` of a history array expression: one ``array_join`` (no per-element lambda)."""
    as_strings = history.cast("array<string>")
    return F.coalesce(F.array_join(as_strings, grid_column.separator, grid_column.placeholder), F.lit(""))


def grids(cfg: SummaryConfig, history_of: Callable[[str], Column] = F.col) -> dict[str, Column]:
    """Every grid column of ``cfg``, from its rolling column's history array (``history_of(history_column)``)."""
    return {g.name: grid_of(g, history_of(cfg.rolling_by_name(g.mapper_rolling_column).history_column)) for g in cfg.grid_columns}
