"""Backfill after writers other than an append (docs/operations.md, "Who may write the source").

A ``MERGE INTO``, ``INSERT OVERWRITE`` or ``DELETE`` on the source commits a
snapshot that an incremental read skips. After each, an automatic backfill must
leave both tables equal to the plain-Python model applied to the source as it
stands now, and its report must say which read path it took and why.

Config: tests/fixtures/configs/model_config.json (balance history of 4 months).
"""

import datetime as dt

import pytest

from spark_jobs.names import BACKFILL_MARK
from spark_jobs.storage.iceberg import current_snapshot, table_properties
from tests.stages.test_backfill import backfill
from tests.support import (
    append_source,
    assert_matches_model,
    delete_source,
    load,
    merge_source,
    overwrite_source_month,
    read_tables,
    record,
    run,
    source_records,
)

pytestmark = pytest.mark.spark
N = None

MERGE_ON_READ = {"write.merge.mode": "merge-on-read", "write.update.mode": "merge-on-read", "write.delete.mode": "merge-on-read"}


def loaded(spark, namespace, properties=None):
    """Two accounts over 2024-01..03, forward-loaded and backfilled once (so a mark exists)."""
    raw, cfg = load(namespace)
    rows = [record(a, f"2024-0{m}", 1, bal=a * 100 + m) for a in (1, 2) for m in (1, 2, 3)]
    append_source(spark, cfg, rows)
    for name, value in (properties or {}).items():
        spark.sql(f"ALTER TABLE {cfg.source_table} SET TBLPROPERTIES ('{name}' = '{value}')")
    run(spark, cfg, "forward", "2024-01", "2024-03")
    first = backfill(spark, cfg)
    assert first.details["source_read"]["path"] == "full-table", "no mark yet: the whole source is read"
    return raw, cfg


@pytest.mark.parametrize("properties", [None, MERGE_ON_READ], ids=["copy-on-write", "merge-on-read"])
def test_merge_updating_in_place_and_inserting_is_applied(spark, namespace, properties):
    raw, cfg = loaded(spark, namespace, properties)
    # Corrected in place without a newer version (the version column is what the sender had), plus a new account.
    merge_source(spark, cfg, [record(1, "2024-02", 1, bal=999), record(3, "2024-02", 1, bal=30)])
    report = backfill(spark, cfg)
    read = report.details["source_read"]
    assert read["path"] == "touched-months" and read["touched_months"] == ["2024-02"], read
    assert read["snapshots"] == {"overwrite": 1}
    summary, latest = read_tables(spark, cfg)
    assert summary[(1, "2024-02")]["balance"] == 999
    assert summary[(1, "2024-03")]["balance_history"] == [103, 999, 101, N]
    assert summary[(3, "2024-02")]["balance_history"] == [30, N, N, N] and latest[3]["month"] == "2024-02"
    assert_matches_model(spark, cfg, raw, source_records(spark, cfg))
    assert backfill(spark, cfg).records_read == 0, "the mark moved past the MERGE"


def test_insert_overwrite_of_a_month_replaces_it_and_drops_what_it_no_longer_holds(spark, namespace):
    raw, cfg = loaded(spark, namespace)
    # Redelivered with an older version than the stored one: as the source stands, it is the record of the month.
    overwrite_source_month(spark, cfg, "2024-02", [record(1, "2024-02", 0, bal=7)])
    report = backfill(spark, cfg)
    assert report.details["source_read"]["touched_months"] == ["2024-02"]
    assert report.removed_rows == 1
    summary, latest = read_tables(spark, cfg)
    assert (2, "2024-02") not in summary, "account 2 is gone from the redelivered month"
    assert summary[(1, "2024-02")]["balance"] == 7
    assert summary[(1, "2024-03")]["balance_history"] == [103, 7, 101, N]
    assert summary[(2, "2024-03")]["balance_history"] == [203, N, 201, N]
    assert latest[2]["balance_history"] == [203, N, 201, N]
    assert_matches_model(spark, cfg, raw, source_records(spark, cfg))


