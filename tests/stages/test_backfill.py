"""Backfill (docs/table-contract.md §6, §7): hand-made batches with expected values written by hand.

Config: tests/fixtures/configs/model_config.json (balance history of 4 months).
"""

import pytest

from spark_jobs.names import BACKFILL_MARK, BACKFILL_PENDING, PUBLISH_PREFIX
from spark_jobs.report import RunReport
from spark_jobs.stages.backfill import run_backfill, run_case, run_classify
from spark_jobs.storage import publish, writers
from spark_jobs.storage.iceberg import current_snapshot, java_table, table_properties
from tests.support import append_source, assert_matches_model, load, read_tables, record, run

pytestmark = pytest.mark.spark
N = None


def backfill(spark, cfg, stage="backfill", **options):
    report = RunReport(mode=stage, config=cfg.path, run_id=f"{stage}-{len(str(options))}-{id(options)}")
    if stage == "backfill":
        run_backfill(spark, cfg, report, lock_wait_seconds=30, **options)
    elif stage == "classify":
        run_classify(spark, cfg, report, lock_wait_seconds=30, **options)
    else:
        run_case(spark, cfg, report, stage, options["run_id"], lock_wait_seconds=30)
    return report.finish()


def snapshots(spark, cfg):
    tables = [cfg.summary_table, cfg.latest_table, cfg.rejects_table, cfg.control_table, cfg.backfill_table]
    tables = [t for t in tables if spark.catalog.tableExists(t)]
    return {t: current_snapshot(spark, t)[0] for t in tables}


def test_late_records_with_old_versions_are_found_by_snapshot_not_by_version(spark, namespace):
    raw, cfg = load(namespace)
    on_time = [record(1, f"2024-0{m}", 10, bal=m * 100) for m in (1, 2, 3)]
    append_source(spark, cfg, on_time)
    run(spark, cfg, "forward", "2024-01", "2024-03")
    assert backfill(spark, cfg).changed_records == 0, "the first backfill re-reads everything, and it is all applied"

    # Stamped with a version older than anything stored: v4's high-water mark never saw such records.
    late = [record(1, "2024-02", 3, bal=222), record(2, "2024-02", 3, bal=5)]
    append_source(spark, cfg, late)
    report = backfill(spark, cfg)
    assert report.records_read == 2 and report.stale_records == 1 and report.changed_records == 1
    assert report.records_by_case == {"I": 1, "II": 0, "III": 0}
    summary, _ = read_tables(spark, cfg)
    assert summary[(1, "2024-02")]["balance"] == 200, "the stale correction (older version) lost"
    assert summary[(2, "2024-02")]["balance_history"] == [5, N, N, N]

    assert backfill(spark, cfg).records_read == 0, "nothing appended since: nothing read"
    assert_matches_model(spark, cfg, raw, on_time + late)


def test_one_account_with_case_ii_and_case_iii_months_in_one_batch(spark, namespace):
    raw, cfg = load(namespace)
    stored = [record(1, f"2024-0{m}", 1, bal=m) for m in (1, 2, 3)]
    append_source(spark, cfg, stored)
    run(spark, cfg, "initial", "2024-01", "2024-03")
    backfill(spark, cfg)
    batch = [record(1, "2024-02", 5, bal=20), record(1, "2024-04", 5, bal=40), record(1, "2024-06", 5, bal=60)]
    append_source(spark, cfg, batch)
    report = backfill(spark, cfg)
    assert report.records_by_case == {"I": 0, "II": 2, "III": 1} and report.accounts_by_case["III"] == 1
    summary, latest = read_tables(spark, cfg)
    assert summary[(1, "2024-03")]["balance_history"] == [3, 20, 1, N]
    assert summary[(1, "2024-04")]["balance_history"] == [40, 3, 20, 1]  # v4 shifted both Case II months from 2024-03
    assert summary[(1, "2024-06")]["balance_history"] == [60, N, 40, 3]
    assert summary[(1, "2024-06")]["_previous_month"] == "2024-04"
    assert latest[1]["month"] == "2024-06" and latest[1]["balance_history"] == [60, N, 40, 3]
    assert_matches_model(spark, cfg, raw, stored + batch)


