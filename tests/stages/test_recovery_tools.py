"""The operator's tools: ``check`` finds each kind of damage by hand-made corruption; ``rebuild-latest`` repairs it."""

import pytest

from spark_jobs.errors import RuleViolations
from spark_jobs.report import RunReport
from spark_jobs.stages.check import check_tables
from spark_jobs.stages.rebuild import rebuild_latest
from tests.support import append_source, assert_matches_model, load, read_tables, record, run

pytestmark = pytest.mark.spark


def built_tables(spark, namespace):
    """Accounts 1-3 over 2024-01..2024-05 with a gap and carried values, checked against the model first."""
    raw, cfg = load(namespace)
    rows = [
        record(1, "2024-01", 1, bal=10, dpd=0, member="A"),
        record(1, "2024-02", 1, bal=20, dpd=40, member=None),  # member carried from 2024-01
        record(1, "2024-04", 1, bal=40, dpd=70),  # a one-month gap
        record(2, "2024-03", 1, bal=300),
        record(2, "2024-05", 1, bal=500),
        record(3, "2024-05", 1, bal=7),
    ]
    append_source(spark, cfg, rows)
    run(spark, cfg, "initial", "2024-01", "2024-03")
    run(spark, cfg, "forward", "2024-04", "2024-05")
    assert_matches_model(spark, cfg, raw, rows)
    return raw, cfg, rows


def check(spark, cfg, start_month=None, end_month=None):
    report = RunReport(mode="check", config=cfg.path, run_id="check-test")
    try:
        check_tables(spark, cfg, report, start_month=start_month, end_month=end_month)
    except RuleViolations as exc:
        report.error = str(exc)
    return {name: r["violations"] for name, r in report.details["checks"].items()}, report


def test_check_passes_correct_tables_and_counts_every_kind_of_damage(spark, namespace):
    raw, cfg, rows = built_tables(spark, namespace)
    clean, report = check(spark, cfg)
    assert set(clean.values()) == {0} and report.details["violations"] == 0
    assert report.details["months"]["2024-05"] == {"summary_rows": 2, "source_account_months": 2}

    summary, latest = cfg.summary_table, cfg.latest_table
    spark.sql(f"UPDATE {summary} SET balance_history = array(40, 99, 20, 10) WHERE acct = 1 AND month = '2024-04'")
    spark.sql(f"UPDATE {summary} SET rating_grid = 'x' WHERE acct = 2 AND month = '2024-03'")
    spark.sql(f"UPDATE {summary} SET member = NULL WHERE acct = 1 AND month = '2024-02'")
    spark.sql(f"INSERT INTO {summary} SELECT * FROM {summary} WHERE acct = 3")
    spark.sql(f"DELETE FROM {latest} WHERE acct = 2")

    found, report = check(spark, cfg)
    broken = {name: n for name, n in found.items() if n}
    assert broken == {
        "summary.unique": 1,  # account 3, 2024-05, twice
        "balance_history.shift": 1,  # 2024-04 after a one-month gap must have NULL at element 1
        "rating_grid.grid": 1,
        "member.carried": 1,  # 2024-02 lost the 'A' carried from 2024-01
        "_previous_month.pointer": 1,  # the copy of account 3's row does not point at the row before it
        # account 2's row is gone; account 1's newest summary row (2024-04) was changed above, so its
        # latest row no longer matches it either way (the copy of account 3's row equals its latest)
        "latest_summary.missing_or_stale": 2,
        "latest_summary.unexpected": 1,
    }
    assert report.details["checks"]["rating_grid.grid"]["examples"] == ["2 2024-03"]
    assert report.details["violations"] == 8


def test_check_refuses_to_pass_a_latest_row_that_is_not_the_newest(spark, namespace):
    raw, cfg, rows = built_tables(spark, namespace)
    spark.sql(f"INSERT INTO {cfg.latest_table} SELECT * FROM {cfg.summary_table} WHERE acct = 2 AND month = '2024-03'")
    found, _ = check(spark, cfg)
    assert {name: n for name, n in found.items() if n} == {"latest_summary.unique": 1, "latest_summary.unexpected": 1}


