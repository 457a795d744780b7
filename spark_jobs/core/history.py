"""Column expressions for history arrays, grids and cleaning (docs/table-contract.md §4).

All functions return ``Column``s built from Spark SQL functions: no UDFs.
"""

from pyspark.sql import Column
from pyspark.sql import functions as F

from spark_jobs.config import GridColumn, RollingColumn


def clean_date(col: str | Column) -> Column:
    """A date whose year is < 1000 (legacy ``0001-01-01``) becomes NULL; the column keeps its type."""
    col = F.col(col) if isinstance(col, str) else col
    return F.when(F.year(col) < 1000, F.lit(None)).otherwise(col)


def grid(grid_column: GridColumn, history_column: str) -> Column:
    """``concat_ws(separator, [coalesce(cast(x as string), placeholder) for x in history])``."""
    return grid_of(grid_column, F.col(history_column))


def grid_of(grid_column: GridColumn, history: Column) -> Column:
    """``grid`` of a history array expression: one ``array_join`` (no per-element lambda)."""
    as_strings = history.cast("array<string>")
    return F.coalesce(F.array_join(as_strings, grid_column.separator, grid_column.placeholder), F.lit(""))


def month_segment(rolling: RollingColumn, value: Column, gap: Column) -> Column:
    """What a row adds to the history arrays of its own and later rows: its value, then NULL for each
    month between it and the account's previous row ``gap`` months before (NULL gap: no previous row).

    The segments of a row and of the rows before it, newest first, are its history array (``history``).
    """
    this_month = F.array(value.cast(rolling.sql_type))
    nulls = F.array_repeat(F.lit(None).cast(rolling.sql_type), F.least(gap - 1, F.lit(rolling.num_cols)).cast("int"))
    return F.when(gap.isNull(), this_month).otherwise(F.concat(this_month, nulls))


def history(rolling: RollingColumn, segments: Column) -> Column:
    """The ``num_cols`` values of ``rolling`` ending at a row (element 0 = its month), from the ``month_segment``
    of that row and the rows before it, oldest first (``num_cols`` rows are always enough: each adds one month
    or more). Months before the account's first row are NULL."""
    newest_first = F.flatten(F.reverse(segments))
    padded = F.concat(newest_first, F.array_repeat(F.lit(None).cast(rolling.sql_type), rolling.num_cols))
    return F.slice(padded, 1, rolling.num_cols)
