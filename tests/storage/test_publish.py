"""Run branches (spark_jobs/storage/publish.py): invisible until published, published whole, recovered from metadata.

Also the rows an earlier version left in ``<summary>_staging``: the next run finishes them.
"""

import pytest
from pyspark.sql import functions as F

from spark_jobs.errors import ConcurrentRunError
from spark_jobs.names import INSERT, PUBLISH_PREFIX, RUN_ID
from spark_jobs.report import RunReport
from spark_jobs.stages.maintenance import maintain
from spark_jobs.storage import publish
from spark_jobs.storage.iceberg import current_snapshot, java_table, table_properties
from spark_jobs.storage.publish import RunBranches, branch_name
from spark_jobs.storage.runlock import RunLock
from spark_jobs.storage.tables import create_table, small_table_properties
from tests.support import append_source, assert_matches_model, load, read_tables, record, run

pytestmark = pytest.mark.spark


def branches_of(spark, identifier):
    return sorted(name for name in java_table(spark, identifier).refs() if name != "main")


def loaded(spark, namespace):
    raw, cfg = load(namespace)
    rows = [record(1, "2024-01", 1, bal=10), record(2, "2024-01", 1, bal=20)]
    append_source(spark, cfg, rows)
    run(spark, cfg, "initial", "2024-01")
    return raw, cfg, rows


def test_a_branch_name_is_an_identifier_part_whatever_the_run_id():
    assert branch_name("forward-20261201T120000-ab12cd34-2024-03") == "run_forward_20261201T120000_ab12cd34_2024_03"


def test_rows_on_the_branches_stay_invisible_until_both_tables_are_published(spark, namespace):
    _, cfg, _ = loaded(spark, namespace)
    before = {t: current_snapshot(spark, t)[0] for t in (cfg.summary_table, cfg.latest_table)}
    branches = RunBranches(spark, cfg, "test-run-1")
    branches.open()
    new_row = spark.table(cfg.summary_table).where(F.col("acct") == 1).withColumn("month", F.lit("2024-02"))
    new_row.writeTo(branches.target(cfg.summary_table)).append()
    others = spark.table(cfg.latest_table).where(F.col("acct") != 1)
    others.unionByName(new_row).localCheckpoint().writeTo(branches.target(cfg.latest_table)).overwrite(F.lit(True))
    assert {t: current_snapshot(spark, t)[0] for t in before} == before, "main of both tables unchanged"
    assert spark.table(branches.target(cfg.summary_table)).count() == 3

    with RunLock(spark, cfg, "test-run-1") as lock:
        branches.publish(lock)
    summary, latest = read_tables(spark, cfg)
    assert (1, "2024-02") in summary and {k: r["month"] for k, r in latest.items()} == {1: "2024-02", 2: "2024-01"}
    assert branches_of(spark, cfg.summary_table) == branches_of(spark, cfg.latest_table) == []
    assert not [k for k in table_properties(spark, cfg.control_table) if k.startswith(PUBLISH_PREFIX)], "mark cleared"


def _one_new_row(spark, cfg):
    return spark.table(cfg.summary_table).where(F.col("acct") == 1).withColumn("month", F.lit("2024-02"))


def test_leaving_the_block_publishes_both_tables(spark, namespace):
    _, cfg, _ = loaded(spark, namespace)
    with RunLock(spark, cfg, "test-run-block") as lock:
        with RunBranches(spark, cfg, "test-run-block", lock) as branches:
            _one_new_row(spark, cfg).writeTo(branches.target(cfg.summary_table)).append()
            assert branches_of(spark, cfg.summary_table) == [branch_name("test-run-block")]
    summary, _ = read_tables(spark, cfg)
    assert (1, "2024-02") in summary
    assert branches_of(spark, cfg.summary_table) == branches_of(spark, cfg.latest_table) == []


@pytest.mark.parametrize("how", ["error", "abandon"])
def test_an_error_or_abandon_in_the_block_removes_the_branches_and_publishes_nothing(spark, namespace, how):
    _, cfg, _ = loaded(spark, namespace)
    before = {t: current_snapshot(spark, t)[0] for t in (cfg.summary_table, cfg.latest_table)}
    with RunLock(spark, cfg, "test-run-3") as lock:
        try:
            with RunBranches(spark, cfg, "test-run-3", lock) as branches:
                _one_new_row(spark, cfg).writeTo(branches.target(cfg.summary_table)).append()
                if how == "abandon":
                    branches.abandon()
                else:
                    raise RuntimeError("the batch failed after writing")
        except RuntimeError:
            assert how == "error"
    assert {t: current_snapshot(spark, t)[0] for t in before} == before, "main of both tables unchanged"
    assert branches_of(spark, cfg.summary_table) == branches_of(spark, cfg.latest_table) == []
    assert not [
        k
        for k in table_properties(spark, cfg.control_table)
        if k.startswith(PUBLISH_PREFIX) and table_properties(spark, cfg.control_table)[k]
    ]


