"""docker-compose.yaml, checked statically (no Docker engine here): services, images, volumes, wiring."""

import json
import re
import shlex
from pathlib import Path

import yaml

from spark_jobs.names import CATALOGS_ENV, EXTRA_PACKAGES_ENV
from summary_airflow import settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yaml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
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
        # Spark's log settings by a JVM option: a conf folder with files on the class path would void the class archive
        assert "SPARK_CONF_DIR" not in env and (ROOT / "conf" / "log4j2.properties").exists()
        assert f"-Dlog4j2.configurationFile={mount}/conf/log4j2.properties" in env["SPARK_SUBMIT_OPTS"].split()
        assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        # The image installs the project editable at the same path, so the mounted code is what imports.
        assert f"pip install --no-cache-dir --no-deps -e {mount}" in DOCKERFILE
        assert f"COPY --chown=airflow:0 . {mount}" in DOCKERFILE


def test_airflow_init_creates_the_pools_the_dags_use_without_path_hacks():
    script = "\n".join(SERVICES["airflow-init"]["command"])
    assert "python -m summary_airflow.pools" in script and "airflow pools import" in script
    # the class archive after the jars it is keyed by, before the services start stages
    assert script.index("spark_jobs.storage.jars") < script.index("python -m spark_jobs.storage.class_archive")
    assert "sys.path" not in script


def test_the_spark_connection_and_the_catalog_are_wired_by_the_names_the_code_reads():
    env = SERVICES["airflow-scheduler"]["environment"]
    connection = json.loads(env[f"AIRFLOW_CONN_{settings.DEFAULT_SPARK_CONN_ID.upper()}"])
    assert connection == {"conn_type": "spark", "host": "spark://spark-master:7077"}
    assert "ports" not in SERVICES["spark-master"], "reached inside the compose network, not published"
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
    import os
    import subprocess

    import pytest

    cli = _compose_cli()
    if cli is None:
        pytest.skip("no Docker Compose CLI here (Debian: apt-get install docker-compose); the checks above still ran")
    filled = tmp_path / "filled.env"  # .env.example with every empty value filled in, as a user's .env is
    template = (ROOT / ".env.example").read_text() if (ROOT / ".env.example").exists() else ""
    filled.write_text(re.sub(r"(?m)^([A-Z][A-Z0-9_]*)=$", lambda m: f"{m.group(1)}=dummy-{m.group(1).lower()}", template))
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED}  # nothing from this shell, no project .env

    def config(compose, env_file):
        command = [*cli, "-f", str(compose), "--env-file", str(env_file), "config", "-q"]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)

    ok = config(ROOT / "docker-compose.yaml", filled)
    assert ok.returncode == 0, ok.stderr
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(COMPOSE_TEXT.replace("condition: service_healthy", "condition: when_ready"))
    refused = config(broken, filled)
    assert refused.returncode != 0 and "when_ready" in refused.stderr
    # Without the secrets compose refuses to start, naming what to set.
    unset = config(ROOT / "docker-compose.yaml", empty)
    assert unset.returncode != 0 and re.search(r"set [A-Z_]+ in \.env", unset.stderr), unset.stderr


# --- secure by default (security review H1, M6, LM4) -----------------------------------------------------------

REFERENCE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$\$")
REQUIRED_REFERENCE = r"\$\{(\w+):\?[^}]+\}"  # ${NAME:?message}: compose refuses to start without NAME


def _strings(node):
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in (*_strings(key), *_strings(value))]
    if isinstance(node, list):
        return [text for item in node for text in _strings(item)]
    return [node] if isinstance(node, str) else []


COMPOSE_STRINGS = "\n".join(_strings(COMPOSE))  # what compose substitutes in: no comments
REQUIRED = sorted(set(re.findall(r"\$\{(\w+):\?", COMPOSE_STRINGS)))
SECRET_KEY = re.compile(r"(?i)secret|password|passwd|token|access[_.-]*key|fernet|credential|root_user")
AIRFLOW_SECRETS = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY")


def _interpolate(text, env):
    """Compose's variable substitution (${NAME}, ${NAME:-default}, ${NAME:?message}, $$); KeyError for a missing
    required variable, as compose refuses to start."""

    def substitute(match):
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        value = env.get(name)
        if operator in (":?", "?") and not value:
            raise KeyError(f"{name}: {argument}")
        if operator in (":-", "-") and not value:
            return argument
        return value or ""

    return REFERENCE.sub(substitute, text)


