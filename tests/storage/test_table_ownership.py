"""The pipeline deletes from, merges into and locks only tables tagged as its own (spark_jobs/storage/tables.py).

A table that merely has one of the derived names (``<destination>_backfill``,
``_staging``, ``_rejects``, ``_control``) is refused with a message naming it,
and keeps every row; tables created before tags existed are adopted.
"""

import re

import pytest

from spark_jobs.errors import SourceDataError
from spark_jobs.names import TABLE_CONFIG, TABLE_OWNER, TABLE_ROLE
from spark_jobs.storage.iceberg import table_properties
from tests.stages.test_backfill import backfill
from tests.support import append_source, assert_matches_model, load, record, run

pytestmark = pytest.mark.spark


@pytest.mark.faults
@pytest.mark.parametrize("suffix", ["_backfill", "_staging", "_rejects", "_control"])
def test_a_foreign_table_with_a_derived_name_is_refused_and_keeps_its_rows(spark, namespace, suffix, tally):
    _, cfg = load(namespace)
    foreign = cfg.summary_table + suffix
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS local.{namespace}")
    spark.sql(f"CREATE TABLE {foreign} (id bigint, note string) USING iceberg")
    spark.sql(f"INSERT INTO {foreign} VALUES (1, 'somebody else''s data'), (2, 'more')")
    append_source(spark, cfg, [record(1, "2024-01", 1, bal=1)])
    with pytest.raises(SourceDataError, match=f"table {foreign} exists, but it was not created by the summary pipeline"):
        backfill(spark, cfg, stage="classify")
    assert spark.table(foreign).count() == 2
    tally.add("bad input: a table with a derived name")


def test_a_table_of_another_config_is_refused_by_its_tag(spark, namespace):
    raw, cfg = load(namespace)
    append_source(spark, cfg, [record(1, "2024-01", 1, bal=1)])
    run(spark, cfg, "forward", "2024-01")
    # a second config whose latest table is the first one's rejects table (another folder, so no load-time check)
    _, other = load(namespace, destination_table=f"local.{namespace}.other", latest_history_table=cfg.rejects_table)
    with pytest.raises(SourceDataError, match=f"it is the rejects table of local.{namespace}.summary, not the latest_summary"):
        run(spark, other, "forward", "2024-01")


def test_tables_created_before_tags_are_adopted(spark, namespace):
    raw, cfg = load(namespace)
    rows = [record(1, "2024-01", 1, bal=1), record(1, "2024-02", 1, bal=2)]
    append_source(spark, cfg, rows[:1])
    run(spark, cfg, "forward", "2024-01")
    backfill(spark, cfg, stage="classify")
    tables = [t for t in (cfg.summary_table, cfg.latest_table, *cfg.derived_tables) if spark.catalog.tableExists(t)]
    for table in tables:  # as an older version left them
        spark.sql(f"ALTER TABLE {table} UNSET TBLPROPERTIES ('{TABLE_ROLE}', '{TABLE_OWNER}', '{TABLE_CONFIG}')")
    append_source(spark, cfg, rows[1:])
    run(spark, cfg, "forward", "2024-02")
    backfill(spark, cfg, stage="classify")
    assert {t: table_properties(spark, t).get(TABLE_ROLE) for t in tables} == {
        cfg.summary_table: "summary",
        cfg.latest_table: "latest_summary",
        cfg.rejects_table: "rejects",
        cfg.backfill_table: "backfill",
        cfg.control_table: "control",
    }
    assert_matches_model(spark, cfg, raw, rows)


def test_a_copied_config_that_kept_the_destination_is_refused_and_changes_nothing(spark, namespace):
    """A new config copied from a running one, renamed but with its tables: its jobs must not touch them."""
    raw, cfg = load(namespace, name="cards")
    append_source(spark, cfg, [record(1, "2024-01", 1, bal=1)])
    run(spark, cfg, "forward", "2024-01")
    before = {t: table_properties(spark, t).get("current-snapshot-id") for t in (cfg.summary_table, cfg.latest_table)}
    snapshots = {t: spark.sql(f"SELECT count(*) FROM {t}.snapshots").first()[0] for t in before}
    _, copy = load(namespace, name="copied_config")
    append_source(spark, cfg, [record(2, "2024-02", 1, bal=5)])
    with pytest.raises(SourceDataError, match=re.escape(f"of the config named {cfg.name!r}, not of 'copied_config'")):
        run(spark, copy, "forward", "2024-02")
    with pytest.raises(SourceDataError, match="not of 'copied_config'"):
        backfill(spark, copy, stage="classify")
    assert {t: spark.sql(f"SELECT count(*) FROM {t}.snapshots").first()[0] for t in before} == snapshots
    assert_matches_model(spark, cfg, raw, [record(1, "2024-01", 1, bal=1)])


def test_tables_tagged_before_config_names_are_claimed_by_the_config_that_runs(spark, namespace):
    raw, cfg = load(namespace, name="cards")
    rows = [record(1, "2024-01", 1, bal=1), record(1, "2024-02", 1, bal=2)]
    append_source(spark, cfg, rows[:1])
    run(spark, cfg, "forward", "2024-01")
    for table in (cfg.summary_table, cfg.latest_table, cfg.control_table):
        spark.sql(f"ALTER TABLE {table} UNSET TBLPROPERTIES ('{TABLE_CONFIG}')")  # as the previous version left them
    append_source(spark, cfg, rows[1:])
    run(spark, cfg, "forward", "2024-02")
    names = {t: table_properties(spark, t).get(TABLE_CONFIG) for t in (cfg.summary_table, cfg.latest_table, cfg.control_table)}
    assert set(names.values()) == {cfg.name}
    assert_matches_model(spark, cfg, raw, rows)


def test_a_config_without_a_name_is_told_apart_by_its_destination_only(spark, namespace):
    """v4 files carry no `name` (it is the file's stem): the same pipeline run from a copy with another file name
    is the same pipeline, and its tables carry no config name to disagree with."""
    raw, cfg = load(namespace)
    assert not cfg.named
    rows = [record(1, "2024-01", 1, bal=1), record(1, "2024-02", 1, bal=2)]
    append_source(spark, cfg, rows[:1])
    run(spark, cfg, "forward", "2024-01")
    assert TABLE_CONFIG not in table_properties(spark, cfg.summary_table)
    from spark_jobs.config import config_from_dict

    elsewhere = config_from_dict(raw, "/etc/summary/cards_copy.json")
    assert elsewhere.name != cfg.name
    append_source(spark, cfg, rows[1:])
    run(spark, elsewhere, "forward", "2024-02")
    assert_matches_model(spark, cfg, raw, rows)


def test_the_tables_say_which_version_created_them_and_the_control_table_which_ran_last(spark, namespace):
    from importlib.metadata import version

    from spark_jobs.names import CREATED_BY_VERSION, LAST_RUN_VERSION

    installed = version("summary-pipeline")  # what pip installed, not a constant the code could share with itself
    _, cfg = load(namespace)
    append_source(spark, cfg, [record(1, "2024-01", 1, bal=1)])
    report = run(spark, cfg, "forward", "2024-01")
    assert report.as_dict()["version"] == installed
    for table in (cfg.summary_table, cfg.latest_table, cfg.control_table):
        assert table_properties(spark, table)[CREATED_BY_VERSION] == installed, table
    control = table_properties(spark, cfg.control_table)
    assert control[LAST_RUN_VERSION] == installed
    assert not any(v for k, v in control.items() if k.startswith("summary-pipeline.lock.token")), "the lock was released"