def test_scoped_check_judges_only_the_months_given(spark, namespace):
    """The quality gate checks the months a run touched. Account 4 has a gap longer than its arrays (4 months), so
    its 2024-07 row's previous row lies before the months the scoped check reads: its pointer stands in for it."""
    raw, cfg = load(namespace)
    rows = [
        record(1, "2024-01", 1, bal=10),
        record(1, "2024-02", 1, bal=20),
        record(2, "2024-03", 1, bal=300, dpd=40),
        record(2, "2024-07", 1, bal=700),
        record(4, "2024-01", 1, bal=1),
        record(4, "2024-07", 1, bal=7),
    ]
    append_source(spark, cfg, rows)
    run(spark, cfg, "forward", "2024-01", "2024-07")
    assert_matches_model(spark, cfg, raw, rows)

    clean, report = check(spark, cfg, start_month="2024-07")
    assert set(clean.values()) == {0}, report.error
    assert report.details["scope"] == {"start_month": "2024-07", "end_month": None}
    assert report.details["months"] == {"2024-07": {"summary_rows": 2, "source_account_months": 2}}

    summary = cfg.summary_table
    spark.sql(f"UPDATE {summary} SET rating_grid = 'x' WHERE acct = 2 AND month = '2024-03'")
    spark.sql(f"UPDATE {summary} SET balance_history = array(7, 1, NULL, NULL) WHERE acct = 4 AND month = '2024-07'")

    found, report = check(spark, cfg, start_month="2024-07")
    assert {name: n for name, n in found.items() if n} == {
        "balance_history.shift": 1,  # nothing may reach 6 months back into a 4-element array
        "latest_summary.missing_or_stale": 1,  # account 4's newest row changed, its latest row did not
        "latest_summary.unexpected": 1,
    }
    assert "balance_history.shift (1; e.g. 4 2024-07)" in report.error

    found, report = check(spark, cfg, start_month="2024-03", end_month="2024-03")
    assert {name: n for name, n in found.items() if n} == {"rating_grid.grid": 1}
    assert list(report.details["months"]) == ["2024-03"]

    # A pointer lost while the previous row lies before the months read is still caught (from the older rows' keys).
    spark.sql(f"UPDATE {summary} SET _previous_month = NULL WHERE acct = 4 AND month = '2024-07'")
    found, report = check(spark, cfg, start_month="2024-07")
    assert found["_previous_month.pointer"] == 1 and report.details["checks"]["_previous_month.pointer"]["examples"] == [
        "4 2024-07"
    ]

    found, _ = check(spark, cfg)
    assert {name: n for name, n in found.items() if n} == {
        "rating_grid.grid": 1,
        "balance_history.shift": 1,
        "_previous_month.pointer": 1,
        "latest_summary.missing_or_stale": 1,
        "latest_summary.unexpected": 1,
    }


def test_a_broken_account_is_rebuilt_by_deleting_it_and_a_filtered_backfill(spark, namespace):
    """What docs/operations.md tells an operator after a failed quality gate: with every row of the account gone from
    both tables, a backfill filtered to it applies all of its records again, as a new account (Case I).

    Deleting only the broken row is not enough: the next row's ``_previous_month`` still names it, so a backfill
    would rebuild it without the rows before it (this test first shows that the gate catches that state)."""
    from tests.stages.test_backfill import backfill

    raw, cfg, rows = built_tables(spark, namespace)
    summary, latest = cfg.summary_table, cfg.latest_table
    spark.sql(f"UPDATE {summary} SET rating_grid = 'x' WHERE acct = 1 AND month = '2024-02'")
    found, _ = check(spark, cfg, start_month="2024-02", end_month="2024-02")
    assert {name: n for name, n in found.items() if n} == {"rating_grid.grid": 1}
    spark.sql(f"DELETE FROM {summary} WHERE acct = 1 AND month = '2024-02'")
    found, _ = check(spark, cfg, start_month="2024-02")
    # 2024-04 names the gone row, and its arrays no longer continue the row before it (2024-01 is now 3 months back)
    assert {name: n for name, n in found.items() if n} == {
        "_previous_month.pointer": 1,
        "balance_history.shift": 1,
        "rating_history.shift": 1,
    }

    spark.sql(f"DELETE FROM {summary} WHERE acct = 1")
    spark.sql(f"DELETE FROM {latest} WHERE acct = 1")
    report = backfill(spark, cfg, backfill_filter="acct_id = 1")  # source column names
    assert report.accounts_by_case == {"I": 1, "II": 0, "III": 0}, report
    assert_matches_model(spark, cfg, raw, rows)
    clean, report = check(spark, cfg)
    assert set(clean.values()) == {0}, report.error


def test_rebuild_latest_restores_latest_summary_from_summary(spark, namespace):
    raw, cfg, rows = built_tables(spark, namespace)
    latest = cfg.latest_table
    spark.sql(f"DELETE FROM {latest} WHERE acct = 2")
    spark.sql(f"UPDATE {latest} SET balance = -1 WHERE acct = 1")
    spark.sql(f"INSERT INTO {latest} SELECT * FROM {cfg.summary_table} WHERE acct = 3")  # a duplicate

    report = RunReport(mode="rebuild-latest", config=cfg.path, run_id="rebuild-test")
    rebuild_latest(spark, cfg, report, lock_wait_seconds=30)

    assert report.details["rows_wrong_before"] == 2  # account 2 missing, account 1 changed
    assert report.details["rows_unexpected_before"] == 2  # account 1's changed row, account 3's duplicate
    assert report.rows_written["latest_summary"] == 3
    assert_matches_model(spark, cfg, raw, rows)
    assert sorted(read_tables(spark, cfg)[1]) == [1, 2, 3]


@pytest.mark.parametrize("primary_date", ["acct_dt", None])
def test_check_passes_a_cleaned_legacy_primary_date_and_configs_without_one(spark, namespace, primary_date):
    """acct_dt is in date_col_list: a winner's 0001-01-01 is cleaned to NULL, which the contract asks for.
    (check counted that as a broken rule, and crashed for a config without primary_date_column.)"""
    import datetime as dt

    raw, cfg = load(namespace, primary_date_column=primary_date) if primary_date else load(namespace)
    if primary_date is None:
        raw.pop("primary_date_column")
        from spark_jobs.config import config_from_dict

        cfg = config_from_dict(raw, f"model_config[{namespace}]")
    rows = [record(1, "2024-01", 1, bal=1, acct_dt=dt.date(1, 1, 1)), record(1, "2024-02", 1, bal=2)]
    append_source(spark, cfg, rows)
    run(spark, cfg, "forward", "2024-01", "2024-02")
    assert_matches_model(spark, cfg, raw, rows)
    clean, report = check(spark, cfg)
    assert report.details["violations"] == 0, clean
