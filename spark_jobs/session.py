"""One factory for the SparkSession: v4's tuning, Iceberg, the jars and the catalogs.

Catalogs. Every catalog named in the config's table identifiers (``local`` in
``local.db.summary``) and the default catalog (used by two-part names) is an
Iceberg ``SparkCatalog``. Without a ``catalog`` section each one is an Iceberg
JDBC catalog on one SQLite file inside the warehouse directory: commits are
atomic compare-and-swap, unlike Iceberg's Hadoop catalog on a local disk. A
``catalog.catalogs.<name>`` section replaces that with any Iceberg catalog
(REST, Hive, Glue, Hadoop, Nessie, ...) through plain Spark conf, and the
environment variable ``SUMMARY_CATALOGS`` (the same JSON) overrides it.
"""

import json
import os
from pathlib import Path

from spark_jobs import jars
from spark_jobs.config import SummaryConfig
from spark_jobs.errors import ConfigError

CATALOGS_ENV = "SUMMARY_CATALOGS"
ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
ICEBERG_CATALOG = "org.apache.iceberg.spark.SparkCatalog"
SQLITE_FILE = "iceberg_catalog.sqlite"


def warehouse_location(cfg: SummaryConfig, cli_value=None):
    """--warehouse, else $SUMMARY_WAREHOUSE, else the config's catalog.warehouse, else ./warehouse."""
    chosen = cli_value or os.environ.get("SUMMARY_WAREHOUSE") or cfg.catalog.warehouse or "warehouse"
    if "://" in chosen:
        return chosen
    return str(Path(chosen).expanduser().resolve())


def explicit_catalogs(cfg: SummaryConfig):
    """The config's ``catalog.catalogs``, overridden per catalog by $SUMMARY_CATALOGS (JSON of the same shape).

    The environment wins so that one config serves a laptop and a cluster (docker-compose wires it).
    """
    catalogs = dict(cfg.catalog.catalogs)
    text = os.environ.get(CATALOGS_ENV)
    if text:
        try:
            overrides = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"${CATALOGS_ENV}", [f"invalid JSON: {exc.msg} at character {exc.pos}"]) from None
        if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
            raise ConfigError(f"${CATALOGS_ENV}", ["must be a JSON object: catalog name -> {property: value}"])
        catalogs.update(overrides)
    return catalogs


def catalog_names(cfg: SummaryConfig):
    names = [cfg.catalog.default]
    three_part = [t.split(".")[0] for t in cfg.table_identifiers if t.count(".") == 2]
    for name in (*three_part, *explicit_catalogs(cfg)):
        if name not in names:
            names.append(name)
    return names


def catalog_conf(cfg: SummaryConfig, warehouse):
    """Spark conf entries that define every catalog the config uses."""
    conf = {"spark.sql.defaultCatalog": cfg.catalog.default}
    explicit_all = explicit_catalogs(cfg)
    for name in catalog_names(cfg):
        prefix = f"spark.sql.catalog.{name}"
        conf[prefix] = ICEBERG_CATALOG
        # Every run must see other runs' commits at once: the lock, recovery and
        # backfill marks depend on it, so the per-session table cache is off.
        conf[f"{prefix}.cache-enabled"] = "false"
        explicit = explicit_all.get(name)
        if explicit is not None:
            for key, value in explicit.items():
                conf[f"{prefix}.{key}"] = _conf_value(value)
            continue
        conf[f"{prefix}.type"] = "jdbc"
        conf[f"{prefix}.uri"] = f"jdbc:sqlite:{warehouse}/{SQLITE_FILE}"
        conf[f"{prefix}.warehouse"] = f"{warehouse}/{name}"
        conf[f"{prefix}.jdbc.schema-version"] = "V1"
        # Several processes share the SQLite file: readers do not block the writer (WAL), and a
        # writer waits for the write lock instead of failing.
        conf[f"{prefix}.jdbc.journal_mode"] = "WAL"
        conf[f"{prefix}.jdbc.busy_timeout"] = "60000"
    return conf


def _conf_value(value):
    return str(value).lower() if isinstance(value, bool) else str(value)


