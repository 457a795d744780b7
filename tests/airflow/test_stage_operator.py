"""SummaryStageOperator with real spark-submit runs: it retries only what a retry can fix.

Bad input (exit 2) and broken table rules (exit 3) would fail the same way
again: the task fails at once, without its retries. A busy lock (exit 4) or
an unexpected failure (exit 1, or no report at all: a killed process) is
retried, since every stage is safe to run again.
"""

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from spark_jobs.names import EXIT_BAD_INPUT, EXIT_LOCK_HELD
from tests.cli_support import write_config
from tests.live.services import free_port, wait_for
from tests.support import append_source, load, record

pytestmark = [pytest.mark.airflow, pytest.mark.spark, pytest.mark.slow]


class TaskInstance(SimpleNamespace):
    """What the operator uses of its context's task instance: ids for the report file, XCom pull and push."""

    def xcom_pull(self, task_ids=None):
        return None

    def xcom_push(self, key, value):
        self.pushed[key] = value


def run_stage(config, stage, params, tmp_path, monkeypatch, operators=None, ti=None, **operator_kwargs):
    from summary_airflow.operators import SummaryStageOperator

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_SUMMARY", json.dumps({"conn_type": "spark", "host": "local[1]"}))
    monkeypatch.setenv("SUMMARY_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    operator = SummaryStageOperator(
        task_id=stage,
        config_path=config,
        stage=stage,
        months="params",
        backfill_params=True,
        lock_wait_seconds=0,
        **operator_kwargs,
    )
    ti = ti or TaskInstance(dag_id="test", task_id=stage, run_id="manual__2024-07-01T00:00:00+00:00", try_number=1, pushed={})
    if operators is not None:
        operators.append(operator)
    return operator.execute({"params": params, "ti": ti, "dag_run": None})


