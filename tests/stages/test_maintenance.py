"""Maintenance: compaction and expiry change no row, and the v4 month counter says when it is due."""

import os
import time
from pathlib import Path

import pytest

from spark_jobs.names import MONTHS_SINCE_MAINTENANCE
from spark_jobs.report import RunReport
from spark_jobs.stages.maintenance import lists_through_file_io, maintain
from spark_jobs.storage.iceberg import java_table, table_properties
from tests.support import append_source, assert_matches_model, load, read_tables, record, run

pytestmark = pytest.mark.spark


def snapshot_count(spark, table):
    return spark.sql(f"SELECT count(*) FROM {table}.snapshots").first()[0]


def delete_files(spark, table):
    return spark.sql(f"SELECT count(*) FROM {table}.files WHERE content != 0").first()[0]


def test_maintenance_applies_deletes_expires_snapshots_and_changes_no_row(spark, namespace):
    performance = {"min_partitions": 1, "max_partitions": 2, "snapshot_interval": 2, "snapshot_retention_days": 0}
    raw, cfg = load(namespace, performance=performance)
    rows = [record(a, f"2024-0{m}", 1, bal=a * 10 + m) for a in (1, 2, 3) for m in (1, 2, 3)]
    append_source(spark, cfg, rows)
    assert run(spark, cfg, "forward", "2024-01").details["maintenance_due"] is False
    assert run(spark, cfg, "forward", "2024-02", "2024-03").details["maintenance_due"] is True  # 3 months >= interval 2
    fix = [record(1, "2024-01", 5, bal=999)]
    append_source(spark, cfg, fix)
    run(spark, cfg, "forward", "2024-01")  # a correction: merge-on-read delete files in summary
    assert delete_files(spark, cfg.summary_table) > 0
    before = read_tables(spark, cfg)
    lock_snapshots = snapshot_count(spark, cfg.control_table)
    # A file no snapshot refers to, written three days ago (a crashed writer's leftover): an orphan to remove.
    location = java_table(spark, cfg.summary_table).location().removeprefix("file:")
    orphan = Path(location) / "data" / "orphan-from-a-crashed-writer.parquet"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"not referenced by any snapshot")
    three_days_ago = time.time() - 3 * 86400
    os.utime(orphan, (three_days_ago, three_days_ago))

    report = RunReport(mode="maintenance", config=cfg.path, run_id=f"maintenance-{namespace}")
    maintain(spark, cfg, report, lock_wait_seconds=30)

    assert read_tables(spark, cfg) == before
    assert delete_files(spark, cfg.summary_table) == 0, "compaction applied the delete files"
    for table in (cfg.summary_table, cfg.latest_table):
        assert snapshot_count(spark, table) == 1, table
    # The run lock adds snapshots to the control table; after expiry only the reset counter and the release remain.
    assert snapshot_count(spark, cfg.control_table) <= 3 < lock_snapshots
    assert table_properties(spark, cfg.control_table)[MONTHS_SINCE_MAINTENANCE] == "0"
    assert set(report.details["maintenance"]) >= {cfg.summary_table, cfg.latest_table, cfg.control_table}
    assert not orphan.exists()
    assert report.details["maintenance"][cfg.summary_table]["remove_orphan_files"]["removed_files_count"] >= 1
    assert_matches_model(spark, cfg, raw, rows + fix)


def test_object_store_locations_are_listed_through_the_tables_file_io():
    # Hadoop's FileSystem has no s3:// (S3FileIO's scheme) in this product's jars: such tables are listed by prefix.
    assert [lists_through_file_io(x) for x in ("s3://b/t", "gs://b/t", "abfss://c@a/t", "S3://b/t")] == [True] * 4
    assert [lists_through_file_io(x) for x in ("/tmp/w/t", "file:/tmp/w/t", "hdfs://nn/w/t")] == [False] * 3
