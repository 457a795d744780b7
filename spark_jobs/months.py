"""Month arithmetic, in one place.

A month is a ``YYYY-MM`` string; its month number is ``year * 12 + month``
(``2024-03`` -> 24291), so "N months earlier" is plain subtraction.
"""

import re

from pyspark.sql import Column
from pyspark.sql import functions as F

MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
_MONTH_RE = re.compile(MONTH_PATTERN)


def is_valid_month(text):
    return isinstance(text, str) and bool(_MONTH_RE.match(text))


def month_number(month):
    """``'2024-03'`` -> 24291. Raises ValueError naming the bad value."""
    if not is_valid_month(month):
        raise ValueError(f"not a YYYY-MM month: {month!r}")
    return int(month[:4]) * 12 + int(month[5:7])


def month_from_number(number):
    """24291 -> ``'2024-03'``."""
    year, month_index = divmod(number - 1, 12)
    return f"{year:04d}-{month_index + 1:02d}"


def add_months(month, count):
    return month_from_number(month_number(month) + count)


def month_range(start, end):
    """Every month from ``start`` to ``end`` inclusive, in order."""
    first, last = month_number(start), month_number(end)
    if last < first:
        raise ValueError(f"end month {end} is before start month {start}")
    return [month_from_number(n) for n in range(first, last + 1)]


def month_number_col(month_col) -> Column:
    """Column expression: the month number of a ``YYYY-MM`` column (NULL when malformed)."""
    col = F.col(month_col) if isinstance(month_col, str) else month_col
    valid = col.rlike(MONTH_PATTERN)
    number = F.substring(col, 1, 4).cast("int") * 12 + F.substring(col, 6, 2).cast("int")
    return F.when(valid, number)


def month_string_col(number_col) -> Column:
    """Column expression: month number -> ``YYYY-MM``."""
    col = F.col(number_col) if isinstance(number_col, str) else number_col
    year = F.floor((col - 1) / 12)
    month = (col - 1) - year * 12 + 1
    return F.format_string("%04d-%02d", year.cast("int"), month.cast("int"))


def first_day_col(month_col) -> Column:
    """Column expression: the first day of a ``YYYY-MM`` month, as a DATE."""
    col = F.col(month_col) if isinstance(month_col, str) else month_col
    return F.to_date(F.concat(col, F.lit("-01")), "yyyy-MM-dd")
