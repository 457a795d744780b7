"""The class archive `make setup` builds is the one a stage's driver maps (spark_jobs/storage/class_archive.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spark_jobs.storage import class_archive

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture
def archive_options():
    options = class_archive.driver_java_options()
    if not options:
        pytest.skip(f"no class archive for this environment (make setup builds it): {class_archive.archive_path()}")
    return options


def test_a_stage_tasks_driver_loads_spark_and_iceberg_classes_from_the_archive(archive_options, tmp_path):
    from spark_jobs.storage.jars import ensure_jars

    script = tmp_path / "iceberg_class.py"
    script.write_text(
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.getOrCreate()\n"
        "jvm = spark._jvm\n"
        "loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()  # the one --jars reach\n"
        "jvm.java.lang.Class.forName('org.apache.iceberg.spark.SparkCatalog', True, loader)\n"
    )
    java_options = class_archive.with_driver_java_options({})["spark.driver.extraJavaOptions"]  # as the operator does
    spark_submit = str(Path(sys.executable).parent / "spark-submit")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    jars = ",".join(str(p) for p in ensure_jars())
    result = subprocess.run(
        [spark_submit, "--jars", jars, "--driver-java-options", f"{java_options} -Xlog:class+load=info", str(script)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    loads = [line for line in result.stdout.splitlines() if "][class,load]" in line]
    shared = {line.split()[1] for line in loads if "shared objects file (top)" in line}
    assert "org.apache.spark.SparkContext" in shared, loads[:20]
    assert "org.apache.iceberg.spark.SparkCatalog" in shared, [line for line in loads if "iceberg" in line][:5]


def test_a_session_this_process_starts_passes_the_archive_to_its_driver(archive_options, spark):
    runtime = spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    assert archive_options in list(runtime.getInputArguments())