def _rendered(env=None):
    """The services as compose runs them (it substitutes in the parsed strings): every required variable set to a
    marker unless ``env`` says otherwise."""
    env = {name: f"marker-{name.lower()}" for name in REQUIRED} if env is None else env

    def walk(node):
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return _interpolate(node, env) if isinstance(node, str) else node

    return walk(COMPOSE)["services"]


def _environment_items(services):
    for name, service in services.items():
        env = service.get("environment") or {}
        for key, value in env.items() if isinstance(env, dict) else (item.split("=", 1) for item in env):
            yield name, key, str(value)


def _dotenv(path):
    """NAME=value lines of an env file; commented-out ``# NAME=`` lines are listed as optional."""
    set_, optional = {}, set()
    for line in path.read_text().splitlines():
        if match := re.fullmatch(r"\s*([A-Z][A-Z0-9_]*)=(.*)", line):
            set_[match.group(1)] = match.group(2).strip()
        elif match := re.fullmatch(r"\s*#\s*([A-Z][A-Z0-9_]*)=.*", line):
            optional.add(match.group(1))
    return set_, optional


def test_no_secret_is_in_the_compose_file_every_one_is_a_required_variable():
    assert set(AIRFLOW_SECRETS) <= set(COMPOSE["x-airflow"]["environment"]), "every Airflow component shares them"
    secret_keys = [  # a *_FILE setting names where a secret is kept, it is not the secret
        (name, key, value)
        for name, key, value in _environment_items(SERVICES)
        if SECRET_KEY.search(key) and not key.endswith("_FILE")
    ]
    assert {key for _, key, _ in secret_keys} >= {
        *AIRFLOW_SECRETS, "POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD",
        "CATALOG_S3_ACCESS__KEY__ID", "CATALOG_S3_SECRET__ACCESS__KEY",
    }  # fmt: skip
    for name, key, value in secret_keys:
        assert re.fullmatch(REQUIRED_REFERENCE, value), f"{name}: {key} is not a ${{VAR:?...}} reference: {value!r}"
    for name in AIRFLOW_SERVICES:
        env = SERVICES[name]["environment"]
        password = re.fullmatch(
            r"postgresql\+psycopg2://airflow:(.+)@postgres:5432/airflow", env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        )
        assert password and re.fullmatch(REQUIRED_REFERENCE, password.group(1)), "the database URL's password"
        catalogs = json.loads(env[CATALOGS_ENV])
        for catalog in catalogs.values():
            for key, value in catalog.items():
                if SECRET_KEY.search(key):
                    assert re.fullmatch(REQUIRED_REFERENCE, str(value)), f"{CATALOGS_ENV}: {key} = {value!r}"
    # minio-init logs in with the variables of its own environment, expanded by its shell, not with literals.
    shell, flag, script = shlex.split(_rendered()["minio-init"]["entrypoint"])  # as compose splits it
    assert (shell, flag) == ("/bin/sh", "-c")
    assert 'mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" &&' in script, script
    assert set(SERVICES["minio-init"]["environment"]) == {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}
    # Every required variable is used where a value would otherwise be written in: unset, compose refuses to start.
    for name in REQUIRED:
        try:
            _rendered({other: "x" for other in REQUIRED if other != name})
        except KeyError as missing:
            assert name in str(missing)
        else:
            raise AssertionError(f"compose starts without {name}")


def test_only_the_airflow_ui_is_published_and_on_loopback_unless_asked_otherwise():
    published = {name: service["ports"] for name, service in _rendered().items() if service.get("ports")}
    assert list(published) == ["airflow-apiserver"], f"published ports: {published}"
    assert published["airflow-apiserver"] == ["127.0.0.1:8080:8080"]
    assert _rendered({**{n: "x" for n in REQUIRED}, "AIRFLOW_UI_BIND": "10.0.0.5"})["airflow-apiserver"]["ports"] == [
        "10.0.0.5:8080:8080"
    ]


