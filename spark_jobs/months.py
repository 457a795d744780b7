"""Month arithmetic, in one place (no Spark: the Airflow side uses it too).

A month is a ``YYYY-MM`` string; its month number is ``year * 12 + month``
(``2024-03`` -> 24291), so "N months earlier" is plain subtraction.
"""

import re

# The whole text must match: ``$`` alone would also accept a trailing line break, in Python
# and in Java regexes alike ("2024-02\n" is not a month). Spark's side is month_columns.py.
MONTH_REGEX = "[0-9]{4}-(0[1-9]|1[0-2])"
MONTH_LENGTH = 7
_MONTH_RE = re.compile(MONTH_REGEX)


def is_valid_month(text: object) -> bool:
    return isinstance(text, str) and _MONTH_RE.fullmatch(text) is not None


def month_number(month: str) -> int:
    """``'2024-03'`` -> 24291. Raises ValueError naming the bad value."""
    if not is_valid_month(month):
        raise ValueError(f"not a YYYY-MM month: {month!r}")
    return int(month[:4]) * 12 + int(month[5:7])


def month_from_number(number: int) -> str:
    """24291 -> ``'2024-03'``."""
    year, month_index = divmod(number - 1, 12)
    return f"{year:04d}-{month_index + 1:02d}"


def add_months(month: str, count: int) -> str:
    return month_from_number(month_number(month) + count)


def month_range(start: str, end: str) -> list[str]:
    """Every month from ``start`` to ``end`` inclusive, in order."""
    first, last = month_number(start), month_number(end)
    if last < first:
        raise ValueError(f"end month {end} is before start month {start}")
    return [month_from_number(n) for n in range(first, last + 1)]
