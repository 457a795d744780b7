"""The Spark standalone cluster authenticates, configured the way docker-compose.yaml configures it.

The master and the worker get ``spark.authenticate`` and the shared secret as ``-D`` options in
``SPARK_MASTER_OPTS`` / ``SPARK_WORKER_OPTS``; the submitting side (the Airflow containers) gets them in
``SPARK_SUBMIT_OPTS``. Nothing is written to a conf file and the secret is never a spark-submit argument.
A submit without the secret, or with a wrong one, is refused and runs nothing on the worker; one with it
runs. Real processes from the installed pyspark, on loopback, stopped by process id.
"""

import os
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.cli_support import SPARK_SUBMIT
from tests.cluster.services import SparkStandalone

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

APP = """
import random, sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("auth-pi").getOrCreate()
n = 20000
inside = spark.sparkContext.parallelize(range(n), 2).filter(lambda _: random.random() ** 2 + random.random() ** 2 < 1).count()
print("PI-ESTIMATE", 4.0 * inside / n)
spark.stop()
"""


def auth_options(secret):
    """The options compose puts into SPARK_MASTER_OPTS, SPARK_WORKER_OPTS and SPARK_SUBMIT_OPTS."""
    return f"-Dspark.authenticate=true -Dspark.authenticate.secret={secret}"


class AuthenticatedStandalone(SparkStandalone):
    def __init__(self, base, secret):
        super().__init__(base, cores=1, memory="1g")
        self.secret = secret

    def environment(self):
        options = auth_options(self.secret)
        return {**super().environment(), "SPARK_MASTER_OPTS": options, "SPARK_WORKER_OPTS": options}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    spark = AuthenticatedStandalone(tmp_path_factory.mktemp("spark-auth"), secrets.token_hex(32))
    try:
        yield spark.start()
    finally:
        spark.stop()


def _submit(cluster, app, submit_opts):
    env = {k: v for k, v in os.environ.items() if k != "SPARK_SUBMIT_OPTS"}
    path = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # the venv's spark-submit, python
    env.update({"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable, "PATH": path})
    if submit_opts is not None:
        env["SPARK_SUBMIT_OPTS"] = submit_opts
    command = [SPARK_SUBMIT, "--master", cluster.url, "--conf", "spark.ui.enabled=false", str(app)]
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as hung:  # a refused driver may also hang rather than exit: still refused
        return None, f"{hung.stdout or ''}{hung.stderr or ''}", command
    return result.returncode, result.stdout + result.stderr, command


def test_a_submit_without_the_secret_is_refused_and_one_with_it_runs(cluster, tmp_path):
    app = tmp_path / "pi.py"
    app.write_text(APP)
    with ThreadPoolExecutor(2) as pool:
        refused = list(pool.map(lambda opts: _submit(cluster, app, opts), [None, auth_options(secrets.token_hex(32))]))
    for code, output, _ in refused:  # no secret at all; the right switch with a wrong secret
        assert code != 0 and "PI-ESTIMATE" not in output, output[-3000:]
    # Refused by the master's authentication, not failed for another reason: one message for each way.
    master_log = cluster.master.log.read_text(errors="replace")
    assert "Expected SaslMessage" in master_log, "the submit without spark.authenticate reached no SASL check"
    assert "Mismatched response" in master_log, "the submit with a wrong secret was not rejected by its digest"
    assert not (cluster.status() or {}).get("completedapps"), "a refused application still reached the master"
    assert not cluster.executor_logs(), "a refused application still ran an executor on the worker"

    code, output, command = _submit(cluster, app, auth_options(cluster.secret))
    assert code == 0 and "PI-ESTIMATE" in output, output[-3000:]
    assert cluster.secret not in " ".join(command), "the secret must not be a spark-submit argument"
    assert [app["name"] for app in cluster.status()["completedapps"]] == ["auth-pi"]
