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
    return F.concat_ws(
        grid_column.separator,
        F.transform(F.col(history_column), lambda x: F.coalesce(x.cast("string"), F.lit(grid_column.placeholder))),
    )


def history_array(rolling: RollingColumn, month: Column, recent: Column, anchor_month: Column, anchor_history: Column) -> Column:
    """The ``num_cols`` values of ``rolling`` ending at ``month`` (element 0 = this month).

    ``recent`` is a map month number -> struct of mapper values for the rows of
    this account's timeline at or after the earliest changed month; months at or
    before ``anchor_month`` come from the anchor row's stored history array
    (element ``anchor_month - m``). A month with neither is a gap: NULL.
    """

    def value_at(offset: Column) -> Column:
        target = month - offset
        from_recent = F.element_at(recent, target).getField(rolling.mapper_column)
        from_anchor = F.try_element_at(anchor_history, (anchor_month - target + 1).cast("int"))
        return F.when(anchor_month.isNull() | (target > anchor_month), from_recent).otherwise(from_anchor)

    return F.transform(F.sequence(F.lit(0), F.lit(rolling.num_cols - 1)), value_at).cast(f"array<{rolling.sql_type}>")
