"""The scale-out tier's engines as plain processes on loopback: an S3 object store, Apache Iceberg's REST
catalog server and a Spark standalone cluster (a master and one worker).

Each is what ``docker-compose.yaml`` runs, started the way this machine can
(no Docker): the REST server is Iceberg's own ``RESTCatalogServer`` from the
``iceberg-open-api`` test-fixtures jar, the one the ``apache/iceberg-rest-fixture``
image runs; Spark comes from the installed pyspark distribution; the object
store is moto's S3 server (MinIO in the compose file). Everything started here
is stopped here by process id, also when a test fails.
"""

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.live.services import free_port, stop_group, wait_for

ROOT = Path(__file__).resolve().parents[2]
REST_DIR = ROOT / "cluster" / "rest-catalog"
REST_JARS = REST_DIR / ".jars"
SPARK_HOME = Path(importlib.util.find_spec("pyspark").origin).parent  # the installed distribution is a Spark home
BUCKET = "warehouse"
REGION = "us-east-1"
ACCESS_KEY, SECRET_KEY = "summary-tier", "summary-tier-secret"
ENGINE_LOG_ERRORS = ("Exception in thread", "OutOfMemoryError")


def rest_catalog_jars():
    """The REST server's class path, resolved by Maven from ``cluster/rest-catalog/pom.xml`` into a local cache."""
    if not list(REST_JARS.glob("iceberg-open-api-*-test-fixtures.jar")):
        if not shutil.which("mvn"):
            raise RuntimeError("the REST catalog server's jars are not cached and Maven is absent: apt-get install maven")
        result = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(REST_DIR / "pom.xml"), "dependency:copy-dependencies",
             f"-DoutputDirectory={REST_JARS}", "-DincludeScope=runtime"],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"Maven could not resolve the REST server's jars:\n{(result.stdout + result.stderr)[-3000:]}")
    return REST_JARS


def _http_json(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.load(response)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return None


class _Process:
    """One service process in its own process group, its output in a log file."""

    def __init__(self, name, base):
        self.name, self.base = name, Path(base)
        self.log = self.base / f"{name}.log"
        self.process = None

    def spawn(self, command, env):
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self):
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}); its log:\n{self.tail()}")
        return True

    def kill(self):
        """SIGKILL, as a crash or an OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self):
        if self.process is not None:
            stop_group(self.process)

    def tail(self, lines=40):
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else "(no log)"


class ObjectStore:
    """An S3-compatible server on loopback (moto), with the warehouse bucket created."""

    def __init__(self):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server = None

    def start(self):
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per S3 request otherwise

        # In this process, not a child: the test ages a file it planted (S3 has no API to backdate an object).
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        wait_for("the object store", lambda: self._reachable(), 30, 0.5)
        self.client().create_bucket(Bucket=BUCKET)
        return self

    def _reachable(self):
        try:
            self.client().list_buckets()
            return True
        except Exception:
            return False

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
        )

    def keys(self, prefix=""):
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def put(self, key, body, days_old=0):
        """Write an object; ``days_old`` backdates it (in moto's memory) as if written that long ago."""
        import datetime as dt

        from moto.s3.models import s3_backends

        self.client().put_object(Bucket=BUCKET, Key=key, Body=body)
        if days_old:
            for backend in s3_backends.values():
                for region in backend.values():
                    bucket = region.buckets.get(BUCKET)
                    if bucket is not None and key in bucket.keys:
                        bucket.keys[key].last_modified = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_old)

    def stop(self):
        if self.server is not None:
            self.server.stop()


