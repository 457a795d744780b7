"""One factory for the SparkSession: v4's tuning, Iceberg, the jars and the catalogs (``catalogs.py``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from spark_jobs.catalogs import catalog_conf, conf_value, warehouse_location
from spark_jobs.config import DRIVER_LAUNCH_KEYS, SummaryConfig, driver_launch_conf
from spark_jobs.errors import ConfigError
from spark_jobs.names import SPARK_LOG_LEVEL_ENV, SPARK_MASTER_ENV
from spark_jobs.storage import class_archive, jars
from spark_jobs.storage.redaction import redaction_conf

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from spark_jobs.core.expressions import JavaObject

ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
# spark_config.quick_start: on small tables a stage's time goes to compiling, not to data. The JIT's C2 tier and
# Spark's generated code (Janino, itself cold) compete with the work for two cores; C1 only and interpreted
# expressions cut a small Case III by about a third, and slow a big one (bench/RESULTS.md, 2026-12-07).
QUICK_START_CONF = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}

log = logging.getLogger(__name__)


def session_conf(cfg: SummaryConfig, warehouse: str, jar_paths: Sequence[str | Path] = ()) -> dict[str, str]:
    """Every Spark conf entry of a pipeline session, as a plain dict (unit-tested)."""
    spark = cfg.spark
    broadcast = "-1" if spark.broadcast_threshold_mb < 0 else f"{spark.broadcast_threshold_mb}m"
    conf = {
        "spark.sql.extensions": ICEBERG_EXTENSIONS,
        "spark.sql.adaptive.enabled": conf_value(spark.adaptive_enabled),
        "spark.sql.adaptive.coalescePartitions.enabled": conf_value(spark.adaptive_enabled),
        "spark.sql.adaptive.localShuffleReader.enabled": conf_value(spark.adaptive_enabled),
        "spark.sql.adaptive.skewJoin.enabled": conf_value(spark.adaptive_enabled and spark.skew_join_enabled),
        "spark.sql.optimizer.dynamicPartitionPruning.enabled": conf_value(spark.dynamic_partition_pruning),
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
        # On, every pyspark.sql function call sends its Python call site to the JVM: about half of a stage's
        # py4j round trips, some seconds of a cold run (bench/RESULTS.md). Errors still name the config key.
        "spark.python.sql.dataFrameDebugging.enabled": "false",
    }
    if spark.quick_start:
        conf.update(QUICK_START_CONF)
    if jar_paths:
        conf["spark.jars"] = ",".join(str(p) for p in jar_paths)
    conf.update(catalog_conf(cfg, warehouse))
    conf.update({key: conf_value(value) for key, value in spark.conf.items()})
    # Last, so nothing above weakens it: the event log and the UI hide every catalog credential (redaction.py).
    conf.update(redaction_conf())
    return conf


def build_session(
    cfg: SummaryConfig, warehouse: str | None = None, app_name: str | None = None, extra_conf: dict[str, str] | None = None
) -> SparkSession:
    """Create (or reuse) the SparkSession for ``cfg``: master ``local[*]`` unless spark-submit chose one."""
    from pyspark.sql import SparkSession

    warehouse = warehouse or warehouse_location(cfg)
    if "://" not in warehouse:
        Path(warehouse).mkdir(parents=True, exist_ok=True)
    jar_paths: list[str] = [str(p) for p in jars.ensure_jars(log=log.info)]
    under_spark_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if under_spark_submit:
        jar_paths = _with_submitted_jars(jar_paths)

    builder = SparkSession.builder.appName(app_name or f"summary-pipeline-{cfg.name}")
    if not under_spark_submit and "spark.master" not in (extra_conf or {}):
        builder = builder.master(os.environ.get(SPARK_MASTER_ENV, "local[*]"))
    conf = session_conf(cfg, warehouse, jar_paths)
    conf.update(extra_conf or {})
    if not under_spark_submit:  # this process starts the driver JVM: it starts from the class archive, when built
        conf = class_archive.with_driver_java_options(conf, quick_start=cfg.spark.quick_start)
    else:  # spark-submit started it: its launch settings are what they are, and the running conf must say so
        conf = {k: v for k, v in conf.items() if k not in DRIVER_LAUNCH_KEYS}
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
    spark.sparkContext.setLogLevel(os.environ.get(SPARK_LOG_LEVEL_ENV, "WARN"))
    if under_spark_submit:
        problems = driver_launch_problems(cfg, dict(spark.sparkContext.getConf().getAll()))
        if problems:
            raise ConfigError(cfg.path, problems)
    return spark


def driver_launch_problems(cfg: SummaryConfig, running: dict[str, str]) -> list[str]:
    """The config's driver settings the running driver does not have: set too late to matter, so refused."""
    problems = []
    for key, wanted in driver_launch_conf(cfg).items():
        have = running.get(key)
        if have is None or _launch_value(key, have) != _launch_value(key, wanted):
            problems.append(
                f"spark_config.conf.{key}: {wanted} cannot take effect in a running driver (it has "
                f"{have or 'the default'}); pass it to spark-submit (--conf {key}={wanted}), as the Airflow stage tasks do"
            )
    return problems


def _launch_value(key: str, value: str) -> float | str:
    """Sizes in MiB (Spark's unit for a bare number here), so 4g and 4096m agree; other values as given."""
    if key == "spark.driver.cores":
        return value.strip()
    units = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
    text = value.strip().lower().removesuffix("b")
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "m")
    try:
        return float(number) * units[unit]
    except ValueError:
        return value


def _with_submitted_jars(jar_paths: list[str]) -> list[str]:
    """The jars spark-submit was given (``--jars``), plus any of ours it was not given.

    ``--jars`` is the supported way: spark-submit puts them on the driver's class path
    and serves them to every executor. A bare ``spark-submit summary_pipeline.py``
    (the README's shortest form) has none; the driver JVM is already running by
    then, so ours go on its class path by its class loader and reach the executors
    through ``spark.jars``. Keeping the submitted list keeps a user's own jars
    (a JDBC driver, say) on the executors too.
    """
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    submitted = [j for j in SparkConf().get("spark.jars", "").split(",") if j]
    all_jars = jars.with_jars(submitted, jar_paths)
    missing = all_jars[len(submitted) :]
    if missing:
        log.info("adding %s to the driver's class path (pass them with --jars to avoid this)", ", ".join(missing))
        _add_jars_to_driver(missing)
    return all_jars


def _add_jars_to_driver(jar_paths: Iterable[str]) -> None:
    """Put jars on the class path of a driver JVM that spark-submit already started."""
    from pyspark import SparkContext

    jvm: JavaObject = SparkContext._jvm  # declared Optional by pyspark; set by _ensure_initialized()
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    known = {str(url) for url in loader.getURLs()} if hasattr(loader, "getURLs") else set()
    for path in jar_paths:
        url = jvm.java.io.File(str(path)).toURI().toURL()
        if str(url) not in known:
            loader.addURL(url)
