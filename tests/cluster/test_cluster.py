"""Scale-out: the same jobs on a Spark standalone cluster, Iceberg's REST catalog and an S3 object store.

Nothing here is special to the test: the stages are submitted as a user
submits them (``spark-submit --master spark://... --jars ...``), the catalog
comes from ``$SUMMARY_CATALOGS`` only, and the DAGs reach the cluster through
their Spark connection. Along the way the REST server is killed and restarted
between two stages, two stages race for the run lock, and an orphan file on
the object store is removed by maintenance. At the end both tables equal the
plain-Python model of the table contract.

``make test-cluster`` runs it, in a pytest process of its own (its Spark
session needs the S3 jars from the start).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spark_jobs.names import CATALOGS_ENV, EXIT_LOCK_HELD, EXTRA_PACKAGES_ENV
from spark_jobs.storage.jars import ICEBERG_VERSION, ensure_jars
from tests.cli_support import ROOT, SPARK_SUBMIT, submit, write_parquet
from tests.cluster.services import ObjectStore, RestCatalog, SparkStandalone
from tests.support import model_config, model_problems, record

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
NAMESPACE = "scale_out"
AWS_BUNDLE = f"org.apache.iceberg:iceberg-aws-bundle:{ICEBERG_VERSION}"


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """The object store, the REST catalog and the Spark cluster, stopped by process id whatever happens."""
    base = tmp_path_factory.mktemp("engines")
    store, started = ObjectStore(), []
    try:
        started.append(store.start())
        catalog = RestCatalog(base, store)
        started.append(catalog.start())
        spark = SparkStandalone(base)
        started.append(spark.start())
        yield store, catalog, spark
    finally:
        for engine in reversed(started):
            engine.stop()


@pytest.fixture(scope="module")
def user_env(engines, tmp_path_factory):
    """What a user exports to point the product at the three engines: nothing else differs from the laptop."""
    store, catalog, spark = engines
    env = {
        CATALOGS_ENV: json.dumps({"local": catalog.client_properties()}),
        EXTRA_PACKAGES_ENV: AWS_BUNDLE,
        "SUMMARY_WAREHOUSE": str(tmp_path_factory.mktemp("no-local-tables")),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # for ensure_jars() and the model comparison's session in this process
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def submitter(spark_cluster):
    """spark-submit to the cluster, in client deploy mode, with the cached jars by --jars."""
    jars = ",".join(str(p) for p in ensure_jars())
    return [SPARK_SUBMIT, "--master", spark_cluster.url, "--deploy-mode", "client", "--jars", jars,
            "--conf", "spark.executor.memory=1g", "--conf", "spark.ui.enabled=false"]  # fmt: skip


def comparison_session(config_path):
    """A driver of this process reading both tables through the same catalog (REST) and object store."""
    from pyspark import SparkContext

    from spark_jobs.config import load_config
    from spark_jobs.storage.session import build_session

    if SparkContext._active_spark_context is not None:
        pytest.skip("the scale-out tier needs a Spark session of its own: run it alone (make test-cluster)")
    cfg = load_config(str(config_path))
    local = {"spark.master": "local[1]", "spark.ui.enabled": "false"}
    return cfg, build_session(cfg, app_name="scale-out-comparison", extra_conf=local)


def test_the_jobs_and_the_dags_on_a_cluster_a_rest_catalog_and_an_object_store(engines, user_env, tmp_path):
    store, catalog, spark_cluster = engines
    raw = model_config(NAMESPACE, name="scale_out", airflow={"start_month": "2024-05", "retries": 0, "backfill_poke_seconds": 5})
    config = tmp_path / "scale_out.json"
    config.write_text(json.dumps(raw))
    runner = submitter(spark_cluster)
    submitted = []

    def stage(*args, check=True):
        code, report, output = submit(config, user_env["SUMMARY_WAREHOUSE"], *args, runner=runner, env=user_env, check=check)
        submitted.append((args[1], report))
        return code, report, output

    # 1. Ingest, the initial load, a forward month: all on the cluster, all through the REST catalog.
    on_time = [record(a, f"2024-0{m}", m, bal=a * 100 + m, dpd=(a * m) % 70) for a in range(1, 13) for m in (1, 2, 3, 4)]
    stage("--mode", "ingest", "--path", str(write_parquet(tmp_path / "feed.parquet", on_time)))
    stage("--mode", "initial", "--start-month", "2024-01", "--end-month", "2024-02")
    stage("--mode", "forward", "--start-month", "2024-03")

    # 2. The REST server dies (SIGKILL) between two stages and comes back on its SQLite file: nothing lost.
    killed = catalog.service.process.pid
    catalog.restart()
    restarted = catalog.service.process.pid
    print(f"\nREST catalog killed (SIGKILL, pid {killed}) and restarted (pid {restarted}) on {catalog.database}")
    _, report, _ = stage("--mode", "forward", "--start-month", "2024-04")
    assert report["rows_written"]["summary"] == 12, report

    # 3. Late records, one of each case: a new account (I), a newer month (II), a correction of the past (III).
    late = [
        record(50, "2024-02", 20, bal=5000, dpd=0),  # Case I: account 50 is new
        record(1, "2024-05", 20, bal=7000, dpd=10),  # Case II: after account 1's latest month (2024-04)
        record(2, "2024-02", 25, bal=9999, dpd=45),  # Case III: corrects account 2's 2024-02
    ]
    stage("--mode", "ingest", "--path", str(write_parquet(tmp_path / "late.parquet", late)))
    _, report, _ = stage("--mode", "backfill")
    assert report["records_by_case"] == {"I": 1, "II": 1, "III": 1}, report

    # 4. Two stages started at once: the run lock (table properties, CAS through the REST catalog) lets one in;
    # the other waits or fails cleanly, naming the holder.
    processes = [
        subprocess.Popen(
            [
                *runner,
                str(ROOT / "spark_jobs" / "summary_pipeline.py"),
                "--config",
                str(config),
                *args,
                "--lock-wait-seconds",
                "0",
            ],
            cwd=ROOT,
            env={**os.environ, **user_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for args in (("--mode", "forward", "--start-month", "2024-04"), ("--mode", "maintenance"))
    ]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    reports = [json.loads([line for line in out.splitlines() if line.startswith("{")][-1]) for out in outputs]
    codes = [p.returncode for p in processes]
    print(f"\nconcurrent pair: exit codes {codes}; " + "; ".join(r.get("error", "ok") for r in reports))
    assert 0 in codes and set(codes) <= {0, EXIT_LOCK_HELD}, outputs
    for mine, other in ((0, 1), (1, 0)):
        if codes[mine] == EXIT_LOCK_HELD:
            assert f"in use by run {reports[other]['run_id']}" in reports[mine]["error"], reports[mine]

    # 5. Maintenance on the object store: a file no snapshot refers to, written a month ago, is removed.
    table = catalog.table(NAMESPACE, "summary")
    summary_location = table["metadata"]["location"]
    assert summary_location.startswith("s3://warehouse/"), table["metadata"]["location"]
    orphan = summary_location.removeprefix("s3://warehouse/") + "/data/orphan-of-a-crashed-writer.parquet"
    store.put(orphan, b"referenced by no snapshot", days_old=30)  # older than the retention (7 days)
    _, report, _ = stage("--mode", "maintenance")
    assert orphan not in store.keys(), "remove_orphan_files listed the bucket through S3FileIO and removed the orphan"
    assert report["details"]["maintenance"][f"local.{NAMESPACE}.summary"]["remove_orphan_files"]["removed_files_count"] >= 1

    # 6. The DAGs against the cluster: their Spark connection names the master, nothing else changes.
    # May's feed (account 1's May came late, above), applied by the forward DAG's run for May.
    may = [record(a, "2024-05", 5, bal=a * 100 + 5, dpd=(a * 5) % 70) for a in range(2, 13)]
    stage("--mode", "ingest", "--path", str(write_parquet(tmp_path / "may.parquet", may)))
    airflow_env = dag_environment(tmp_path, config, spark_cluster, user_env)
    forward_output = airflow(airflow_env, "dags", "test", "scale_out_forward", "2024-06-01")
    assert '"mode": "forward"' in forward_output and '"months": ["2024-05"]' in forward_output, forward_output[-3000:]
    late_for_dag = [record(3, "2024-01", 27, bal=3333, dpd=5)]  # Case III through the backfill DAG
    stage("--mode", "ingest", "--path", str(write_parquet(tmp_path / "late2.parquet", late_for_dag)))
    backfill_output = airflow(airflow_env, "dags", "test", "scale_out_backfill")
    assert '"mode": "case-iii"' in backfill_output, backfill_output[-3000:]

    # 7. Every stage ran on the cluster: one application per spark-submit at the master, executors on the worker.
    status = spark_cluster.status()
    applications = status["completedapps"] + status["activeapps"]
    names = sorted({app["name"] for app in applications})
    print(f"master {spark_cluster.url}: {status['aliveworkers']} live worker(s), "
          f"{len(applications)} applications ({', '.join(names)}); "
          f"{len(spark_cluster.executor_logs())} executor logs under {spark_cluster.work_dir}")  # fmt: skip
    # the stages above, the concurrent pair, and the DAGs' forward, classify and case-iii tasks
    assert len(applications) >= len(submitted) + 2 + 3, (len(applications), names)
    executor_apps = {path.parent.parent.name for path in spark_cluster.executor_logs()}
    # A stage that lost the lock race may end before its executor starts; every other ran on the worker.
    without_executors = {app["id"] for app in applications} - executor_apps
    assert len(without_executors) <= codes.count(EXIT_LOCK_HELD), (without_executors, executor_apps)

    # 8. The REST server holds the metadata, the object store the files; nothing was written locally.
    keys = store.keys(f"{NAMESPACE}/")
    print(f"object store: {len(keys)} objects under s3://warehouse/{NAMESPACE}/")
    assert any(k.endswith(".parquet") and "/summary/data/" in k for k in keys), keys[:20]
    assert any(k.endswith(".metadata.json") and "/latest_summary/metadata/" in k for k in keys), keys[:20]
    metadata_location = catalog.table(NAMESPACE, "latest_summary")["metadata-location"]
    print(f"REST catalog {catalog.uri}: latest_summary's metadata at {metadata_location}")
    assert metadata_location.startswith("s3://warehouse/")
    assert not list(Path(user_env["SUMMARY_WAREHOUSE"]).rglob("*.parquet"))

    # 9. The check stage passes, and both tables equal the model of the table contract over every record read.
    code, report, _ = stage("--mode", "check")
    assert code == 0 and report["status"] == "ok", report
    cfg, session = comparison_session(config)
    try:
        problems = model_problems(session, cfg, raw, on_time + late + may + late_for_dag)
    finally:
        session.stop()
    print(f"model comparison: {len(problems)} differences")
    assert not problems, "tables differ from the model:\n" + "\n".join(problems)


def dag_environment(tmp_path, config, spark_cluster, user_env):
    configs = tmp_path / "dag-configs"
    configs.mkdir()
    (configs / config.name).write_text(config.read_text())
    env = {
        **os.environ,
        **user_env,
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_SPARK_SUMMARY": json.dumps({"conn_type": "spark", "host": spark_cluster.url}),
        "SUMMARY_CONFIGS_DIR": str(configs),
        "SUMMARY_REPORTS_DIR": str(tmp_path / "reports"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    airflow(env, "db", "migrate")
    return env


def airflow(env, *args):
    started = time.monotonic()
    result = subprocess.run([str(ROOT / "bin" / "airflow"), *args], env=env, capture_output=True, text=True, timeout=1200)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"airflow {' '.join(args)} failed after {time.monotonic() - started:.0f} s:\n{output[-4000:]}"
    return output
