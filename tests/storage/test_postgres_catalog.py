"""An Iceberg JDBC catalog on PostgreSQL, on both sides, as a platform team sets one up.

The jobs reach it through Iceberg's JdbcCatalog with the PostgreSQL driver
fetched by ``SUMMARY_EXTRA_PACKAGES``; the Airflow side (the source's watcher,
the sensor, the status API) reads the same catalog through PyIceberg and
SQLAlchemy. Both are configured by ``SUMMARY_CATALOGS`` only, credentials
included, against a real PostgreSQL server (Debian's, on loopback).
"""

import json

import pytest

from tests.cli_support import submit, write_config, write_parquet
from tests.live.services import Postgres, postgres_bindir
from tests.support import record

pytestmark = [pytest.mark.slow]
POSTGRES_DRIVER = "org.postgresql:postgresql:42.7.14"
PASSWORD = "p@ss:w/rd"  # characters a URL must quote (the test cluster trusts local users: any password is accepted)


@pytest.fixture(scope="module")
def postgres():
    bindir, reason = postgres_bindir()
    if bindir is None:
        pytest.skip(reason)
    server = Postgres(bindir).start()
    try:
        yield server
    finally:
        server.stop()


def test_jobs_and_airflow_side_share_a_postgresql_jdbc_catalog(postgres, tmp_path, namespace, monkeypatch):
    from summary_airflow.metadata import load_table, pipeline_status, unapplied_source_snapshot

    warehouse = tmp_path / "warehouse"
    catalogs = {"local": {"type": "jdbc", "uri": f"jdbc:postgresql://127.0.0.1:{postgres.port}/airflow",
                          "jdbc.user": "airflow", "jdbc.password": PASSWORD, "warehouse": str(warehouse / "local")}}  # fmt: skip
    env = {"SUMMARY_CATALOGS": json.dumps(catalogs), "SUMMARY_EXTRA_PACKAGES": POSTGRES_DRIVER}
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the Airflow side reads the same environment, in this process
    config = write_config(tmp_path, namespace)
    on_time = [record(a, m, 1, bal=a * 100 + i) for a in (1, 2) for i, m in enumerate(("2024-01", "2024-02"), 1)]
    submit(config, warehouse, "--mode", "ingest", "--path", str(write_parquet(tmp_path / "a.parquet", on_time)), env=env)
    submit(config, warehouse, "--mode", "initial", "--start-month", "2024-01", "--end-month", "2024-02", env=env)

    late = [record(1, "2024-01", 9, bal=111)]  # a correction of account 1's first month: Case III
    submit(config, warehouse, "--mode", "ingest", "--path", str(write_parquet(tmp_path / "b.parquet", late)), env=env)
    from spark_jobs.config import load_config

    cfg = load_config(config)
    source = load_table(cfg, str(warehouse), cfg.source_table)
    assert unapplied_source_snapshot(config, str(warehouse)) == source.current_snapshot().snapshot_id  # the watcher sees it
    _, report, _ = submit(config, warehouse, "--mode", "backfill", env=env)
    assert report["records_by_case"]["III"] == 1, report

    status = pipeline_status(cfg, str(warehouse))
    assert status["unapplied_source_records"] is False, status
    assert status["backfill_applied_snapshot"] == source.current_snapshot().snapshot_id
    summary = load_table(cfg, str(warehouse), cfg.summary_table).scan().to_arrow().to_pylist()
    rows = {(r["acct"], r["month"]): r for r in summary}
    assert sorted(rows) == [(1, "2024-01"), (1, "2024-02"), (2, "2024-01"), (2, "2024-02")]
    assert rows[(1, "2024-02")]["balance_history"] == [102, 111, None, None]  # the correction reached the next month
    assert rows[(2, "2024-02")]["balance_history"] == [202, 201, None, None]

    # The catalog is PostgreSQL's: Iceberg's own catalog table there lists the pipeline's tables, and no SQLite
    # catalog file was made beside the data.
    import psycopg2

    with psycopg2.connect(host="127.0.0.1", port=postgres.port, user="airflow", dbname="airflow") as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT table_name FROM iceberg_tables WHERE table_namespace = %s", (namespace,))
            tables = {name for (name,) in cursor.fetchall()}
    assert {"accounts", "summary", "latest_summary"} <= tables, tables
    assert not list(warehouse.rglob("*.sqlite"))