def test_several_case_ii_months_of_one_account_see_each_other_and_stale_versions_lose(spark, namespace):
    """v4 defects 2 and 6 (docs/v4-defects.md): only Case II months, the latest row as anchor; two versions of one
    new month in the batch, and an older version of a stored month, each lose as they must."""
    raw, cfg = load(namespace)
    stored = [record(1, "2024-01", 5, bal=1, member="A"), record(1, "2024-03", 5, bal=3, member=None)]
    append_source(spark, cfg, stored)
    run(spark, cfg, "initial", "2024-01", "2024-03")
    backfill(spark, cfg)
    batch = [
        record(1, "2024-04", 5, bal=40, member=None),
        record(1, "2024-04", 2, bal=999),  # an older version of the same new month: loses within the batch
        record(1, "2024-06", 5, bal=60, member=None),
        record(1, "2024-03", 1, bal=-7),  # older than the stored 2024-03: stale, changes nothing
    ]
    append_source(spark, cfg, batch)
    report = backfill(spark, cfg)
    assert report.accounts_by_case == {"I": 0, "II": 1, "III": 0} and report.stale_records == 1
    summary, latest = read_tables(spark, cfg)
    assert summary[(1, "2024-03")]["balance_history"] == [3, N, 1, N], "the stale record changed nothing"
    assert summary[(1, "2024-04")]["balance_history"] == [40, 3, N, 1]
    assert summary[(1, "2024-06")]["balance_history"] == [60, N, 40, 3]  # v4 shifted 2024-06 from 2024-03
    assert summary[(1, "2024-06")]["member"] == "A", "carried through both new months"
    assert latest[1]["month"] == "2024-06"
    assert_matches_model(spark, cfg, raw, stored + batch)


def test_case_i_builds_arrays_from_the_batch_alone_and_duplicates_collapse(spark, namespace):
    raw, cfg = load(namespace)
    append_source(spark, cfg, [record(9, "2024-01", 1, bal=1)])
    run(spark, cfg, "forward", "2024-01")
    batch = [
        record(5, "2023-11", 2, bal=11),
        record(5, "2024-01", 2, bal=13),
        record(5, "2024-01", 2, bal=13),  # exact duplicate
        record(5, "2024-01", 1, bal=99),  # older version of the same month: loses
    ]
    append_source(spark, cfg, batch)
    report = backfill(spark, cfg)
    assert report.records_by_case["I"] == 2 and report.version_conflicts == 0
    assert report.superseded_records == 2, "the duplicate and the older version lost inside the batch"
    summary, _ = read_tables(spark, cfg)
    assert summary[(5, "2023-11")]["balance_history"] == [11, N, N, N]
    assert summary[(5, "2024-01")]["balance_history"] == [13, N, 11, N]
    assert_matches_model(spark, cfg, raw, [record(9, "2024-01", 1, bal=1)] + batch)


def test_a_month_older_than_the_window_still_updates_what_carries_from_it(spark, namespace):
    raw, cfg = load(namespace)
    stored = [record(3, f"2024-{m:02d}", 1, bal=m, member=N) for m in range(3, 11)]
    append_source(spark, cfg, stored)
    run(spark, cfg, "initial", "2024-03", "2024-10")
    backfill(spark, cfg)
    old = [record(3, "2023-06", 1, bal=7, member="OLD")]  # before the first month, far outside a 4-month window
    append_source(spark, cfg, old)
    report = backfill(spark, cfg)
    summary, _ = read_tables(spark, cfg)
    assert summary[(3, "2023-06")]["balance_history"] == [7, N, N, N]
    assert summary[(3, "2024-03")]["balance_history"] == [3, N, N, N]
    assert [summary[(3, f"2024-{m:02d}")]["member"] for m in range(3, 11)] == ["OLD"] * 8
    assert summary[(3, "2024-03")]["_previous_month"] == "2023-06"
    assert report.rows_written["summary"] == 9
    assert_matches_model(spark, cfg, raw, stored + old)


@pytest.mark.parametrize("latest_write", ["merge", "rewrite"])
def test_a_correction_whose_newest_changed_row_is_older_than_latest_leaves_latest_alone(
    spark, namespace, monkeypatch, latest_write
):
    # latest_summary is MERGEd for small batches and rewritten for large ones: both must keep a newer latest row.
    monkeypatch.setattr(writers, "LATEST_REWRITE_SHARE", float("inf") if latest_write == "merge" else 0.0)
    raw, cfg = load(namespace)
    stored = [record(a, f"2024-0{m}", 1, bal=a * 1000 + m * 100, dpd=0) for a in (1, 2) for m in range(1, 9)]
    append_source(spark, cfg, stored)
    run(spark, cfg, "initial", "2024-01", "2024-08")
    backfill(spark, cfg)
    batch = [record(1, "2024-01", 5, bal=7, dpd=0), record(3, "2024-08", 5, bal=30)]
    append_source(spark, cfg, batch)
    report = backfill(spark, cfg)
    assert report.accounts_by_case == {"I": 1, "II": 0, "III": 1}
    summary, latest = read_tables(spark, cfg)
    assert summary[(1, "2024-04")]["balance_history"] == [1400, 1300, 1200, 7], "inside the 4-month window"
    assert summary[(1, "2024-05")]["balance_history"] == [1500, 1400, 1300, 1200], "outside it: unchanged"
    assert latest[1]["month"] == "2024-08" and latest[1]["balance_history"] == [1800, 1700, 1600, 1500]
    assert latest[2]["balance_history"] == [2800, 2700, 2600, 2500]
    assert latest[3]["month"] == "2024-08" and latest[3]["balance_history"] == [30, N, N, N]
    assert_matches_model(spark, cfg, raw, stored + batch)


