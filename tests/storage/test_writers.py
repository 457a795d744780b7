"""Writers: whole-table overwrites of latest_summary keep what was committed after the rows were computed."""

import pytest

from spark_jobs.storage.iceberg import current_snapshot
from spark_jobs.storage.writers import overwrite_unless_changed

pytestmark = pytest.mark.spark


def test_an_overwrite_refuses_to_drop_a_commit_made_after_its_decision(spark, namespace):
    table = f"local.{namespace}.latest_like"
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS local.{namespace}")
    spark.sql(f"CREATE TABLE {table} (acct bigint, month string) USING iceberg")
    spark.sql(f"INSERT INTO {table} VALUES (1, '2024-01')")
    decided_on, _ = current_snapshot(spark, table)
    replacement = spark.createDataFrame([(1, "2024-02")], "acct bigint, month string")

    spark.sql(f"INSERT INTO {table} VALUES (2, '2024-01')")  # a writer that is not this run, in between
    with pytest.raises(Exception, match="(?i)found conflicting files|validation"):
        overwrite_unless_changed(replacement, table, decided_on)
    assert sorted(tuple(r) for r in spark.table(table).collect()) == [(1, "2024-01"), (2, "2024-01")], "nothing lost"

    overwrite_unless_changed(replacement, table, current_snapshot(spark, table)[0])  # decided on what is there now
    assert [tuple(r) for r in spark.table(table).collect()] == [(1, "2024-02")]
