"""The v4 command line through real spark-submit, as users and Airflow run it.

Each test writes its config (the model test config in a fresh namespace) and
Parquet files, runs ``.venv/bin/spark-submit spark_jobs/summary_pipeline.py``
against the shared test warehouse, and checks the tables with the in-process
session and the plain-Python model.
"""

import json
import sys

import pyarrow as pa
import pytest

from tests.cli_support import ARROW_SCHEMA, submit, write_config, write_parquet
from tests.support import assert_matches_model, load, read_tables, record

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_v4_commands_work_as_written_and_report_last(spark, spark_warehouse, namespace, tmp_path):
    raw, cfg = load(namespace)
    config = write_config(tmp_path, namespace)
    rows = [record(a, f"2024-0{m}", 1, bal=a * 10 + m, dpd=m * 10) for a in (1, 2, 3) for m in range(1, 8) if (a, m) != (2, 3)]
    rows += [record(None, "2024-02", 1, bal=5), record(4, "2024-2", 1, bal=6)]  # no key; malformed month
    data = write_parquet(tmp_path / "accounts.parquet", rows)

    code, report, _ = submit(config, spark_warehouse, "--mode", "ingest", "--path", str(data))
    assert report["status"] == "ok" and report["rows_written"]["source"] == len(rows) - 1, "not the malformed month"
    assert report["records_rejected"] == 2
    code, report, _ = submit(config, spark_warehouse, "--mode", "ingest", "--path", str(data))
    assert report["rows_written"]["source"] == 0, "the same file ingested twice is appended once"

    report_file = tmp_path / "initial.json"
    code, report, _ = submit(
        config, spark_warehouse, "--mode", "initial", "--start-month", "2024-01", "--end-month", "2024-06",
        "--report-file", str(report_file),
    )  # fmt: skip
    assert json.loads(report_file.read_text()) == report
    assert report["records_read"] == 18 and report["rows_written"]["summary"] == 17
    assert report["rows_written"]["latest_summary"] == 3 and report["records_by_case"]["I"] == 17

    code, report, _ = submit(
        config,
        spark_warehouse,
        "--mode",
        "forward",
        "--start-month",
        "2024-07",
        "--end-month",
        "2024-07",
        runner=[sys.executable],
    )  # fmt: skip  -- `python spark_jobs/summary_pipeline.py` works the same
    assert report["records_by_case"]["II"] == 3 and report["rows_written"] == {
        "summary": 3, "latest_summary": 3, "rejects": 0, "source": 0,
    }  # fmt: skip
    read = [r for r in rows if r["rpt_mo"] <= "2024-07"]
    assert_matches_model(spark, cfg, raw, read)
    assert {r.record_key for r in spark.table(cfg.rejects_table).collect()} == {None, "4"}


def test_ingest_refuses_files_that_do_not_fit_and_names_them(spark, spark_warehouse, namespace, tmp_path):
    _, cfg = load(namespace)
    config = write_config(tmp_path, namespace)
    good = write_parquet(tmp_path / "good.parquet", [record(1, "2024-01", 1, bal=1)])
    missing = pa.schema([f for f in ARROW_SCHEMA if f.name != "member"])
    no_member = write_parquet(tmp_path / "no_member.parquet", [record(2, "2024-01", 1)], missing)
    wrong_type = pa.schema([pa.field("bal", pa.string()) if f.name == "bal" else f for f in ARROW_SCHEMA])
    text_balance = write_parquet(tmp_path / "text_balance.parquet", [dict(record(3, "2024-01", 1), bal="12")], wrong_type)

    code, report, _ = submit(config, spark_warehouse, "--mode", "ingest", "--path", str(no_member), check=False)
    assert code == 2 and report["status"] == "failed"
    assert "no_member.parquet" in report["error"] and "['member']" in report["error"]
    assert not spark.catalog.tableExists(cfg.source_table), "no table is created from a file that lacks config columns"

    # one process: the good file lands, then the next one is refused by name and the run exits 2
    both = (str(good), str(text_balance))
    code, report, output = submit(config, spark_warehouse, "--mode", "ingest", "--path", *both, check=False)
    assert code == 2
    assert "text_balance.parquet" in output and "column 'bal' is string but the source table has int" in report["error"]
    assert spark.table(cfg.source_table).count() == 1


