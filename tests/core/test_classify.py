"""core/classify.py: each changed account's case from its first changed month and its latest stored month."""

import pytest
from pyspark.testing import assertDataFrameEqual

from spark_jobs.core.classify import classify_accounts, is_single_new_month, records_of_case
from spark_jobs.names import CASE, CHANGED_MONTHS, FIRST_CHANGED, LATEST_MONTH, MONTH_NUMBER

pytestmark = pytest.mark.spark


@pytest.fixture
def changes(spark):
    # account: changed month numbers
    rows = [(1, 100), (2, 105), (2, 106), (3, 99), (3, 104), (4, 103)]
    return spark.createDataFrame(rows, f"acct bigint, {MONTH_NUMBER} int")


@pytest.fixture
def latest(spark):
    # account 1 has no stored row; 2's latest is before its changes; 3's is after its first change; 4's equals it
    return spark.createDataFrame([(2, 104), (3, 101), (4, 103), (9, 50)], f"acct bigint, {LATEST_MONTH} int")


def test_accounts_are_case_i_ii_or_iii_by_their_earliest_changed_month(spark, changes, latest):
    accounts = classify_accounts(changes, latest, "acct").select("acct", FIRST_CHANGED, CHANGED_MONTHS, LATEST_MONTH, CASE)
    expected = spark.createDataFrame(
        [(1, 100, 1, None, 1), (2, 105, 2, 104, 2), (3, 99, 2, 101, 3), (4, 103, 1, 103, 3)],
        f"acct bigint, {FIRST_CHANGED} int, {CHANGED_MONTHS} bigint, {LATEST_MONTH} int, {CASE} int",
    )
    assertDataFrameEqual(accounts, expected)


def test_only_case_i_or_ii_with_one_new_month_take_the_single_shift(changes, latest):
    accounts = classify_accounts(changes, latest, "acct")
    assert sorted(r.acct for r in accounts.where(is_single_new_month()).collect()) == [1]


def test_records_are_counted_by_their_own_case_in_reports(spark, changes, latest):
    """Account 3 is handled as Case III, but its record of month 104 (after its latest row) reports as Case II."""
    accounts = classify_accounts(changes, latest, "acct")
    counted = accounts.select("acct", *[records_of_case(case).alias(f"c{case}") for case in (1, 2, 3)])
    expected = spark.createDataFrame(
        [(1, 1, 0, 0), (2, 0, 2, 0), (3, 0, 1, 1), (4, 0, 0, 1)], "acct bigint, c1 bigint, c2 bigint, c3 bigint"
    )
    assertDataFrameEqual(counted, expected)
