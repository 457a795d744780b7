"""core/history.py: date cleaning, grids and history arrays as Column expressions, with values written by hand."""

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_jobs.config import GridColumn, RollingColumn
from spark_jobs.core.history import clean_date, grid, history_array

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


def test_history_comes_from_recent_months_then_from_the_anchor_with_nulls_for_gaps(spark):
    """Month 10, history of 5: months 10 and 9 are recent (9 has no row: NULL); from month 8 back the anchor
    row (month 8) holds the values, its element i being month 8 - i."""
    balance = RollingColumn(name="balance", mapper_expr="balance", mapper_column="balance", num_cols=5, type_name="Integer")
    rows = spark.createDataFrame(
        [(10, {10: (100,), 7: (999,)}, 8, [80, 70, None, 50, 40]), (3, {3: (30,), 1: (10,)}, None, None)],
        "month int, recent map<int, struct<balance:int>>, anchor_month int, anchor array<int>",
    )
    result = rows.select(
        history_array(balance, F.col("month"), F.col("recent"), F.col("anchor_month"), F.col("anchor")).alias("h")
    )
    # row 1: month 7's recent value is older than the anchor, so the anchor's (element 1: 70) counts
    expected = spark.createDataFrame([([100, None, 80, 70, None],), ([30, None, 10, None, None],)], "h array<int>")
    assertDataFrameEqual(result, expected)