def test_a_block_entered_without_the_lock_opens_no_branch(spark, namespace):
    _, cfg, _ = loaded(spark, namespace)
    with RunLock(spark, cfg, "test-run-4") as lock:
        mine, lock.token = lock.token, None  # (as a holder whose lease ran out)
        with pytest.raises(ConcurrentRunError, match="does not hold the lock"):
            with RunBranches(spark, cfg, "test-run-4", lock):
                pytest.fail("the block must not run")
        lock.token = mine
    assert branches_of(spark, cfg.summary_table) == branches_of(spark, cfg.latest_table) == []


def test_a_run_that_lost_the_lock_cannot_decide_to_publish(spark, namespace):
    _, cfg, _ = loaded(spark, namespace)
    branches = RunBranches(spark, cfg, "test-run-2")
    branches.open()
    with RunLock(spark, cfg, "test-run-2") as lock:
        lock.token = "taken-by-someone-else"  # what a holder finds after its lease ran out and another took it
        with pytest.raises(ConcurrentRunError, match="nothing was published"):
            branches.publish(lock)
        lock.token = None  # (releasing must not touch the other holder's lock)
    assert not [k for k in table_properties(spark, cfg.control_table) if k.startswith(PUBLISH_PREFIX)]


def test_a_decided_publication_is_finished_by_the_next_lock_holder_from_metadata(spark, namespace, monkeypatch):
    raw, cfg, rows = loaded(spark, namespace)
    late = [record(1, "2024-02", 2, bal=12)]
    append_source(spark, cfg, late)

    def die(spark_, identifier, branch):
        raise RuntimeError("killed after deciding, before publishing anything")

    monkeypatch.setattr(publish, "fast_forward", die)
    with pytest.raises(RuntimeError, match="killed after deciding"):
        run(spark, cfg, "forward", "2024-02")
    monkeypatch.undo()
    marks = {k: v for k, v in table_properties(spark, cfg.control_table).items() if k.startswith(PUBLISH_PREFIX)}
    assert len(marks) == 1 and list(marks.values())[0].startswith("forward-"), marks
    branch = list(marks)[0][len(PUBLISH_PREFIX) :]
    assert branches_of(spark, cfg.summary_table) == branches_of(spark, cfg.latest_table) == [branch]

    report = run(spark, cfg, "forward", "2024-02")
    assert report.recovered_runs == list(marks.values()) and report.changed_records == 0
    assert branches_of(spark, cfg.summary_table) == branches_of(spark, cfg.latest_table) == []
    assert_matches_model(spark, cfg, raw, rows + late)


def test_maintenance_removes_the_branches_of_runs_that_never_decided(spark, namespace):
    _, cfg, _ = loaded(spark, namespace)
    RunBranches(spark, cfg, "died-before-deciding").open()
    assert branches_of(spark, cfg.summary_table) == [branch_name("died-before-deciding")]
    report = RunReport(mode="maintenance", config=cfg.path, run_id="maintenance-test")
    maintain(spark, cfg, report, lock_wait_seconds=30)
    assert branches_of(spark, cfg.summary_table) == branches_of(spark, cfg.latest_table) == []
    assert report.details["maintenance"][cfg.summary_table]["removed_run_branches"] == 1


def test_rows_an_earlier_version_left_staged_are_finished_by_the_next_run(spark, namespace):
    """Versions before the run branches staged a run's rows first; one that died after staging left them there."""
    raw, cfg = load(namespace)
    rows = [record(1, "2024-01", 1, bal=10), record(1, "2024-02", 1, bal=11), record(2, "2024-01", 1, bal=20)]
    append_source(spark, cfg, rows)
    run(spark, cfg, "initial", "2024-01", "2024-02")
    # What that version staged for month 2024-02: the rows this version computed (taken back out of the tables).
    computed = spark.table(cfg.summary_table).where(F.col("month") == "2024-02").localCheckpoint()
    assert computed.count() == 1
    spark.sql(f"DELETE FROM {cfg.summary_table} WHERE month = '2024-02'")
    spark.table(cfg.summary_table).localCheckpoint().writeTo(cfg.latest_table).overwrite(F.lit(True))  # all of month 2024-01
    staged = computed.withColumn(INSERT, F.lit(True)).withColumn(
        RUN_ID, F.lit("forward-old-version")
    )  # that version's staging schema
    create_table(spark, cfg, "staging", cfg.staging_table, staged.schema, small_table_properties(cfg), (RUN_ID,))
    staged.writeTo(cfg.staging_table).append()

    report = run(spark, cfg, "forward", "2024-02")
    assert report.recovered_runs == ["forward-old-version"] and report.changed_records == 0
    assert spark.table(cfg.staging_table).count() == 0
    assert_matches_model(spark, cfg, raw, rows)
