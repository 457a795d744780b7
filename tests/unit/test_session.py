"""The SparkSession factory's conf, checked as plain dicts (no JVM)."""

import json
from pathlib import Path

import pytest

from spark_jobs.catalogs import catalog_conf, warehouse_location
from spark_jobs.config import config_from_dict
from spark_jobs.errors import ConfigError
from spark_jobs.storage.session import session_conf

EXAMPLE = Path(__file__).resolve().parents[2] / "include" / "configs" / "summary_config.json"


@pytest.fixture
def raw():
    return json.loads(EXAMPLE.read_text())


def test_every_catalog_in_the_identifiers_is_an_iceberg_jdbc_catalog_on_sqlite_by_default(raw):
    raw["source_table"] = "landing.raw.accounts_all"
    conf = catalog_conf(config_from_dict(raw), "/data/wh")
    assert conf["spark.sql.defaultCatalog"] == "local"
    for name in ("local", "landing"):
        assert conf[f"spark.sql.catalog.{name}"] == "org.apache.iceberg.spark.SparkCatalog"
        assert conf[f"spark.sql.catalog.{name}.type"] == "jdbc"
        assert conf[f"spark.sql.catalog.{name}.uri"] == "jdbc:sqlite:/data/wh/iceberg_catalog.sqlite"
        assert conf[f"spark.sql.catalog.{name}.warehouse"] == f"/data/wh/{name}"
        assert conf[f"spark.sql.catalog.{name}.cache-enabled"] == "false"


def test_two_part_names_use_the_default_catalog(raw):
    raw.update(source_table="db.accounts_all", destination_table="db.summary", latest_history_table="db.latest_summary")
    raw["catalog"] = {"default": "lake"}
    conf = catalog_conf(config_from_dict(raw), "/wh")
    assert conf["spark.sql.defaultCatalog"] == "lake"
    assert conf["spark.sql.catalog.lake.type"] == "jdbc"
    assert "spark.sql.catalog.local" not in conf


def test_a_catalog_section_selects_any_iceberg_catalog_through_plain_conf(raw):
    raw["catalog"] = {"catalogs": {"local": {"type": "rest", "uri": "http://rest:8181", "s3.path-style-access": True}}}
    conf = catalog_conf(config_from_dict(raw), "/wh")
    assert conf["spark.sql.catalog.local.type"] == "rest"
    assert conf["spark.sql.catalog.local.uri"] == "http://rest:8181"
    assert conf["spark.sql.catalog.local.s3.path-style-access"] == "true"
    assert "spark.sql.catalog.local.jdbc.schema-version" not in conf


def test_an_explicit_jdbc_catalog_gets_view_support_unless_it_says_otherwise(raw):
    jdbc = {"type": "jdbc", "uri": "jdbc:postgresql://db:5432/iceberg", "warehouse": "s3://lake/wh"}
    raw["catalog"] = {"catalogs": {"local": jdbc}}
    assert catalog_conf(config_from_dict(raw), "/wh")["spark.sql.catalog.local.jdbc.schema-version"] == "V1"
    raw["catalog"] = {"catalogs": {"local": {**jdbc, "jdbc.schema-version": "V0"}}}
    assert catalog_conf(config_from_dict(raw), "/wh")["spark.sql.catalog.local.jdbc.schema-version"] == "V0"


def test_v4_tuning_keys_become_spark_conf(raw):
    raw["spark_config"] = {"adaptive_enabled": False, "broadcast_threshold_mb": -1, "conf": {"spark.sql.ansi.enabled": "true"}}
    conf = session_conf(config_from_dict(raw), "/wh", ["/j/a.jar", "/j/b.jar"])
    assert conf["spark.sql.adaptive.enabled"] == "false"
    assert conf["spark.sql.adaptive.skewJoin.enabled"] == "false"
    assert conf["spark.sql.autoBroadcastJoinThreshold"] == "-1"
    assert conf["spark.sql.extensions"] == "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
    assert conf["spark.jars"] == "/j/a.jar,/j/b.jar"
    assert conf["spark.sql.ansi.enabled"] == "true", "the config's extra conf wins"
    assert conf["spark.sql.session.timeZone"] == "UTC"