def test_delete_removes_rows_and_latest_falls_back_to_the_newest_remaining_month(spark, namespace):
    raw, cfg = loaded(spark, namespace)
    delete_source(spark, cfg, "acct_id = 1 AND rpt_mo = '2024-03'")
    delete_source(spark, cfg, "acct_id = 2")
    report = backfill(spark, cfg)
    read = report.details["source_read"]
    # (a DELETE that removes part of a file rewrites it: Iceberg records an overwrite, not a delete)
    assert read["path"] == "touched-months" and sum(read["snapshots"].values()) == 2, read
    assert report.removed_rows == 4
    summary, latest = read_tables(spark, cfg)
    assert sorted(summary) == [(1, "2024-01"), (1, "2024-02")]
    assert latest[1]["month"] == "2024-02" and latest[1]["balance_history"] == [102, 101, N, N]
    assert 2 not in latest, "an account with no record left leaves latest_summary too"
    assert_matches_model(spark, cfg, raw, source_records(spark, cfg))


ORDERS = {
    "append-merge-append": ("append", "merge", "append"),
    "merge-delete-append": ("merge", "delete", "append"),
    "overwrite-append-delete": ("overwrite", "append", "delete"),
    "delete-overwrite-merge": ("delete", "overwrite", "merge"),
}


def write(spark, cfg, writer, step):
    """One late delivery by ``writer``; each step touches a different month so the orders differ."""
    month = f"2024-0{1 + step % 3}"
    if writer == "append":
        append_source(spark, cfg, [record(1, month, 5 + step, bal=500 + step), record(4, "2024-04", 5 + step, bal=4)])
    elif writer == "merge":
        merge_source(spark, cfg, [record(2, month, 1, bal=700 + step), record(5, month, 1, bal=50)])
    elif writer == "overwrite":
        overwrite_source_month(spark, cfg, month, [record(1, month, 0, bal=800 + step)])
    else:
        delete_source(spark, cfg, f"acct_id = 2 AND rpt_mo = '{month}'")


@pytest.mark.parametrize("between", [False, True], ids=["one-backfill", "backfill-after-each"])
@pytest.mark.parametrize("order", list(ORDERS))
def test_writers_mixed_with_appends_in_any_order(spark, namespace, order, between):
    raw, cfg = loaded(spark, namespace)
    for step, writer in enumerate(ORDERS[order]):
        write(spark, cfg, writer, step)
        if between:
            backfill(spark, cfg)
            assert_matches_model(spark, cfg, raw, source_records(spark, cfg))
    backfill(spark, cfg)
    assert_matches_model(spark, cfg, raw, source_records(spark, cfg))
    assert table_properties(spark, cfg.control_table)[BACKFILL_MARK] == str(current_snapshot(spark, cfg.source_table)[0])


def test_classify_and_case_stages_apply_removals(spark, namespace):
    raw, cfg = loaded(spark, namespace)
    delete_source(spark, cfg, "acct_id = 2 AND rpt_mo = '2024-02'")
    merge_source(spark, cfg, [record(1, "2024-01", 1, bal=11), record(6, "2024-03", 1, bal=6)])
    classified = backfill(spark, cfg, "classify")
    assert classified.details["source_read"]["touched_months"] == ["2024-01", "2024-02", "2024-03"]
    assert table_properties(spark, cfg.control_table)[BACKFILL_MARK] != str(current_snapshot(spark, cfg.source_table)[0])
    for stage in classified.details["stages_to_run"]:
        backfill(spark, cfg, stage, run_id=classified.run_id)
    assert (2, "2024-02") not in read_tables(spark, cfg)[0]
    assert_matches_model(spark, cfg, raw, source_records(spark, cfg))
    assert table_properties(spark, cfg.control_table)[BACKFILL_MARK] == str(current_snapshot(spark, cfg.source_table)[0])


