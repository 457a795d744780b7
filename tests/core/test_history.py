"""core/history.py: date cleaning, grids and history arrays as Column expressions, with values written by hand."""

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_jobs.config import GridColumn, RollingColumn
from spark_jobs.core.history import clean_date, grid, history, month_segment

pytestmark = pytest.mark.spark


def test_a_date_before_the_year_1000_is_cleaned_to_null_and_others_kept(spark):
    dates = spark.createDataFrame([(dt.date(1, 1, 1),), (dt.date(999, 12, 31),), (dt.date(1000, 1, 1),), (None,)], "d date")
    cleaned = dates.select(clean_date("d").alias("d"))
    assertDataFrameEqual(cleaned, spark.createDataFrame([(None,), (None,), (dt.date(1000, 1, 1),), (None,)], "d date"))


def test_a_grid_shows_every_element_with_the_placeholder_for_nulls(spark):
    arrays = spark.createDataFrame([([3, None, 1],), ([None, None],), ([],)], "h array<int>")
    dashes = GridColumn(name="g", mapper_rolling_column="r", placeholder="?", separator="-")
    glued = GridColumn(name="g", mapper_rolling_column="r", placeholder="_", separator="")
    rows = arrays.select(grid(dashes, "h").alias("dashes"), grid(glued, "h").alias("glued"))
    expected = spark.createDataFrame([("3-?-1", "3_1"), ("?-?", "__"), ("", "")], "dashes string, glued string")
    assertDataFrameEqual(rows, expected)


def test_history_gathers_the_segments_of_a_row_and_the_rows_before_it(spark):
    """Rows of months 4, 6, 8, 10 (a history of 5): row 10's array is months 10, 9 (none: NULL), 8, 7 (NULL), 6;
    month 6's own value is NULL and stays NULL; the first row has no previous row (NULL gap)."""
    balance = RollingColumn(name="balance", mapper_expr="balance", mapper_column="balance", num_cols=5, type_name="Integer")
    rows = spark.createDataFrame([(4, 40, None), (6, None, 2), (8, 80, 2), (10, 100, 2)], "month int, value int, gap int")
    segments = rows.select("month", month_segment(balance, F.col("value"), F.col("gap")).alias("s"))
    assert [tuple(r) for r in segments.orderBy("month").collect()] == [
        (4, [40]),
        (6, [None, None]),
        (8, [80, None]),
        (10, [100, None]),
    ]
    oldest_first = [[40], [None, None], [80, None], [100, None]]
    arrays = spark.createDataFrame([(oldest_first,), (oldest_first[:1],)], "segments array<array<int>>")
    result = arrays.select(history(balance, F.col("segments")).alias("h"))
    expected = spark.createDataFrame([([100, None, 80, None, None],), ([40, None, None, None, None],)], "h array<int>")
    assertDataFrameEqual(result, expected)


def test_a_long_gap_adds_no_more_nulls_than_an_array_holds(spark):
    balance = RollingColumn(name="balance", mapper_expr="balance", mapper_column="balance", num_cols=3, type_name="Integer")
    row = spark.createDataFrame([(7, 1000)], "value int, gap int").select(month_segment(balance, F.col("value"), F.col("gap")))
    assert row.first()[0] == [7, None, None, None]
