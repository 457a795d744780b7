"""Month arithmetic as Column expressions: the Spark side of ``months.py``."""

from pyspark.sql import Column
from pyspark.sql import functions as F

from spark_jobs.months import MONTH_LENGTH, MONTH_REGEX

# Java's ``$`` also matches before a final line terminator; ``\\z`` is the true end of input.
MONTH_RLIKE = rf"^{MONTH_REGEX}\z"


def _col(column: str | Column) -> Column:
    return F.col(column) if isinstance(column, str) else column


def is_month_col(month_col: str | Column) -> Column:
    """Column expression: true when the value is exactly a ``YYYY-MM`` month (false or NULL otherwise)."""
    col = _col(month_col)
    return (F.length(col) == MONTH_LENGTH) & col.rlike(MONTH_RLIKE)


def month_number_col(month_col: str | Column) -> Column:
    """Column expression: the month number of a ``YYYY-MM`` column (NULL when malformed)."""
    col = _col(month_col)
    valid = is_month_col(col)
    number = F.substring(col, 1, 4).cast("int") * 12 + F.substring(col, 6, 2).cast("int")
    return F.when(valid, number)


def month_string_col(number_col: str | Column) -> Column:
    """Column expression: month number -> ``YYYY-MM``."""
    col = _col(number_col)
    year = F.floor((col - 1) / 12)
    month = (col - 1) - year * 12 + 1
    return F.format_string("%04d-%02d", year.cast("int"), month.cast("int"))


def first_day_col(month_col: str | Column) -> Column:
    """Column expression: the first day of a ``YYYY-MM`` month, as a DATE."""
    col = _col(month_col)
    return F.to_date(F.concat(col, F.lit("-01")), "yyyy-MM-dd")
