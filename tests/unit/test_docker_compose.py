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


# --- the compose file runs what make test-cluster proved (tests/cluster/services.py) ---------------------------


def _tier_catalog():
    from tests.cluster.services import ObjectStore, RestCatalog

    return RestCatalog("/nonexistent", ObjectStore())


def test_the_rest_catalog_is_the_server_and_the_settings_the_tier_ran():
    import xml.etree.ElementTree as ET

    pom = ET.parse(ROOT / "cluster" / "rest-catalog" / "pom.xml").getroot()
    server_version = pom.find(
        "{http://maven.apache.org/POM/4.0.0}properties/{http://maven.apache.org/POM/4.0.0}iceberg.version"
    ).text
    rest = SERVICES["iceberg-rest"]
    assert rest["image"] == f"apache/iceberg-rest-fixture:{server_version}"
    tier = _tier_catalog().server_environment()
    compose = rest["environment"]
    # Same catalog keys (the port is the image's default); same settings except where the hosts differ.
    assert set(compose) - {"AWS_REGION"} == set(tier) - {"CATALOG_REST_PORT"}
    same = ("JDBC_SCHEMA__VERSION", "WAREHOUSE", "IO__IMPL", "S3_PATH__STYLE__ACCESS", "CLIENT_REGION")
    for key in (f"CATALOG_{name}" for name in same):
        assert compose[key] == tier[key], key
    # A JDBC catalog in a file on a volume, not in memory: a restart of the server keeps every table.
    database = compose["CATALOG_URI"].removeprefix("jdbc:sqlite:")
    assert compose["CATALOG_URI"].startswith("jdbc:sqlite:/") and "memory" not in database
    assert any(database.startswith(v.split(":")[1] + "/") and v.split(":")[0] in COMPOSE["volumes"] for v in rest["volumes"])


def test_the_jobs_catalog_is_the_one_the_tier_ran_and_its_jars_match_the_jobs_iceberg():
    from spark_jobs.storage.jars import ICEBERG_VERSION

    env = SERVICES["airflow-scheduler"]["environment"]
    compose = json.loads(env[CATALOGS_ENV])["local"]
    tier = _tier_catalog().client_properties()
    assert set(compose) == set(tier)
    for key in ("type", "warehouse", "io-impl", "client.region"):
        assert compose[key] == tier[key], key
    assert str(compose["s3.path-style-access"]).lower() == str(tier["s3.path-style-access"]).lower()
    assert env[EXTRA_PACKAGES_ENV] == f"org.apache.iceberg:iceberg-aws-bundle:{ICEBERG_VERSION}"


def test_images_can_be_pulled_and_services_start_only_when_what_they_need_is_healthy():
    for name in ("minio", "minio-init"):
        assert SERVICES[name]["image"].startswith("quay.io/minio/"), "Docker Hub no longer serves MinIO's images"
    for name in ("postgres", "minio", "iceberg-rest", "spark-master"):
        assert SERVICES[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    conditions = {
        name: {dep: spec.get("condition") for dep, spec in service.get("depends_on", {}).items()}
        for name, service in SERVICES.items()
        if isinstance(service.get("depends_on"), dict)
    }
    assert conditions["minio-init"] == {"minio": "service_healthy"}
    assert conditions["iceberg-rest"] == {"minio-init": "service_completed_successfully"}
    assert conditions["spark-worker"] == {"spark-master": "service_healthy"}
    for name in AIRFLOW_SERVICES[1:]:
        assert conditions[name]["iceberg-rest"] == conditions[name]["spark-master"] == "service_healthy", name


def test_the_spark_images_run_the_spark_version_the_jobs_are_built_for():
    requirements = (ROOT / "requirements.txt").read_text()
    pyspark = next(line.split("==")[1] for line in requirements.splitlines() if line.startswith("pyspark=="))
    for name in ("spark-master", "spark-worker"):
        assert f"apache/spark:{pyspark}-" in SERVICES[name]["image"], name


def test_the_airflow_image_has_no_architecture_in_it_and_runs_as_the_users_uid():
    assert "amd64" not in DOCKERFILE and "arm64" not in DOCKERFILE
    assert "ENV JAVA_HOME=/usr/lib/jvm/default-java" in DOCKERFILE
    for name in AIRFLOW_SERVICES:
        assert SERVICES[name]["user"] == "${AIRFLOW_UID:-50000}:0", name


def _compose_cli():
    import shutil

    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        import subprocess

        if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
            return ["docker", "compose"]
    return None


def test_docker_compose_itself_accepts_the_file_and_refuses_a_broken_one(tmp_path):
    import subprocess

    import pytest

    cli = _compose_cli()
    if cli is None:
        pytest.skip("no Docker Compose CLI here (Debian: apt-get install docker-compose); the checks above still ran")
    ok = subprocess.run([*cli, "-f", str(ROOT / "docker-compose.yaml"), "config", "-q"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text((ROOT / "docker-compose.yaml").read_text().replace("condition: service_healthy", "condition: when_ready"))
    refused = subprocess.run([*cli, "-f", str(broken), "config", "-q"], capture_output=True, text=True)
    assert refused.returncode != 0 and "when_ready" in refused.stderr