def test_config_errors_stop_the_job_at_start_naming_file_and_key(spark_warehouse, namespace, tmp_path):
    config = write_config(tmp_path, namespace)
    raw = json.loads(config.read_text())
    raw["inferred_columns"][0]["mapper_expr"] = "CASE WHEN dpd < 30 THEN '0' ELSE"  # balanced, but not SQL
    raw["rolling_columns"][0]["type"] = "Float"
    config.write_text(json.dumps(raw))
    # refused before Spark starts: `python spark_jobs/summary_pipeline.py` shows it without a JVM
    code, report, output = submit(config, spark_warehouse, "--mode", "forward", "--start-month", "2024-01", check=False,
                                  runner=[sys.executable])  # fmt: skip
    assert code == 2 and f"{config}: rolling_columns[0].type: unsupported rolling column type 'Float'" in output

    raw["rolling_columns"][0]["type"] = "Integer"
    config.write_text(json.dumps(raw))
    code, report, output = submit(config, spark_warehouse, "--mode", "forward", "--start-month", "2024-01", check=False)
    assert code == 2 and f"{config}: inferred_columns[0].mapper_expr: it is not one SQL expression" in report["error"]


@pytest.mark.extended  # the fault tier's forward test kills the same way, and more (tests/faults/test_kill_points.py)
def test_a_run_killed_between_its_commits_is_repaired_by_the_next_run(spark, spark_warehouse, namespace, tmp_path):
    raw, cfg = load(namespace)
    config = write_config(tmp_path, namespace)
    rows = [record(a, f"2024-0{m}", 1, bal=a * 100 + m) for a in (1, 2) for m in (1, 2, 3)]
    submit(config, spark_warehouse, "--mode", "ingest", "--path", str(write_parquet(tmp_path / "a.parquet", rows)))
    submit(config, spark_warehouse, "--mode", "initial", "--start-month", "2024-01", "--end-month", "2024-01")

    crash = {"SUMMARY_PIPELINE_CRASH_AT": "after_summary_published"}
    code, _, _ = submit(config, spark_warehouse, "--mode", "forward", "--start-month", "2024-02", env=crash, check=False)
    assert code != 0
    summary, latest = read_tables(spark, cfg)
    assert (1, "2024-02") in summary and latest[1]["month"] == "2024-01", "killed between publishing the two tables"

    # A different run (the next month) comes first: it must finish the dead run before building on it.
    code, report, _ = submit(config, spark_warehouse, "--mode", "forward", "--start-month", "2024-03")
    assert len(report["recovered_runs"]) == 1 and report["recovered_runs"][0].startswith("forward-")
    code, report, _ = submit(config, spark_warehouse, "--mode", "forward", "--start-month", "2024-02")
    assert report["changed_records"] == 0 and report["recovered_runs"] == []
    assert_matches_model(spark, cfg, raw, rows)


def test_driver_memory_in_the_config_must_reach_spark_submit_or_the_stage_refuses(spark, spark_warehouse, namespace, tmp_path):
    """A running driver cannot grow its heap: the Airflow operator passes it (test_dag_integrity); a hand-run stage
    without it is refused, naming the key, before it reads anything."""
    from tests.cli_support import SPARK_SUBMIT
    from tests.support import append_source

    _, cfg = load(namespace)
    append_source(spark, cfg, [record(1, "2024-01", 1, bal=1)])
    config = write_config(tmp_path, namespace, spark_config={"conf": {"spark.driver.memory": "1200m"}})
    code, report, _ = submit(config, spark_warehouse, "--mode", "describe", check=False)
    assert code == 2, report
    assert (
        report["error"].startswith(f"invalid summary config {config}")
        and "spark_config.conf.spark.driver.memory: 1200m" in report["error"]
    )
    assert "--conf spark.driver.memory=1200m" in report["error"]
    given = [SPARK_SUBMIT, "--conf", "spark.driver.memory=1228800k"]  # the same size, another spelling
    code, report, _ = submit(config, spark_warehouse, "--mode", "describe", runner=given)
    assert code == 0 and report["status"] == "ok", report