def test_classify_then_case_stages_in_any_order_and_the_mark_moves_last(spark, namespace):
    raw, cfg = load(namespace)
    base = [record(1, "2024-01", 1, bal=1), record(2, "2024-01", 1, bal=2), record(2, "2024-02", 1, bal=3)]
    append_source(spark, cfg, base)
    run(spark, cfg, "forward", "2024-01", "2024-02")
    backfill(spark, cfg)
    mark = table_properties(spark, cfg.control_table)[BACKFILL_MARK]
    late = [record(7, "2024-01", 2, bal=70), record(1, "2024-02", 2, bal=10), record(2, "2024-01", 2, bal=20)]
    append_source(spark, cfg, late)

    classified = backfill(spark, cfg, "classify")
    assert classified.accounts_by_case == {"I": 1, "II": 1, "III": 1}
    assert classified.details["stages_to_run"] == ["case-i", "case-ii", "case-iii"]
    run_id = classified.run_id
    assert BACKFILL_PENDING + run_id in table_properties(spark, cfg.control_table)

    assert backfill(spark, cfg, "case-iii", run_id=run_id).accounts_by_case["III"] == 1
    assert table_properties(spark, cfg.control_table)[BACKFILL_MARK] == mark, "the mark waits for every case"
    backfill(spark, cfg, "case-i", run_id=run_id)
    again = backfill(spark, cfg, "case-iii", run_id=run_id)  # a retried stage finds nothing left to do
    assert again.changed_records == 0
    last = backfill(spark, cfg, "case-ii", run_id=run_id)
    assert last.details.get("backfill_complete") is True
    properties = table_properties(spark, cfg.control_table)
    assert properties[BACKFILL_MARK] != mark and BACKFILL_PENDING + run_id not in properties
    summary, _ = read_tables(spark, cfg)
    assert summary[(2, "2024-02")]["balance_history"] == [3, 20, N, N]
    assert_matches_model(spark, cfg, raw, base + late)


def test_dry_run_classifies_and_reports_without_changing_any_table(spark, namespace):
    raw, cfg = load(namespace)
    append_source(spark, cfg, [record(1, "2024-01", 1, bal=1), record(1, "2024-02", 1, bal=2)])
    run(spark, cfg, "forward", "2024-01", "2024-02")
    backfill(spark, cfg)
    append_source(spark, cfg, [record(1, "2024-01", 5, bal=9), record(4, "2024-03", 5, bal=4)])
    before = snapshots(spark, cfg)
    report = backfill(spark, cfg, dry_run=True)
    assert report.records_by_case == {"I": 1, "II": 0, "III": 1}
    assert report.rows_written["summary"] == 3 and report.months == ["2024-01", "2024-02", "2024-03"]
    classified = backfill(spark, cfg, "classify", dry_run=True)
    assert classified.accounts_by_case == {"I": 1, "II": 0, "III": 1}
    assert snapshots(spark, cfg) == before, "a dry run commits nothing, anywhere"


def test_the_filter_selects_records_and_is_applied_safely(spark, namespace):
    raw, cfg = load(namespace)
    rows = [record(1, "2024-01", 1, bal=1), record(2, "2024-01", 1, bal=2), record(3, "2024-02", 1, bal=3)]
    append_source(spark, cfg, rows)
    report = backfill(spark, cfg, backfill_filter="acct_id IN (1, 3) AND bal >= 1")
    assert report.records_read == 2
    assert sorted(read_tables(spark, cfg)[0]) == [(1, "2024-01"), (3, "2024-02")]
    assert BACKFILL_MARK not in table_properties(spark, cfg.control_table), "a filtered batch does not move the mark"
    assert_matches_model(spark, cfg, raw, [rows[0], rows[2]])


