"""The table contract (docs/table-contract.md), rule by rule, on small hand-made data with expected values written by hand.

Config: tests/fixtures/configs/model_config.json (balance history of 4 months,
rating history of 6, member/acct_type/open_dt/dpd carried forward, status
excluded from carrying, open_dt and acct_dt cleaned, acct_dt the primary date).
"""

import datetime as dt
import hashlib

import pytest

from tests.support import append_source, assert_matches_model, load, read_tables, record, run

pytestmark = pytest.mark.spark
N = None


def snapshot_ids(spark, cfg):
    return {
        t: [r.snapshot_id for r in spark.sql(f"SELECT snapshot_id FROM {t}.snapshots").collect()]
        for t in (cfg.summary_table, cfg.latest_table)
    }


def test_history_arrays_shift_with_gaps_and_drop_what_leaves_the_window(spark, namespace):
    raw, cfg = load(namespace)
    rows = [
        record(1, "2024-01", 1, bal=100, dpd=0),
        record(1, "2024-02", 1, bal=200, dpd=45),
        record(1, "2024-04", 1, bal=400, dpd=70),
        record(1, "2024-09", 1, bal=900, dpd=10),
    ]
    append_source(spark, cfg, rows)
    run(spark, cfg, "initial", "2024-01", "2024-02")
    run(spark, cfg, "forward", "2024-03", "2024-09")

    summary, latest = read_tables(spark, cfg)
    assert sorted(summary) == [(1, "2024-01"), (1, "2024-02"), (1, "2024-04"), (1, "2024-09")]
    assert summary[(1, "2024-01")]["balance_history"] == [100, N, N, N]
    assert summary[(1, "2024-02")]["balance_history"] == [200, 100, N, N]
    assert summary[(1, "2024-04")]["balance_history"] == [400, N, 200, 100]
    assert summary[(1, "2024-09")]["balance_history"] == [900, N, N, N]
    # rating: dpd 0 -> '0', 45 -> '1', 70 -> '2', 10 -> '0'; history of 6 months
    assert summary[(1, "2024-04")]["rating_history"] == ["2", N, "1", "0", N, N]
    assert summary[(1, "2024-09")]["rating_history"] == ["0", N, N, N, N, "2"]
    assert summary[(1, "2024-09")]["rating_grid"] == "0|?|?|?|?|2"
    assert [summary[k]["_previous_month"] for k in sorted(summary)] == [N, "2024-01", "2024-02", "2024-04"]
    assert latest[1]["month"] == "2024-09" and latest[1]["balance_history"] == [900, N, N, N]
    assert_matches_model(spark, cfg, raw, rows)


def test_winner_is_the_greatest_version_and_stale_records_change_nothing(spark, namespace):
    raw, cfg = load(namespace)
    rows = [record(1, "2024-01", 1, bal=10), record(1, "2024-01", 3, bal=30), record(1, "2024-01", 2, bal=20)]
    append_source(spark, cfg, rows)
    report = run(spark, cfg, "forward", "2024-01")
    assert report.records_read == 3 and report.changed_records == 1
    assert read_tables(spark, cfg)[0][(1, "2024-01")]["balance"] == 30

    stale = [record(1, "2024-01", 2, bal=99)]
    append_source(spark, cfg, stale)
    before = snapshot_ids(spark, cfg)
    report = run(spark, cfg, "forward", "2024-01")
    assert (report.changed_records, report.unchanged_records, report.stale_records) == (0, 1, 0)
    assert snapshot_ids(spark, cfg) == before, "a re-run with only a stale record must not commit"

    newer = [record(1, "2024-01", 5, bal=50)]
    append_source(spark, cfg, newer)
    report = run(spark, cfg, "forward", "2024-01")
    assert report.changed_records == 1
    assert read_tables(spark, cfg)[0][(1, "2024-01")]["balance"] == 50
    assert_matches_model(spark, cfg, raw, rows + stale + newer)