def test_quick_start_interprets_sql_and_compiles_with_c1_only_and_is_off_by_default(raw):
    cfg = config_from_dict(raw)
    assert not {"spark.sql.codegen.wholeStage", "spark.sql.codegen.factoryMode"} & session_conf(cfg, "/wh").keys()
    raw["spark_config"] = {"quick_start": True}
    cfg = config_from_dict(raw)
    conf = session_conf(cfg, "/wh")
    assert conf["spark.sql.codegen.wholeStage"] == "false"
    assert conf["spark.sql.codegen.factoryMode"] == "NO_CODEGEN"


def test_quick_start_must_be_a_boolean(raw):
    raw["spark_config"] = {"quick_start": "yes"}
    with pytest.raises(ConfigError, match="quick_start"):
        config_from_dict(raw)


def test_warehouse_precedence_is_flag_then_env_then_config_then_default(raw, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    raw["catalog"] = {"warehouse": "/from/config"}
    cfg = config_from_dict(raw)
    monkeypatch.setenv("SUMMARY_WAREHOUSE", "/from/env")
    assert warehouse_location(cfg, "/from/flag") == "/from/flag"
    assert warehouse_location(cfg) == "/from/env"
    monkeypatch.delenv("SUMMARY_WAREHOUSE")
    assert warehouse_location(cfg) == "/from/config"
    assert warehouse_location(config_from_dict({k: v for k, v in raw.items() if k != "catalog"})) == str(tmp_path / "warehouse")
    assert warehouse_location(cfg, "s3://bucket/wh") == "s3://bucket/wh"


def test_the_environment_overrides_catalogs_so_one_config_serves_laptop_and_cluster(raw, monkeypatch):
    monkeypatch.setenv("SUMMARY_CATALOGS", '{"local": {"type": "rest", "uri": "http://iceberg-rest:8181"}}')
    conf = catalog_conf(config_from_dict(raw), "/wh")
    assert conf["spark.sql.catalog.local.type"] == "rest" and conf["spark.sql.catalog.local.uri"] == "http://iceberg-rest:8181"
    monkeypatch.setenv("SUMMARY_CATALOGS", '{"local": ')
    with pytest.raises(ConfigError, match=r"\$SUMMARY_CATALOGS: invalid JSON"):
        catalog_conf(config_from_dict(raw), "/wh")


def test_pyspark_does_not_send_each_function_call_site_to_the_jvm(raw):
    """On by default in PySpark 4, it was about half of a stage's py4j round trips (bench/RESULTS.md)."""
    assert session_conf(config_from_dict(raw), "/wh")["spark.python.sql.dataFrameDebugging.enabled"] == "false"


def test_every_session_redacts_catalog_credentials_and_keeps_sparks_own_terms(raw, monkeypatch):
    """The patterns themselves are proven on a real event log in tests/storage/test_event_log_redaction.py."""
    from spark_jobs.storage.redaction import REDACTION_REGEX, SPARK_DEFAULT_REDACTION_REGEX, redaction_conf
    from summary_airflow.operators import event_log_conf

    conf = session_conf(config_from_dict(raw), "/wh")
    assert conf["spark.redaction.regex"] == REDACTION_REGEX
    assert REDACTION_REGEX.startswith(SPARK_DEFAULT_REDACTION_REGEX + "|"), "Spark's default terms stay, with its (?i)"
    for term in ("access[-_]key", "account[.]key", "credential", "authorization", "header[.]", "://[^/?#@\\s]*@"):
        assert term in REDACTION_REGEX.split("|"), term
    assert "spark.redaction.string.regex" in conf
    # spark-submit from Airflow carries the same, with event logs on or off.
    monkeypatch.setenv("SUMMARY_SPARK_EVENT_LOG_DIR", "off")
    assert event_log_conf() == redaction_conf()
    monkeypatch.setenv("SUMMARY_SPARK_EVENT_LOG_DIR", "s3a://bucket/spark-events")
    assert event_log_conf() == {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": "s3a://bucket/spark-events",
        **redaction_conf(),
    }
