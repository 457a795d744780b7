"""Shared fixtures: one Spark session (local Iceberg warehouse) for the whole test run, a fresh namespace per test."""

import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support import model_config

# Tests compare timestamps collected from Spark (UTC session) with Python values.
os.environ["TZ"] = "UTC"
time.tzset()

# spark-submit finds its Spark home through the first python on PATH: the venv's must come first.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(scope="session")
def spark_warehouse(tmp_path_factory):
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="session")
def spark(spark_warehouse):
    from spark_jobs.config import config_from_dict
    from spark_jobs.storage.session import build_session

    cfg = config_from_dict(model_config("bootstrap"))
    session = build_session(
        cfg,
        str(spark_warehouse),
        app_name="summary-pipeline-tests",
        extra_conf={
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.driver.memory": "2g",
            "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "2",
        },
    )
    yield session
    session.stop()


@pytest.fixture
def namespace():
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def tally():
    """The fault tier's figures (tests/fault_tally.py), printed as a table at the end of the run."""
    from tests.fault_tally import TALLY

    return TALLY


def pytest_terminal_summary(terminalreporter):
    from tests.fault_tally import TALLY
    from tests.live.services import LATENCIES

    if LATENCIES:
        terminalreporter.section("live tier: late records landed -> backfill run applied and gated (s)")
        for path, seconds in LATENCIES.items():
            terminalreporter.write_line(f"{seconds:>7.1f}  {path}")
    if TALLY.rows:
        terminalreporter.section("fault tier: what was tried and the differences found (must be 0)")
        terminalreporter.write_line(TALLY.table())