def test_equal_versions_with_different_content_pick_the_greater_digest_and_are_counted(spark, namespace):
    raw, cfg = load(namespace)
    a = record(7, "2024-01", 4, bal=111)
    b = record(7, "2024-01", 4, bal=222)
    duplicate = dict(a)
    append_source(spark, cfg, [a, b, duplicate])
    report = run(spark, cfg, "forward", "2024-01")
    assert report.version_conflicts == 1

    def documented_digest(r):  # README "Winners": sha-256 of the renamed record's values as strings
        values = [r["acct_id"], r["rpt_mo"], r["ts"].strftime("%Y-%m-%d %H:%M:%S"), r["bal"], r["dpd"], r["acct_type"],
                  r["open_dt"], r["status"], r["acct_dt"], r["member"]]  # fmt: skip
        text = "\u001f".join("\u0000" if v is None else str(v) for v in values)
        return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)

    expected = max((a, b), key=documented_digest)["bal"]
    row = read_tables(spark, cfg)[0][(7, "2024-01")]
    assert row["balance"] == expected
    assert row["_record_digest"] == max(documented_digest(a), documented_digest(b))
    assert_matches_model(spark, cfg, raw, [a, b, duplicate])


def test_carry_forward_exclusion_and_invalid_dates(spark, namespace):
    raw, cfg = load(namespace)
    opened = dt.date(2020, 5, 1)
    legacy = dt.date(1, 1, 1)
    rows = [
        record(1, "2024-01", 1, bal=1, dpd=5, member="A", status="X", open_dt=opened, acct_type="", acct_dt=dt.date(2024, 1, 9)),
        record(1, "2024-02", 1, bal=2, dpd=N, member=N, status=N, open_dt=N, acct_type=N, acct_dt=N),
        record(1, "2024-03", 1, bal=3, dpd=N, member="B", status="Y", open_dt=legacy, acct_type="7", acct_dt=legacy),
        record(1, "2024-04", 1, bal=4, dpd=N, member=N, status=N, open_dt=N, acct_type=N, acct_dt=N),
    ]
    append_source(spark, cfg, rows)
    run(spark, cfg, "forward", "2024-01", "2024-04")
    summary, _ = read_tables(spark, cfg)
    by_month = [summary[(1, m)] for m in ("2024-01", "2024-02", "2024-03", "2024-04")]
    assert [r["member"] for r in by_month] == ["A", "A", "B", "B"]
    assert [r["status"] for r in by_month] == ["X", N, "Y", N]  # excluded: the winner's value, NULL included
    assert [r["acct_type"] for r in by_month] == ["999", "999", "7", "7"]  # '' -> '999' by the transformation
    assert [r["open_dt"] for r in by_month] == [opened, opened, N, N]  # 0001-01-01 is NULL and is not carried
    assert [r["dpd"] for r in by_month] == [5, 5, 5, 5]
    assert [r["rating"] for r in by_month] == ["0", N, N, N]  # a rolling mapper value is never carried
    assert [r["acct_dt"] for r in by_month] == [dt.date(2024, 1, 9), dt.date(2024, 2, 1), N, dt.date(2024, 4, 1)]
    assert [r["_carried_columns"] for r in by_month] == [
        [],
        ["dpd", "acct_type", "open_dt", "member"],
        ["dpd"],
        ["dpd", "acct_type", "open_dt", "member"],
    ]
    assert_matches_model(spark, cfg, raw, rows)


def test_rejected_records_are_kept_with_their_reason_and_never_reach_summary(spark, namespace):
    raw, cfg = load(namespace)
    good = record(1, "2024-01", 1, bal=5)
    no_key = record(N, "2024-01", 1, bal=6)
    no_version = record(2, "2024-01", 1, bal=7)
    no_version["ts"] = None
    append_source(spark, cfg, [good, no_key, no_version])
    report = run(spark, cfg, "forward", "2024-01")
    assert (report.records_read, report.records_rejected) == (3, 2)
    rejects = spark.table(cfg.rejects_table).collect()
    assert sorted(r.record_key or "NULL" for r in rejects) == ["2", "NULL"]
    assert {r.record_key: r.reason for r in rejects}["2"] == "NULL ts (max_identifier_column)"
    assert all('"bal"' in r.record for r in rejects), "the original record is kept"
    run(spark, cfg, "forward", "2024-01")
    assert spark.table(cfg.rejects_table).count() == 2, "re-reading a rejected record does not duplicate it"
    assert sorted(read_tables(spark, cfg)[0]) == [(1, "2024-01")]