def test_bad_input_fails_without_retries_and_a_busy_lock_is_retried(spark, spark_warehouse, namespace, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from spark_jobs.names import LOCK_PREFIX
    from spark_jobs.storage.iceberg import update_properties
    from tests.stages.test_backfill import backfill

    raw, cfg = load(namespace)
    append_source(spark, cfg, [record(1, "2024-01", 1, bal=1)])
    backfill(spark, cfg)
    config = write_config(tmp_path, namespace)
    monkeypatch.setenv("SUMMARY_WAREHOUSE", str(spark_warehouse))

    hostile = {"backfill_filter": "IDENTIFIER('reflect')('java.lang.System', 'getProperty', 'java.home') IS NULL"}
    refused = TaskInstance(dag_id="test", task_id="classify", run_id="manual__1", try_number=1, pushed={})
    with pytest.raises(AirflowFailException, match=f"exit code {EXIT_BAD_INPUT}, not retried: .*IDENTIFIER"):
        run_stage(config, "classify", hostile, tmp_path, monkeypatch, ti=refused)
    # a failed task has no return value: its report is pushed under its own key, for the UI's XCom tab
    assert refused.pushed["report"]["exit_code"] == EXIT_BAD_INPUT and "IDENTIFIER" in refused.pushed["report"]["error"]

    holder = {
        LOCK_PREFIX + "token": "t",
        LOCK_PREFIX + "owner": "other-run",
        LOCK_PREFIX + "host": "elsewhere",
        LOCK_PREFIX + "expires-at": "4e9",
    }
    update_properties(spark, cfg.control_table, lambda _: holder)
    monkeypatch.setenv("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1")
    operators = []
    with pytest.raises(AirflowException) as busy:
        run_stage(config, "maintenance", {}, tmp_path, monkeypatch, operators)
    # The jars went by --jars (to the driver and every executor), not only the driver's class loader.
    command = operators[0]._hook._build_spark_submit_command(operators[0].application)
    jars = command[command.index("--jars") + 1].split(",")
    assert any(Path(j).name.startswith("iceberg-spark-runtime-") and Path(j).exists() for j in jars), command
    assert not isinstance(busy.value, AirflowFailException), "a busy lock is worth a retry"
    report = json.loads(next((tmp_path / "reports").glob("test.maintenance.*.json")).read_text())
    assert report["exit_code"] == EXIT_LOCK_HELD and "in use by run other-run" in report["error"]


def test_a_stage_says_where_its_spark_ui_is_and_keeps_its_event_log(spark, spark_warehouse, namespace, tmp_path, monkeypatch):
    """The same stage, of a config with spark_config.quick_start: its event log shows what that asks for."""
    raw, cfg = load(namespace)
    append_source(spark, cfg, [record(1, "2024-01", 1, bal=1)])
    config = write_config(tmp_path, namespace, spark_config={"quick_start": True})
    monkeypatch.setenv("SUMMARY_WAREHOUSE", str(spark_warehouse))
    monkeypatch.setenv("SUMMARY_SPARK_EVENT_LOG_DIR", str(tmp_path / "events"))
    plain_events = {"spark.eventLog.compress": "false"}  # (the DAG author's conf reaches spark-submit too)
    operators = []
    report = run_stage(config, "describe", {}, tmp_path, monkeypatch, operators, quick_start=True, conf=plain_events)
    spark_facts = report["details"]["spark"]
    assert spark_facts["application_id"].startswith("local-") and spark_facts["ui_url"].startswith("http://")
    assert spark_facts["application_name"] == f"summary-{namespace}-describe"  # the UI and history server say whose
    assert spark_facts["event_log"] == f"{(tmp_path / 'events').as_uri()}/eventlog_v2_{spark_facts['application_id']}".replace(
        "file:///", "file:/"
    )
    written = [p.name for p in (tmp_path / "events").iterdir()]
    assert written == [f"eventlog_v2_{spark_facts['application_id']}"], written  # a rolling log: one folder per stage
    properties = spark_properties(tmp_path / "events" / written[0])
    assert "-XX:TieredStopAtLevel=1" in properties["spark.driver.extraJavaOptions"].split()
    assert properties["spark.sql.codegen.factoryMode"] == "NO_CODEGEN"
    assert properties["spark.sql.codegen.wholeStage"] == "false"

    # The task's "Spark application" link, as Airflow computes it when the task ends: the stage in a real history
    # server over the event-log folder (none without SUMMARY_SPARK_HISTORY_URL: the stage's own UI is gone by then).
    from summary_airflow.operators import SparkApplicationLink

    link = SparkApplicationLink()
    assert link.get_link(operators[0], ti_key=None) == ""
    with history_server(tmp_path / "events") as history:
        monkeypatch.setenv("SUMMARY_SPARK_HISTORY_URL", history + "/")
        url = link.get_link(operators[0], ti_key=None)
        assert url == f"{history}/history/{spark_facts['application_id']}/jobs/"
        listed = wait_for("the history server to list the stage", lambda: _get(f"{history}/api/v1/applications"), 120, 1)
        found = {a["id"]: a["name"] for a in json.loads(listed)}
        assert found.get(spark_facts["application_id"]) == f"summary-{namespace}-describe", found
        assert "Spark Jobs" in _get(url)  # the link opens that application's jobs page


@contextlib.contextmanager
def history_server(event_logs):
    """Spark's own history server (pyspark's spark-class) over ``event_logs``, on a free loopback port."""
    import pyspark

    port = free_port()
    options = " ".join(
        (f"-Dspark.history.fs.logDirectory={event_logs.as_uri()}", f"-Dspark.history.ui.port={port}",
         "-Dspark.history.fs.update.interval=1s")
    )  # fmt: skip
    process = subprocess.Popen(
        [str(Path(pyspark.__file__).parent / "bin" / "spark-class"), "org.apache.spark.deploy.history.HistoryServer"],
        env={**os.environ, "SPARK_HISTORY_OPTS": options, "SPARK_LOCAL_IP": "127.0.0.1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=60)


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


def spark_properties(event_log_folder):
    """The Spark properties a stage's event log recorded when its application started."""
    for path in sorted(event_log_folder.glob("events_*")):
        with open(path, "rb") as events:
            for line in events:
                event = json.loads(line)
                if event["Event"] == "SparkListenerEnvironmentUpdate":
                    return dict(event["Spark Properties"])
    raise AssertionError(f"no environment update in {event_log_folder}")


def test_an_ingest_path_outside_landing_dir_fails_before_spark_submit_and_is_not_retried(namespace, tmp_path, monkeypatch):
    """No Spark: the operator refuses the trigger's path itself; a symlink out of landing_dir is refused too."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from airflow.sdk.exceptions import AirflowFailException

    from summary_airflow.operators import SummaryStageOperator

    def no_submit(self, context):
        raise AssertionError("spark-submit must not run for a refused path")

    monkeypatch.setattr(SparkSubmitOperator, "execute", no_submit)
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_SUMMARY", json.dumps({"conn_type": "spark", "host": "local[1]"}))
    monkeypatch.setenv("SUMMARY_REPORTS_DIR", str(tmp_path / "reports"))
    landing, outside = tmp_path / "landing", tmp_path / "other_team"
    landing.mkdir()
    outside.mkdir()
    (outside / "export.parquet").write_bytes(b"PAR1")
    (landing / "feed.parquet").symlink_to(outside / "export.parquet")
    config = write_config(tmp_path, namespace)
    ti = TaskInstance(dag_id="test", task_id="ingest", run_id="manual__1", try_number=1, pushed={})

    def ingest(path, landing_dir=str(landing)):
        operator = SummaryStageOperator(
            task_id="ingest", config_path=config, stage="ingest", path_param="path", landing_dir=landing_dir
        )
        return operator.execute({"params": {"path": path}, "ti": ti, "dag_run": None})

    for path, named in ((str(outside / "export.parquet"), "export.parquet"), (None, "feed.parquet"), ("/", "/")):
        with pytest.raises(AirflowFailException, match="the run's `path` was refused, not retried") as refused:
            ingest(path)
        assert named in str(refused.value) and "outside the ingest folders" in str(refused.value)
    with pytest.raises(AirflowFailException, match="set airflow.landing_dir in .*reads only under it"):
        ingest(str(outside / "export.parquet"), landing_dir=None)
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())