def test_the_spark_cluster_authenticates_master_worker_and_every_submitting_container():
    auth = r"-Dspark\.authenticate=true -Dspark\.authenticate\.secret=\$\{SPARK_AUTH_SECRET:\?[^}]+\}"
    where = {"spark-master": "SPARK_MASTER_OPTS", "spark-worker": "SPARK_WORKER_OPTS"}
    where.update({name: "SPARK_SUBMIT_OPTS" for name in AIRFLOW_SERVICES})
    for name, variable in where.items():
        options = (SERVICES[name].get("environment") or {}).get(variable, "")
        assert re.search(auth, options), f"{name}: {variable} = {options!r}"
    # One secret for all of them, and in none of the committed places a submit reads: conf folder, connection.
    rendered = _rendered()
    secrets = {re.search(r"spark\.authenticate\.secret=(\S+)", rendered[n]["environment"][v]).group(1) for n, v in where.items()}
    assert secrets == {"marker-spark_auth_secret"}
    assert "spark.authenticate" not in "".join(p.read_text() for p in (ROOT / "conf").iterdir() if p.is_file())
    connection = SERVICES["airflow-scheduler"]["environment"][f"AIRFLOW_CONN_{settings.DEFAULT_SPARK_CONN_ID.upper()}"]
    assert "secret" not in connection


def test_env_example_lists_every_variable_compose_requires_and_no_secret_value():
    example = ROOT / ".env.example"
    assert example.is_file(), "a committed template of .env"
    values, optional = _dotenv(example)
    assert REQUIRED and set(REQUIRED) <= set(values), f"missing from .env.example: {set(REQUIRED) - set(values)}"
    for name in sorted(set(re.findall(r"\$\{(\w+)(?::?-)", COMPOSE_STRINGS))):
        assert name in set(values) | optional, f"{name}: an optional variable compose reads, not in .env.example"
    for name, value in values.items():
        if name in REQUIRED and name != "MINIO_ROOT_USER":
            assert value == "", f".env.example holds a value for {name}: a template only"
    assert "openssl rand" in example.read_text()


def test_event_logs_are_off_by_default_and_never_written_into_the_mounted_project():
    mount = next(v.split(":")[1] for v in SERVICES["airflow-scheduler"]["volumes"] if v.startswith("./:"))
    for name in AIRFLOW_SERVICES:
        assert _rendered()[name]["environment"]["SUMMARY_SPARK_EVENT_LOG_DIR"] == "off", name
        assert mount not in SERVICES[name]["environment"]["SUMMARY_SPARK_EVENT_LOG_DIR"], name


def test_the_history_server_reads_the_volume_the_stages_write_and_is_not_published():
    history = SERVICES["spark-history"]
    assert history["profiles"] == ["history"], "only on request: event logs are off by default"
    assert history["image"] == SERVICES["spark-master"]["image"] and "ports" not in history
    assert history["command"].endswith("org.apache.spark.deploy.history.HistoryServer")
    read = "-Dspark.history.fs.logDirectory=file:/opt/airflow/spark-events"
    assert read in history["environment"]["SPARK_HISTORY_OPTS"].split()
    assert history["volumes"] == ["spark-events:/opt/airflow/spark-events:ro"] and "spark-events" in COMPOSE["volumes"]
    for name in AIRFLOW_SERVICES:
        assert "spark-events:/opt/airflow/spark-events" in SERVICES[name]["volumes"], name
        assert _rendered()[name]["environment"]["SUMMARY_SPARK_HISTORY_URL"] == "", name  # no link until it is set
    # the image makes the folder the volume starts from writable by group 0, which compose runs Airflow in
    assert "chown airflow:0 /opt/airflow/spark-events" in DOCKERFILE and SERVICES["airflow-init"]["user"].endswith(":0")


def _patterns(path):
    return {line.strip().rstrip("/") for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}


def test_secrets_and_run_output_stay_out_of_the_image_and_the_repository():
    dockerignore, gitignore = _patterns(ROOT / ".dockerignore"), _patterns(ROOT / ".gitignore")
    for pattern in (".env", "reports", "spark-events", "*.sqlite", "demo_data", "warehouse", ".jars", "airflow_home"):
        assert pattern in dockerignore, f".dockerignore: {pattern}"
    for pattern in (".env", "reports", "spark-events"):
        assert pattern in gitignore, f".gitignore: {pattern}"
    assert "!.env.example" not in gitignore and ".env.example" not in gitignore, "the template is committed"