class RestCatalog:
    """Iceberg's RESTCatalogServer on loopback; its JDBC catalog lives in a SQLite file, so a restart loses nothing."""

    def __init__(self, base, store):
        self.base, self.store = Path(base), store
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}/"
        self.database = self.base / "rest-catalog.sqlite"
        self.service = _Process("rest-catalog", base)

    def server_environment(self):
        """The server's catalog, as the CATALOG_* variables the fixture reads (the compose file sets the same)."""
        return {
            "CATALOG_URI": f"jdbc:sqlite:{self.database}",
            "CATALOG_JDBC_SCHEMA__VERSION": "V1",
            "CATALOG_WAREHOUSE": f"s3://{BUCKET}/",
            "CATALOG_IO__IMPL": "org.apache.iceberg.aws.s3.S3FileIO",
            "CATALOG_S3_ENDPOINT": self.store.endpoint,
            "CATALOG_S3_PATH__STYLE__ACCESS": "true",
            "CATALOG_S3_ACCESS__KEY__ID": ACCESS_KEY,
            "CATALOG_S3_SECRET__ACCESS__KEY": SECRET_KEY,
            "CATALOG_CLIENT_REGION": REGION,
            "CATALOG_REST_PORT": str(self.port),
        }

    def client_properties(self):
        """The jobs' catalog: what a user puts in the config's ``catalog.catalogs`` or in $SUMMARY_CATALOGS."""
        return {
            "type": "rest",
            "uri": self.uri,
            "warehouse": f"s3://{BUCKET}/",
            "io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
            "s3.endpoint": self.store.endpoint,
            "s3.path-style-access": True,
            "s3.access-key-id": ACCESS_KEY,
            "s3.secret-access-key": SECRET_KEY,
            "client.region": REGION,
        }

    def start(self):
        jars = rest_catalog_jars()
        env = {**os.environ, **self.server_environment(), "AWS_REGION": REGION}
        command = ["java", "-Drest.host=127.0.0.1", "-cp", f"{jars}/*", str(REST_DIR / "LoopbackRESTCatalogServer.java")]
        self.service.spawn(command, env)
        wait_for("the REST catalog", lambda: self.service.alive() and _http_json(self.uri + "v1/config"), 120, 1)
        return self

    def restart(self):
        self.service.kill()
        return self.start()

    def table(self, namespace, name):
        """The REST server's LoadTable answer (metadata location and all)."""
        return _http_json(f"{self.uri}v1/namespaces/{namespace}/tables/{name}")

    def stop(self):
        self.service.stop()


class SparkStandalone:
    """A Spark standalone master and one worker from the installed pyspark, both on 127.0.0.1."""

    def __init__(self, base, cores=2, memory="3g"):
        self.base = Path(base)
        self.port, self.ui_port, self.worker_ui_port = free_port(), free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.work_dir = self.base / "worker"
        self.master = _Process("spark-master", base)
        self.worker = _Process("spark-worker", base)
        self.cores, self.memory = cores, memory

    def environment(self):
        # SPARK_LOCAL_IP: every server socket of the daemons, their web UIs included, binds to loopback.
        loopback = {"SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_WORKER_DIR": str(self.work_dir)}
        return {**os.environ, **loopback}

    def start(self):
        spark_class = str(SPARK_HOME / "bin" / "spark-class")
        self.master.spawn(
            [spark_class, "org.apache.spark.deploy.master.Master",
             "--host", "127.0.0.1", "--port", str(self.port), "--webui-port", str(self.ui_port)],
            self.environment(),
        )  # fmt: skip
        wait_for("the Spark master", lambda: self.master.alive() and self.status(), 120, 1)
        self.worker.spawn(
            [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
             "--webui-port", str(self.worker_ui_port), "--cores", str(self.cores), "--memory", self.memory, self.url],
            self.environment(),
        )  # fmt: skip
        wait_for("a worker to register", lambda: self.worker.alive() and (self.status() or {}).get("aliveworkers"), 120, 1)
        return self

    def status(self):
        """The master's JSON status: workers, running and completed applications."""
        return _http_json(f"http://127.0.0.1:{self.ui_port}/json/")

    def executor_logs(self):
        """stderr of every executor the worker ran, one file per application and executor."""
        return sorted(self.work_dir.glob("app-*/*/stderr"))

    def stop(self):
        self.worker.stop()
        self.master.stop()


if __name__ == "__main__":  # make cluster-jars
    print(rest_catalog_jars())