def session_conf(cfg: SummaryConfig, warehouse, jar_paths=()):
    """Every Spark conf entry of a pipeline session, as a plain dict (unit-tested)."""
    spark = cfg.spark
    broadcast = "-1" if spark.broadcast_threshold_mb < 0 else f"{spark.broadcast_threshold_mb}m"
    conf = {
        "spark.sql.extensions": ICEBERG_EXTENSIONS,
        "spark.sql.adaptive.enabled": _conf_value(spark.adaptive_enabled),
        "spark.sql.adaptive.coalescePartitions.enabled": _conf_value(spark.adaptive_enabled),
        "spark.sql.adaptive.localShuffleReader.enabled": _conf_value(spark.adaptive_enabled),
        "spark.sql.adaptive.skewJoin.enabled": _conf_value(spark.adaptive_enabled and spark.skew_join_enabled),
        "spark.sql.optimizer.dynamicPartitionPruning.enabled": _conf_value(spark.dynamic_partition_pruning),
        "spark.sql.autoBroadcastJoinThreshold": broadcast,
        "spark.sql.join.preferSortMergeJoin": "true",
        "spark.network.timeout": "800s",
        "spark.executor.heartbeatInterval": "60s",
        "spark.sql.shuffle.partitions": str(cfg.performance.min_partitions),
        # Digests, reports and month boundaries must not depend on the machine's zone.
        "spark.sql.session.timeZone": "UTC",
        # v4 configs were written for Spark 3 semantics: a bad cast is NULL, not a failed run.
        "spark.sql.ansi.enabled": "false",
        # Legacy systems write 0001-01-01; read such dates as written so `clean` can null them.
        "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
        "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
        "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
        "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
        "spark.ui.showConsoleProgress": "false",
    }
    if jar_paths:
        conf["spark.jars"] = ",".join(str(p) for p in jar_paths)
    conf.update(catalog_conf(cfg, warehouse))
    conf.update({key: _conf_value(value) for key, value in spark.conf.items()})
    return conf


def build_session(cfg: SummaryConfig, warehouse=None, app_name=None, extra_conf=None):
    """Create (or reuse) the SparkSession for ``cfg``: master ``local[*]`` unless spark-submit chose one."""
    from pyspark.sql import SparkSession

    warehouse = warehouse or warehouse_location(cfg)
    if "://" not in warehouse:
        Path(warehouse).mkdir(parents=True, exist_ok=True)
    jar_paths = jars.ensure_jars(log=lambda msg: print(msg, flush=True))
    under_spark_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if under_spark_submit:
        _add_jars_to_driver(jar_paths)

    builder = SparkSession.builder.appName(app_name or f"summary-pipeline-{cfg.name}")
    if not under_spark_submit and "spark.master" not in (extra_conf or {}):
        builder = builder.master(os.environ.get("SUMMARY_SPARK_MASTER", "local[*]"))
    conf = session_conf(cfg, warehouse, jar_paths)
    conf.update(extra_conf or {})
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    # getOrCreate() on an existing session keeps its static conf; apply what may change at runtime.
    for key, value in conf.items():
        if key.startswith("spark.sql.") and not key.startswith("spark.sql.extensions"):
            try:
                spark.conf.set(key, value)
            except Exception:  # static conf of an already running session
                pass
    spark.sparkContext.setLogLevel(os.environ.get("SUMMARY_SPARK_LOG_LEVEL", "WARN"))
    return spark


def _add_jars_to_driver(jar_paths):
    """Put the cached jars on the driver's class path when spark-submit already started the JVM.

    spark-submit starts the driver JVM before this script runs, so ``spark.jars``
    set in the builder would reach the executors but not the driver. The driver's
    context class loader is Spark's MutableURLClassLoader, which accepts more jars.
    """
    from pyspark import SparkContext

    SparkContext._ensure_initialized()
    jvm = SparkContext._jvm
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    known = {str(url) for url in loader.getURLs()} if hasattr(loader, "getURLs") else set()
    for path in jar_paths:
        url = jvm.java.io.File(str(path)).toURI().toURL()
        if str(url) not in known:
            loader.addURL(url)
