"""A real stage task through spark-submit: it prunes old event logs and its config's old reports before it runs,
and the event log it writes hides the catalog credentials it was given (read back from the zstd-compressed log)."""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from spark_jobs.config import load_config
from summary_airflow import settings
from tests.airflow.test_stage_operator import TaskInstance
from tests.cli_support import write_config

pytestmark = [pytest.mark.airflow, pytest.mark.spark, pytest.mark.slow]

DAY = 86400
SECRET_CONF = {
    "spark.sql.catalog.zz.s3.access-key-id": "AKIASTAGEID0001",
    "spark.sql.catalog.zz.credential": "client:CLIENTSTAGEVAL0002",
    "spark.sql.catalog.zz.uri": "https://u:STAGEPW0003@rest.example.com/catalog",
    "spark.sql.catalog.zz.header.Authorization": "Basic STAGEHDR0004",
}


def _aged(path, days):
    stamp = time.time() - days * DAY
    os.utime(path, (stamp, stamp))
    return path


def _event_log_lines(folder: Path) -> list[str]:
    import zstandard

    lines = []
    for part in sorted(folder.glob("events_*")):
        data = part.read_bytes()
        if part.suffix == ".zstd":
            data = zstandard.ZstdDecompressor().stream_reader(data).read()
        lines += data.decode("utf-8", errors="replace").splitlines()
    return lines


def test_a_stage_prunes_old_files_and_its_event_log_hides_catalog_credentials(spark_warehouse, namespace, tmp_path, monkeypatch):
    pytest.importorskip("zstandard")
    from summary_airflow.operators import SummaryStageOperator

    config = write_config(tmp_path, namespace)
    cfg = load_config(config)
    events, reports = tmp_path / "events", tmp_path / "reports"
    old_log = events / "eventlog_v2_local-1600000000000"
    old_log.mkdir(parents=True)
    (old_log / "events_1_local-1600000000000.zstd").write_bytes(b"old")
    _aged(old_log / "events_1_local-1600000000000.zstd", 20)
    _aged(old_log, 20)
    reports.mkdir()
    old_report = reports / settings.report_file_name(settings.dag_id(cfg.name, "forward"), "t", "old", 1)
    old_report.write_text("{}")
    _aged(old_report, 100)
    others = reports / settings.report_file_name("someone_else_forward", "t", "old", 1)
    others.write_text("{}")
    _aged(others, 100)

    monkeypatch.setenv("SUMMARY_WAREHOUSE", str(spark_warehouse))
    monkeypatch.setenv("SUMMARY_SPARK_EVENT_LOG_DIR", str(events))
    monkeypatch.setenv("SUMMARY_REPORTS_DIR", str(reports))
    monkeypatch.setenv("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_SUMMARY", json.dumps({"conn_type": "spark", "host": "local[1]"}))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    operator = SummaryStageOperator(task_id="describe", config_path=config, stage="describe", conf=dict(SECRET_CONF))
    ti = TaskInstance(dag_id=settings.dag_id(cfg.name, "maintenance"), task_id="describe", run_id="manual__1", try_number=1)
    report = operator.execute({"params": {}, "ti": ti, "dag_run": None})

    assert not old_log.exists() and not old_report.exists(), "old event logs and this config's old reports are pruned"
    assert others.exists(), "another config's reports are not this config's to prune"
    app_id = report["details"]["spark"]["application_id"]
    written = events / f"eventlog_v2_{app_id}"
    assert [p.name for p in events.iterdir()] == [written.name]

    lines = _event_log_lines(written)
    text = "\n".join(lines)
    assert lines and all(
        marker not in text for marker in ("AKIASTAGEID0001", "CLIENTSTAGEVAL0002", "STAGEPW0003", "STAGEHDR0004")
    )
    environment = next(json.loads(line) for line in lines if '"SparkListenerEnvironmentUpdate"' in line)
    properties = dict(environment["Spark Properties"])
    for key in SECRET_CONF:
        assert properties[key] == "*********(redacted)", key
    assert properties["spark.sql.catalog.zz.uri"] == "*********(redacted)"
    catalog = properties["spark.sql.defaultCatalog"]
    assert properties[f"spark.sql.catalog.{catalog}.type"] == "jdbc", "the catalog's other keys stay readable"
    assert properties[f"spark.sql.catalog.{catalog}.uri"].startswith("jdbc:sqlite:"), "a uri without userinfo stays"
