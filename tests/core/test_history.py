"""core/history.py: the row rules (stored values, carry-forward, history arrays, grids), with values written by hand."""

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_jobs.config import GridColumn, RollingColumn
from spark_jobs.core.history import (
    carried,
    carried_names,
    clean_date,
    first_history,
    grid,
    history,
    month_segment,
    shifted_history,
    stored_value,
)
from tests.support import load

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


def test_a_first_row_starts_its_array_and_a_later_row_shifts_the_previous_one_by_its_gap(spark):
    """Previous array [5, 4, 3, 2] (a history of 4): one month later -> [9, 5, 4, 3]; three months later ->
    [9, NULL, NULL, 5]; six months later (more than the array holds) -> [9, NULL, NULL, NULL]."""
    balance = RollingColumn(name="balance", mapper_expr="balance", mapper_column="balance", num_cols=4, type_name="Integer")
    rows = spark.createDataFrame([(1,), (3,), (6,)], "gap int").withColumn("previous", F.array(*[F.lit(v) for v in (5, 4, 3, 2)]))
    shifted = rows.select("gap", shifted_history(balance, F.lit(9), F.col("gap"), F.col("previous")).alias("h"))
    assert {r.gap: r.h for r in shifted.collect()} == {1: [9, 5, 4, 3], 3: [9, None, None, 5], 6: [9, None, None, None]}
    first = spark.range(1).select(first_history(balance, F.lit(9)).alias("h"))
    assert first.first().h == [9, None, None, None]


def test_shifting_row_after_row_gives_the_array_the_segments_give(spark):
    """The two ways of building arrays (the scheduled month's shift, the recompute's segments) agree."""
    balance = RollingColumn(name="balance", mapper_expr="balance", mapper_column="balance", num_cols=5, type_name="Integer")
    months_and_values = [(4, 40), (6, None), (8, 80), (10, 100), (17, 170)]
    previous, previous_month, segments = None, None, []
    for month, value in months_and_values:
        gap = None if previous_month is None else month - previous_month
        frame = spark.createDataFrame([(value, gap, previous)], "v int, gap int, previous array<int>")
        if previous is None:
            array = frame.select(first_history(balance, F.col("v"))).first()[0]
        else:
            array = frame.select(shifted_history(balance, F.col("v"), F.col("gap"), F.col("previous"))).first()[0]
        segments.append(frame.select(month_segment(balance, F.col("v"), F.col("gap"))).first()[0])
        gathered = spark.createDataFrame([(segments,)], "s array<array<int>>").select(history(balance, F.col("s"))).first()[0]
        assert array == gathered, f"month {month}"
        previous, previous_month = array, month
    assert previous == [170, None, None, None, None], "seven months after the previous row: nothing of it is in reach"


def test_a_stored_value_defaults_the_primary_date_and_cleans_dates(spark, namespace):
    _, cfg = load(namespace)
    date_column = cfg.primary_date_column
    assert date_column in cfg.date_col_list, "the fixture config's primary date is a date column"
    dates = [(None, "2024-03"), (dt.date(1, 1, 1), "2024-03"), (dt.date(2024, 3, 9), "2024-03")]
    rows = spark.createDataFrame(dates, "d date, m string")
    values = rows.select(stored_value(cfg, date_column, F.col("d"), F.col("m")).alias("v"))
    # NULL takes the month's first day; a legacy year-1 date is cleaned to NULL (it is not NULL, so no default).
    assert [r.v for r in values.collect()] == [dt.date(2024, 3, 1), None, dt.date(2024, 3, 9)]


def test_carry_columns_left_null_take_the_previous_value_and_are_named(spark, namespace):
    _, cfg = load(namespace)
    assert cfg.carry_columns, "the fixture config carries columns forward"
    first = cfg.carry_columns[0]
    row = spark.range(1).select(*[F.lit(None).cast("string").alias(c) for c in cfg.carry_columns])
    names = row.select(carried_names(cfg, F.col).alias("n")).first().n
    assert names == list(cfg.carry_columns)
    own, previous = F.col(first), F.lit("before")
    assert row.select(carried(own, previous, own.isNull())).first()[0] == "before"
    assert spark.range(1).select(carried(F.lit("own"), previous, F.lit(False))).first()[0] == "own"
