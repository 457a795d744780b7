"""docker-compose.yaml, checked statically (no Docker engine here): services, images, volumes, wiring."""

import json
from pathlib import Path

import yaml

from spark_jobs.names import CATALOGS_ENV
from spark_jobs.storage.jars import EXTRA_PACKAGES_ENV
from summary_airflow import settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]
AIRFLOW_SERVICES = ["airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]


def test_the_full_stack_is_there():
    assert set(SERVICES) >= {
        "postgres", "minio", "minio-init", "iceberg-rest", "spark-master", "spark-worker", *AIRFLOW_SERVICES,
    }  # fmt: skip
    commands = {name: SERVICES[name].get("command") for name in AIRFLOW_SERVICES[1:]}
    assert commands == {
        "airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer",
    }  # fmt: skip


def test_every_image_is_pinned_and_every_dependency_exists():
    for name, service in SERVICES.items():
        image = service.get("image", "")
        assert service.get("build") or (":" in image and not image.endswith(":latest")), f"{name}: unpinned image {image}"
        depends = service.get("depends_on", {})
        for dependency in depends if isinstance(depends, (list, dict)) else []:
            assert dependency in SERVICES, f"{name} depends on unknown service {dependency}"


def test_airflow_runs_on_postgres_with_the_project_mounted_where_its_folders_point():
    for name in AIRFLOW_SERVICES:
        env, volumes = SERVICES[name]["environment"], SERVICES[name]["volumes"]
        mount = next(v.split(":")[1] for v in volumes if v.startswith("./:"))
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == f"{mount}/dags"
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == f"{mount}/plugins"
        assert env["SPARK_CONF_DIR"] == f"{mount}/conf" and (ROOT / "conf" / "log4j2.properties").exists()
        assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        # The image installs the project editable at the same path, so the mounted code is what imports.
        assert f"pip install --no-cache-dir --no-deps -e {mount}" in DOCKERFILE
        assert f"COPY --chown=airflow:0 . {mount}" in DOCKERFILE


def test_airflow_init_creates_the_pools_the_dags_use_without_path_hacks():
    script = "\n".join(SERVICES["airflow-init"]["command"])
    assert "python -m summary_airflow.pools" in script and "airflow pools import" in script
    assert "sys.path" not in script


def test_the_spark_connection_and_the_catalog_are_wired_by_the_names_the_code_reads():
    env = SERVICES["airflow-scheduler"]["environment"]
    connection = json.loads(env[f"AIRFLOW_CONN_{settings.DEFAULT_SPARK_CONN_ID.upper()}"])
    assert connection == {"conn_type": "spark", "host": "spark://spark-master:7077"}
    assert "7077:7077" in SERVICES["spark-master"]["ports"]
    assert "spark://spark-master:7077" in SERVICES["spark-worker"]["command"]
    catalogs = json.loads(env[CATALOGS_ENV])
    assert catalogs["local"]["type"] == "rest" and catalogs["local"]["uri"] == "http://iceberg-rest:8181"
    assert catalogs["local"]["s3.endpoint"] == "http://minio:9000"
    assert SERVICES["iceberg-rest"]["environment"]["CATALOG_S3_ENDPOINT"] == "http://minio:9000"
    assert "iceberg-aws-bundle" in env[EXTRA_PACKAGES_ENV], "S3FileIO needs the AWS bundle"
    assert "local/warehouse" in SERVICES["minio-init"]["entrypoint"], "the bucket the catalog's warehouse names"
