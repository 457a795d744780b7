"""Named crash points, so tests can kill a run exactly between two commits.

Setting ``SUMMARY_PIPELINE_CRASH_AT=<point>`` makes the run die at that point as
if it had been sent SIGKILL: the JVM first, then this process, with no cleanup.
Production runs never set it.
"""

import os
import signal

CRASH_ENV = "SUMMARY_PIPELINE_CRASH_AT"
POINTS = (
    "after_lock",
    "after_rejects",
    "after_staging",
    "after_summary_merge",
    "after_latest_merge",
    "after_staging_cleared",
)


def crash_point(name, spark=None):
    if os.environ.get(CRASH_ENV) != name:
        return
    print(f"crash point {name}: killing this run", flush=True)
    if spark is not None:
        try:
            jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
            if jvm_pid != os.getpid():
                os.kill(jvm_pid, signal.SIGKILL)
        except Exception:
            pass
    os.kill(os.getpid(), signal.SIGKILL)