def test_rerun_of_an_old_month_corrects_later_rows_and_is_otherwise_a_no_op(spark, namespace):
    raw, cfg = load(namespace)
    first = [record(1, f"2024-0{m}", 1, bal=m * 100) for m in range(1, 6)] + [record(2, "2024-03", 1, bal=30)]
    append_source(spark, cfg, first)
    run(spark, cfg, "initial", "2024-01", "2024-05")

    before = snapshot_ids(spark, cfg)
    report = run(spark, cfg, "forward", "2024-02")  # an Airflow retry of a month already done (v4 defect 1 in docs/v4-defects.md)
    assert report.changed_records == 0 and snapshot_ids(spark, cfg) == before

    late = [record(1, "2024-02", 9, bal=250), record(2, "2024-02", 9, bal=20)]  # correction; month before account 2's first
    append_source(spark, cfg, late)
    report = run(spark, cfg, "forward", "2024-02")  # v4 refused this (defect 9)
    assert report.records_by_case == {"I": 0, "II": 0, "III": 2}
    summary, latest = read_tables(spark, cfg)
    assert summary[(1, "2024-02")]["balance_history"] == [250, 100, N, N]
    assert summary[(1, "2024-03")]["balance_history"] == [300, 250, 100, N]
    assert summary[(1, "2024-05")]["balance_history"] == [500, 400, 300, 250]
    assert summary[(2, "2024-02")]["balance_history"] == [20, N, N, N]
    assert summary[(2, "2024-03")]["balance_history"] == [30, 20, N, N]
    assert summary[(2, "2024-03")]["_previous_month"] == "2024-02"
    assert latest[1]["balance_history"] == [500, 400, 300, 250] and latest[2]["month"] == "2024-03"
    assert report.rows_written["summary"] == 6  # acct 1: 02..05; acct 2: 02, 03
    assert_matches_model(spark, cfg, raw, first + late)


def test_a_correction_reaches_every_later_row_that_carries_its_value(spark, namespace):
    raw, cfg = load(namespace)
    rows = [record(1, "2024-01", 1, bal=1, member="A")] + [record(1, f"2024-{m:02d}", 1, bal=m, member=N) for m in range(2, 11)]
    append_source(spark, cfg, rows)
    run(spark, cfg, "initial", "2024-01", "2024-10")
    fix = [record(1, "2024-01", 5, bal=1, member="Z")]
    append_source(spark, cfg, fix)
    report = run(spark, cfg, "forward", "2024-01")
    summary, latest = read_tables(spark, cfg)
    assert [summary[(1, f"2024-{m:02d}")]["member"] for m in range(1, 11)] == ["Z"] * 10  # far beyond the 4-month window
    assert latest[1]["member"] == "Z"
    assert report.rows_written["summary"] == 10
    assert_matches_model(spark, cfg, raw, rows + fix)


def test_dry_run_reports_and_writes_nothing(spark, namespace):
    raw, cfg = load(namespace)
    rows = [record(1, "2024-01", 1, bal=1), record(1, "2024-02", 1, bal=2)]
    append_source(spark, cfg, rows)
    run(spark, cfg, "forward", "2024-01")
    before = snapshot_ids(spark, cfg)
    report = run(spark, cfg, "forward", "2024-02", dry_run=True)
    assert report.changed_records == 1 and report.rows_written["summary"] == 1
    assert snapshot_ids(spark, cfg) == before
    assert sorted(read_tables(spark, cfg)[0]) == [(1, "2024-01")]