def test_expired_snapshots_since_the_mark_mean_the_whole_source_is_judged(spark, namespace):
    raw, cfg = loaded(spark, namespace)
    merge_source(spark, cfg, [record(1, "2024-01", 1, bal=1)])
    delete_source(spark, cfg, "acct_id = 2 AND rpt_mo = '2024-03'")
    catalog, table = cfg.source_table.split(".", 1)
    now = dt.datetime.now() + dt.timedelta(seconds=1)
    spark.sql(f"CALL {catalog}.system.expire_snapshots(table => '{table}', older_than => TIMESTAMP '{now}', retain_last => 1)")
    report = backfill(spark, cfg)
    read = report.details["source_read"]
    assert read["path"] == "full-table" and "expired" in read["reason"], read
    assert report.removed_rows == 1
    assert_matches_model(spark, cfg, raw, source_records(spark, cfg))


def test_a_rolled_back_source_is_judged_whole(spark, namespace):
    raw, cfg = loaded(spark, namespace)
    before, _ = current_snapshot(spark, cfg.source_table)
    append_source(spark, cfg, [record(1, "2024-03", 9, bal=9)])
    backfill(spark, cfg)
    catalog, table = cfg.source_table.split(".", 1)
    spark.sql(f"CALL {catalog}.system.rollback_to_snapshot('{table}', {before})")
    append_source(spark, cfg, [record(3, "2024-01", 2, bal=3)])
    report = backfill(spark, cfg)
    read = report.details["source_read"]
    assert read["path"] == "full-table" and "rolled back" in read["reason"], read
    assert read_tables(spark, cfg)[0][(1, "2024-03")]["balance"] == 103, "the rolled-back record left the summary"
    assert_matches_model(spark, cfg, raw, source_records(spark, cfg))


def test_check_tells_pending_changes_from_divergence(spark, namespace):
    from tests.stages.test_recovery_tools import check

    raw, cfg = loaded(spark, namespace)
    merge_source(spark, cfg, [record(1, "2024-02", 1, bal=999), record(3, "2024-02", 1, bal=30)])
    counts, report = check(spark, cfg)
    assert counts["summary.follows_source"] == 0, "a MERGE the next backfill will read is not a divergence"
    assert report.details["source_pending"]["account_months"] == 2
    assert sorted(report.details["source_pending"]["examples"]) == [
        "1 2024-02 (not the source's winner)",
        "3 2024-02 (missing from summary)",
    ]

    # What earlier versions did: the mark moved past the MERGE without reading it.
    head = current_snapshot(spark, cfg.source_table)[0]
    spark.sql(f"ALTER TABLE {cfg.control_table} SET TBLPROPERTIES ('{BACKFILL_MARK}' = '{head}')")
    counts, report = check(spark, cfg)
    assert counts["summary.follows_source"] == 2 and "summary.follows_source" in report.error
    assert report.details["source_pending"]["account_months"] == 0

    delete_source(spark, cfg, "acct_id = 2 AND rpt_mo = '2024-01'")  # pending again, and one more
    counts, report = check(spark, cfg)
    assert counts["summary.follows_source"] == 2 and report.details["source_pending"]["account_months"] == 1
    assert report.details["source_pending"]["examples"] == ["2 2024-01 (no valid source record)"]

    # The repair docs/operations.md gives: without a mark, the next backfill judges the whole source.
    spark.sql(f"ALTER TABLE {cfg.control_table} UNSET TBLPROPERTIES ('{BACKFILL_MARK}')")
    assert backfill(spark, cfg).details["source_read"]["path"] == "full-table"
    counts, report = check(spark, cfg)
    assert counts["summary.follows_source"] == 0 and report.details["source_pending"]["account_months"] == 0
    assert_matches_model(spark, cfg, raw, source_records(spark, cfg))
