"""Which stored rows a batch of new winners can change, by account (docs/table-contract.md §7).

Classification needs one row per account, so it reads ``latest_summary``
(never a group-by over ``summary``):

| case | account in latest_summary | context the account's timeline needs |
|---|---|---|
| I   | absent                            | none: arrays from this batch alone |
| II  | latest month < first changed month | the latest row (anchor) |
| III | latest month >= first changed month | stored rows from the first changed month on, and the row before it (anchor) |

An account is handled wholly by the case of its earliest changed month, so a
batch holding Case II and Case III months of one account is one timeline.
"""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.names import CASE, CASES, CHANGED_MONTHS, FIRST_CHANGED, LATEST_MONTH, MONTH_NUMBER

STORED_MONTHS = "__stored_months"  # changed months at or before the account's latest month

CASE_NAMES = dict(enumerate(CASES, start=1))  # the CASE column's numbers -> "I", "II", "III"


def classify_accounts(changes: DataFrame, latest_months: DataFrame, key: str) -> DataFrame:
    """One row per changed account: key, first changed month number, how many months change, how many of
    them are at or before the latest stored month (records of Case III, docs/table-contract.md §7), the
    latest stored month number, and the account's case (1/2/3).

    ``latest_months`` has ``key`` and ``LATEST_MONTH`` (a month number), one row per account.
    """
    with_latest = changes.select(key, MONTH_NUMBER).join(latest_months, key, "left")
    accounts = with_latest.groupBy(key).agg(
        F.min(MONTH_NUMBER).alias(FIRST_CHANGED),
        F.count(F.lit(1)).alias(CHANGED_MONTHS),
        F.count(F.when(F.col(MONTH_NUMBER) <= F.col(LATEST_MONTH), 1)).alias(STORED_MONTHS),
        F.first(LATEST_MONTH).alias(LATEST_MONTH),
    )
    return accounts.withColumn(
        CASE,
        F.when(F.col(LATEST_MONTH).isNull(), F.lit(1))
        .when(F.col(LATEST_MONTH) < F.col(FIRST_CHANGED), F.lit(2))
        .otherwise(F.lit(3)),
    )


def is_single_new_month() -> Column:
    """Case I or II with one changed month: the row follows from the latest row (or nothing) by one shift."""
    return (F.col(CASE) < 3) & (F.col(CHANGED_MONTHS) == 1)


def records_of_case(case: int) -> Column:
    """How many of an account's changed records are of ``case`` by their own month (for reports; §7).

    An account handled as Case III may hold records after its latest row: those report as Case II.
    """
    if case == 1:
        return F.when(F.col(CASE) == 1, F.col(CHANGED_MONTHS)).otherwise(0)
    if case == 2:
        return F.when(F.col(CASE) > 1, F.col(CHANGED_MONTHS) - F.col(STORED_MONTHS)).otherwise(0)
    return F.col(STORED_MONTHS)