def _applied_then_late(spark, cfg):
    rows = [record(1, f"2024-0{m}", 1, bal=m) for m in (1, 2, 3)]
    append_source(spark, cfg, rows)
    run(spark, cfg, "forward", "2024-01", "2024-03")
    backfill(spark, cfg)
    late = [record(1, "2024-01", 9, bal=100), record(8, "2024-02", 9, bal=8)]
    append_source(spark, cfg, late)
    return rows, late


def test_a_backfill_that_failed_before_publishing_changed_nothing_and_its_retry_applies_it(spark, namespace, monkeypatch):
    raw, cfg = load(namespace)
    rows, late = _applied_then_late(spark, cfg)
    before = {t: current_snapshot(spark, t)[0] for t in (cfg.summary_table, cfg.latest_table)}

    def fail(*args, **kwargs):
        raise RuntimeError("the driver died after writing summary's rows, before latest_summary's")

    monkeypatch.setattr(writers, "merge_latest", fail)
    with pytest.raises(RuntimeError, match="driver died"):
        backfill(spark, cfg)
    monkeypatch.undo()
    assert {t: current_snapshot(spark, t)[0] for t in before} == before, "readers saw nothing of the failed run"
    assert [b for t in before for b in java_table(spark, t).refs() if b != "main"] == [], "its branches are gone"
    assert table_properties(spark, cfg.control_table).get(BACKFILL_MARK) != str(current_snapshot(spark, cfg.source_table)[0])

    retry = backfill(spark, cfg)
    assert retry.recovered_runs == [] and retry.changed_records == 2, "nothing to finish: the retry applies the batch"
    assert table_properties(spark, cfg.control_table)[BACKFILL_MARK] == str(current_snapshot(spark, cfg.source_table)[0])
    assert_matches_model(spark, cfg, raw, rows + late)


def test_a_backfill_that_failed_while_publishing_is_finished_by_the_retry(spark, namespace, monkeypatch):
    raw, cfg = load(namespace)
    rows, late = _applied_then_late(spark, cfg)
    real_fast_forward = publish.fast_forward

    def die_before_latest(spark_, identifier, branch):
        if identifier == cfg.latest_table:
            raise RuntimeError("the driver died after publishing summary, before latest_summary")
        return real_fast_forward(spark_, identifier, branch)

    monkeypatch.setattr(publish, "fast_forward", die_before_latest)
    with pytest.raises(RuntimeError, match="driver died"):
        backfill(spark, cfg)
    monkeypatch.undo()
    _, latest = read_tables(spark, cfg)
    assert 8 not in latest, "latest_summary was not published yet"

    retry = backfill(spark, cfg)
    assert len(retry.recovered_runs) == 1, "the retry first published latest_summary of the failed run"
    assert retry.changed_records == 0, "then found the batch already applied"
    assert table_properties(spark, cfg.control_table)[BACKFILL_MARK] == str(current_snapshot(spark, cfg.source_table)[0])
    assert not [k for k in table_properties(spark, cfg.control_table) if k.startswith(PUBLISH_PREFIX)], "marks cleared"
    assert_matches_model(spark, cfg, raw, rows + late)
    assert backfill(spark, cfg).records_read == 0, "applying it again reads and changes nothing"


def test_a_classification_reads_only_the_stored_columns_judging_needs_and_judges_the_same(spark, namespace):
    from spark_jobs.names import RECORD_DIGEST
    from spark_jobs.stages.batch import BatchRun
    from spark_jobs.stages.runs import NoLock

    _, cfg = load(namespace)
    _applied_then_late(spark, cfg)
    append_source(spark, cfg, [record(1, "2024-02", 0, bal=999)])  # older than the stored version: stale
    source = spark.table(cfg.source_table).where("ts <> TIMESTAMP '2025-01-02 00:00:00'")  # the late and the stale
    verdicts = {}
    for judge_only in (True, False):
        with BatchRun(spark, cfg, f"judge-{judge_only}", NoLock(), dry_run=True, judge_only=judge_only) as batch:
            winners, _ = batch.winners_from_source(source)
            batch.changed_winners(winners)
            stored_columns = batch.stored.columns
            verdicts[judge_only] = (batch.counts.changed_records, batch.counts.stale_records)
        if judge_only:
            assert stored_columns == [cfg.key_column, cfg.month_column, cfg.version_column, RECORD_DIGEST]
        else:
            assert len(stored_columns) > 5, "the case stages read the scalar columns they recompute from"
    assert verdicts[True] == verdicts[False] == (2, 1)
