"""A real Spark app's event log keeps no catalog credential: the pipeline's redaction conf, checked in the log itself.

The app runs in its own Python process (event logging is fixed when a SparkContext starts, and the test session's
shared one has none). It starts twice in that process: once with Spark's default redaction, to show the check
catches the leak, and once with the pipeline's conf (``session_conf``), which must leave no secret in the log.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from spark_jobs.config import config_from_dict
from spark_jobs.storage.redaction import redaction_conf
from spark_jobs.storage.session import session_conf
from tests.support import model_config

pytestmark = [pytest.mark.spark, pytest.mark.slow]

# Catalog conf as a REST catalog on S3 or ADLS would carry it: secret values, each a distinct marker (none holds a word
# of Spark's default regex, or the default would hide it by its value).
SECRETS = {
    "spark.sql.catalog.x.s3.access-key-id": "AKIAEXAMPLEID0001",
    "spark.sql.catalog.x.credential": "client-id:CLIENTS3CRVALUE0002",
    "spark.sql.catalog.x.uri": "https://catuser:URIPW0003@rest.example.com/api/catalog",
    "spark.sql.catalog.x.header.Authorization": "Basic HEADERBRVAL0004",
    "spark.sql.catalog.x.adls.auth.shared-key.account.key": "ADLSACCTK0005",
    "spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net": "HADOOPADLSK0006",
    "spark.sql.catalog.x.s3.secret-access-key": "S3SEC0007",
    "spark.sql.catalog.x.token": "PLAINTOK0008",
}
# Non-secret entries that must stay readable (the log is still useful for the history server).
KEPT = {
    "spark.sql.catalog.x": "org.apache.iceberg.spark.SparkCatalog",
    "spark.sql.catalog.x.type": "rest",
    "spark.sql.catalog.x.warehouse": "s3://bucket/warehouse-keptvalue",
    "spark.sql.catalog.y.uri": "http://rest.example.com:8181/keptvalue",
}
MARKERS = ["AKIAEXAMPLEID0001", "CLIENTS3CRVALUE0002", "URIPW0003", "HEADERBRVAL0004", "ADLSACCTK0005",
           "HADOOPADLSK0006", "S3SEC0007", "PLAINTOK0008", "QUERYPW0009"]  # fmt: skip

APP = textwrap.dedent(
    """
    import json, sys
    from pyspark.sql import SparkSession

    runs = json.loads(sys.argv[1])
    for run in runs:
        builder = SparkSession.builder.master("local[1]").appName(run["name"])
        for key, value in run["conf"].items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        # A plan that carries a URL with userinfo: the SQL events hold its text.
        spark.sql("SELECT 'jdbc:postgresql://dbuser:QUERYPW0009@db/x' AS u").collect()
        print(run["name"], spark.sparkContext.applicationId, flush=True)
        spark.stop()
    """
)


def _event_log_text(folder: Path) -> str:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files, f"no event log in {folder}"
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in files)


def _run(tmp_path: Path, runs: dict[str, dict[str, str]]) -> dict[str, str]:
    """Run the app once per entry of ``runs`` (name: redaction conf); the text of each run's event log."""
    payload = []
    for name, redaction in runs.items():
        folder = tmp_path / name
        folder.mkdir()
        conf = {
            **SECRETS,
            **KEPT,
            **redaction,
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": folder.as_uri(),
            "spark.eventLog.compress": "false",
            "spark.eventLog.rolling.enabled": "false",
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "1",
        }
        payload.append({"name": name, "conf": conf})
    done = subprocess.run([sys.executable, "-c", APP, json.dumps(payload)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return {name: _event_log_text(tmp_path / name) for name in runs}


def test_the_event_log_keeps_no_catalog_credential_but_keeps_the_rest(tmp_path):
    ours = {k: v for k, v in session_conf(config_from_dict(model_config("bootstrap")), "/wh").items() if "redaction" in k}
    assert ours == redaction_conf(), "every pipeline session carries the redaction conf"
    logs = _run(tmp_path, {"spark_default": {}, "pipeline": ours})

    leaked_by_default = [m for m in MARKERS if m in logs["spark_default"]]
    # Spark's own default hides the secret-access-key and the token, and misses the rest: the check sees leaks.
    assert {"AKIAEXAMPLEID0001", "CLIENTS3CRVALUE0002", "URIPW0003", "HEADERBRVAL0004", "ADLSACCTK0005", "QUERYPW0009"} <= set(
        leaked_by_default
    )
    assert "S3SEC0007" not in leaked_by_default

    log = logs["pipeline"]
    # Spark does not redact the SQL tab's plan graph (sparkPlanInfo's simpleString), only the plan's text: a literal
    # in a query stays there. The pipeline's queries carry no credential; the catalog conf is what must not leak.
    assert [m for m in MARKERS if m in log and m != "QUERYPW0009"] == [], "a secret value is in the event log"
    start = next(json.loads(line) for line in log.splitlines() if "SparkListenerSQLExecutionStart" in line)
    assert "QUERYPW0009" not in start["physicalPlanDescription"]
    assert "jdbc:postgresql://*********(redacted)@db/x" in start["physicalPlanDescription"], "only the userinfo goes"
    environment = next(json.loads(line) for line in log.splitlines() if '"SparkListenerEnvironmentUpdate"' in line)
    spark_properties = dict(environment["Spark Properties"])
    for key in SECRETS:
        assert spark_properties[key] == "*********(redacted)", key
    for key, value in KEPT.items():
        assert spark_properties[key] == value, f"{key} should stay readable"
    assert spark_properties["spark.app.name"] == "pipeline"
