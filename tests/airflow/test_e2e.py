"""The real DAGs end to end: ``airflow dags test`` on SQLite, every task a real spark-submit.

Forward for three months (the first run chains the initial load), late records
land, the backfill DAG's sensor fires, the classifier branches to the right
cases, and the tables then match the plain-Python model of the table contract (docs/table-contract.md); a
re-run of a forward month and of the backfill changes nothing.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spark_jobs.storage.iceberg import current_snapshot
from tests.support import append_source, assert_matches_model, load, model_config, record

# The live tier (tests/live) runs the same DAGs under real Airflow services; this in-process run (what `make demo`
# uses) is the extended tier: `make test-extended`.
pytestmark = [pytest.mark.airflow, pytest.mark.spark, pytest.mark.slow, pytest.mark.extended]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def airflow_env(tmp_path, spark_warehouse, namespace):
    configs = tmp_path / "configs"
    configs.mkdir()
    raw = model_config(namespace, name="e2e", airflow={
        "initial_load": {"start_month": "2024-01", "end_month": "2024-02"}, "start_month": "2024-03",
        "retries": 0, "backfill_poke_seconds": 5,
    })  # fmt: skip
    (configs / "e2e.json").write_text(json.dumps(raw))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_SPARK_SUMMARY": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "SUMMARY_CONFIGS_DIR": str(configs),
        "SUMMARY_WAREHOUSE": str(spark_warehouse),
        "SPARK_SUBMIT_OPTS": "-XX:TieredStopAtLevel=1",  # short-lived test JVMs start faster on C1
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    airflow(env, "db", "migrate")
    return env


def airflow(env, *args):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), *args], env=env, capture_output=True, text=True, timeout=900
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"airflow {' '.join(args)} failed:\n{output[-4000:]}"
    return output


def dags_test(env, dag_id, logical_date, conf=None):
    args = ["dags", "test", dag_id, logical_date] + (["--conf", json.dumps(conf)] if conf else [])
    output = airflow(env, *args)
    assert "state=success" in output or "successful" in output, output[-3000:]
    return output


def snapshot_ids(spark, cfg):
    return [current_snapshot(spark, t)[0] for t in (cfg.summary_table, cfg.latest_table)]


def test_forward_then_sensor_triggered_backfill_through_the_real_dags(spark, namespace, airflow_env):
    raw, cfg = load(namespace, name="e2e")
    on_time = [record(a, f"2024-0{m}", 10, bal=a * 100 + m, dpd=m * 20) for a in (1, 2, 3) for m in (1, 2, 3)]
    append_source(spark, cfg, on_time)

    # The run for 2024-04-01 processes March; as the first scheduled month it chains the initial load first.
    output = dags_test(airflow_env, "e2e_forward", "2024-04-01")
    assert output.count('"mode": "forward"') >= 3, "three forward stages ran: 2024-01, 2024-02, 2024-03"
    assert_matches_model(spark, cfg, raw, on_time)

    late = [
        record(2, "2024-02", 3, bal=7),  # an old version arriving late: stale, must lose
        record(2, "2024-02", 30, bal=222),  # a correction: Case III
        record(4, "2024-01", 30, bal=4),  # a new account: Case I
        record(1, "2024-04", 30, bal=104),  # the account's next month: Case II
    ]
    append_source(spark, cfg, late)
    output = dags_test(airflow_env, "e2e_backfill", "2024-04-02")
    assert "new source records" in output or "unapplied" in output or "has records no backfill has applied" in output
    for stage in ("case-i", "case-ii", "case-iii"):
        assert f'"mode": "{stage}"' in output, f"{stage} should have run"
    assert_matches_model(spark, cfg, raw, on_time + late)

    before = snapshot_ids(spark, cfg)
    output = dags_test(airflow_env, "e2e_forward", "2024-05-01", {"month": "2024-02"})
    assert '"changed_records": 0' in output
    output = dags_test(airflow_env, "e2e_backfill", "2024-05-02", {"backfill_filter": "acct_id > 0"})
    assert '"mode": "classify"' in output and '"mode": "case-' not in output, "nothing to apply: no case stage runs"
    assert snapshot_ids(spark, cfg) == before, "re-runs changed nothing"
