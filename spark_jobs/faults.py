"""Named crash points, so tests can kill a run exactly between two commits.

Setting ``SUMMARY_PIPELINE_CRASH_AT=<point>`` makes the run die at that point as
if it had been sent SIGKILL: the JVM first, then this process, with no cleanup.
Production runs never set it.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import TYPE_CHECKING

from spark_jobs.names import CRASH_ENV

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

POINTS = (
    "after_lock",
    "after_rejects",
    "after_branches",  # the run's branches exist; nothing written
    "after_summary_written",  # summary's rows are on its branch
    "after_latest_written",  # both branches written, nothing decided: the retry starts again
    "after_publish_decided",  # the point of no return: the next lock holder publishes both
    "after_summary_published",  # summary is published, latest_summary not yet
    "after_latest_published",  # both published, the mark not cleared yet
)

log = logging.getLogger(__name__)


def crash_point(name: str, spark: SparkSession | None = None) -> None:
    if os.environ.get(CRASH_ENV) != name:
        return
    log.warning("crash point %s: killing this run", name)
    logging.shutdown()  # flush every handler: nothing runs after the kill
    if spark is not None:
        try:
            jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()  # type: ignore[union-attr]
            if jvm_pid != os.getpid():
                os.kill(jvm_pid, signal.SIGKILL)
        except Exception:
            pass
    os.kill(os.getpid(), signal.SIGKILL)
